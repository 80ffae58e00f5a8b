"""Handlers for reading the audit log: events, one event, stats, dates, export, verify."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from rampartd.audit.filters import (
    DEFAULT_LIMIT,
    FILTER_NAMES,
    MAX_LIMIT,
    EventFilter,
    decode_cursor,
    is_kind_pattern,
    normalize_time,
    parse_day,
)
from rampartd.errors import NotFound
from rampartd.models import ACTIONS
from rampartd.web.keys import SERVICE
from rampartd.web.parse import (
    MAX_OFFSET,
    bad_parameter,
    choice_param,
    converted_param,
    int_param,
    path_ulid,
    query,
    str_param,
)

EVENTS_PARAMS: tuple[str, ...] = (*FILTER_NAMES, "limit", "cursor", "offset")


def _kind(text: str) -> str:
    if not is_kind_pattern(text):
        raise ValueError("letters, digits, '.', '_' or '-', optionally ending in '*' after "
                         "a prefix")
    return text


def _until(text: str) -> str:
    return normalize_time(text, end=True)


def event_filter(params: Mapping[str, str]) -> EventFilter:
    """The audit filter of a query string (the names of FILTER_NAMES)."""
    action = choice_param(params, "action", ACTIONS)
    tool, agent, session, run_id = (str_param(params, n)
                                    for n in ("tool", "agent", "session", "run_id"))
    return EventFilter(
        tool=tool, action=action, agent=agent, session=session, run_id=run_id,
        kind=converted_param(params, "kind", _kind),
        since=converted_param(params, "since", normalize_time),
        until=converted_param(params, "until", _until),
        date=converted_param(params, "date", parse_day))


async def events(request: web.Request) -> web.Response:
    """GET /v1/audit/events: newest first, keyset (`cursor`) or Rampart's `date`+`offset` pages."""
    params = query(request, EVENTS_PARAMS)
    flt = event_filter(params)
    limit = int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
    # An empty cursor is the first page, so a script can always pass `cursor=$NEXT`.
    before = converted_param(params, "cursor", decode_cursor) if params.get("cursor") else None
    if before is not None and "offset" in params:
        raise bad_parameter("offset", "cannot be combined with 'cursor'")
    records, next_cursor = await request.app[SERVICE].store.query(
        flt, limit=limit, before=before, offset=offset)
    return web.json_response({"events": records, "count": len(records),
                              "next_cursor": next_cursor})


async def event(request: web.Request) -> web.Response:
    """GET /v1/audit/events/{id}: one record by its ULID."""
    query(request, ())
    record = await request.app[SERVICE].store.get(path_ulid(request))
    if record is None:
        raise NotFound("no audit event with that id")
    return web.json_response(record)


async def stats(request: web.Request) -> web.Response:
    """GET /v1/audit/stats?from&to: counts by action, tool, agent and session."""
    params = query(request, ("from", "to"))
    since = converted_param(params, "from", normalize_time)
    until = converted_param(params, "to", _until)
    return web.json_response(await request.app[SERVICE].store.stats(since, until))


async def dates(request: web.Request) -> web.Response:
    """GET /v1/audit/dates: days that have records."""
    query(request, ())
    return web.json_response({"dates": await request.app[SERVICE].store.dates()})


async def export(request: web.Request) -> web.StreamResponse:
    """GET /v1/audit/export: matching records as JSONL, streamed chunk by chunk."""
    flt = event_filter(query(request, FILTER_NAMES))  # validated before the 200 goes out
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson",
                                           "Content-Disposition":
                                           'attachment; filename="rampartd-audit.jsonl"'})
    await response.prepare(request)
    async for chunk in request.app[SERVICE].store.export(flt):
        await response.write(chunk)
    await response.write_eof()
    return response


async def verify(request: web.Request) -> web.Response:
    """GET /v1/audit/verify: walk the whole chain and the signed checkpoints."""
    query(request, ())
    return web.json_response(await request.app[SERVICE].store.verify())
