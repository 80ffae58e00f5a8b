"""Handlers for reading the audit log: events, one event, stats, dates, export, verify."""

from __future__ import annotations

from aiohttp import web

from rampartd.audit.filters import EVENTS_PARAMS, FILTER_NAMES, EventFilter, parse_events_params
from rampartd.errors import NotFound
from rampartd.web.keys import SERVICE
from rampartd.web.parse import query


async def events(request: web.Request) -> web.Response:
    """GET /v1/audit/events: newest first, keyset (`cursor`) or Rampart's `date`+`offset` pages."""
    q = parse_events_params(query(request, EVENTS_PARAMS))
    records, next_cursor = await request.app[SERVICE].store.query(
        q.filter, limit=q.limit, cursor=q.cursor, offset=q.offset)
    return web.json_response({"events": records, "count": len(records),
                              "next_cursor": next_cursor})


async def event(request: web.Request) -> web.Response:
    """GET /v1/audit/events/{id}: one record by its ULID."""
    query(request, ())
    record = await request.app[SERVICE].store.get(request.match_info["id"])
    if record is None:
        raise NotFound("no audit event with that id")
    return web.json_response(record)


async def stats(request: web.Request) -> web.Response:
    """GET /v1/audit/stats?from&to: counts by action, tool, agent and session."""
    params = query(request, ("from", "to"))
    return web.json_response(
        await request.app[SERVICE].store.stats(params.get("from"), params.get("to")))


async def dates(request: web.Request) -> web.Response:
    """GET /v1/audit/dates: days that have records."""
    query(request, ())
    return web.json_response({"dates": await request.app[SERVICE].store.dates()})


async def export(request: web.Request) -> web.StreamResponse:
    """GET /v1/audit/export: matching records as JSONL, streamed chunk by chunk."""
    params = query(request, FILTER_NAMES)
    flt = EventFilter(**params)
    flt.where()  # validate before the 200 goes out
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
