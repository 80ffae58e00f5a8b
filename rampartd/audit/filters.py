"""Audit query filters: validation, opaque cursors and the SQL they select (pure).

Times compare as strings because every stored `ts` has the same fixed RFC 3339 UTC shape.
`since` is inclusive, `until` exclusive; a bare date as `until` covers that whole day.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rampartd.audit.chain import format_ts, parse_ts
from rampartd.errors import BadRequest
from rampartd.models import ACTIONS

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
# Record kinds that describe a tool call decision (what stats and call counters count).
DECISION_KINDS: tuple[str, ...] = ("decision", "decision.client")
DECISION_KINDS_SQL = "kind IN (" + ", ".join("?" * len(DECISION_KINDS)) + ")"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CURSOR_PREFIX = "s1:"
_KIND = re.compile(r"[A-Za-z0-9._-]{1,64}\*?")  # a record kind, or a prefix of one with `*`


def _day(name: str, text: str) -> date:
    if not _DATE.fullmatch(text):
        raise BadRequest(f"{name}: expected a date like 2026-11-22")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: {text!r} is not a calendar date") from None


def _day_start(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_time(name: str, value: str, *, end: bool = False) -> str:
    """An RFC 3339 time, a date or epoch seconds as a stored-ts-shaped string.

    With end=True a bare date means the start of the next day (an exclusive bound).
    """
    text = value.strip()
    if _DATE.fullmatch(text):
        day = _day(name, text)
        return _day_start(day + timedelta(days=1) if end else day)
    try:
        if _NUMBER.fullmatch(text):
            moment = datetime.fromtimestamp(float(text), UTC)
        else:
            moment = parse_ts(text)
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f"{name}: expected RFC 3339 time (2026-11-22T10:15:30Z), "
                         "a date or epoch seconds") from None
    epoch_us = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    if epoch_us < 0:
        raise BadRequest(f"{name}: time is before 1970")
    return format_ts(epoch_us)


def encode_cursor(seq: int) -> str:
    """The opaque cursor that continues a listing after (older than) seq."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq inside a cursor; BadRequest naming `cursor` when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("cursor: not a valid cursor") from None
    digits = text[len(_CURSOR_PREFIX):]
    if not text.startswith(_CURSOR_PREFIX) or not is_count(digits):
        raise BadRequest("cursor: not a valid cursor")
    return int(digits)


def check_limit(limit: int) -> int:
    """limit must be 1..MAX_LIMIT."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: must be an integer from 1 to {MAX_LIMIT}")
    return limit


def check_offset(offset: int | None) -> int:
    """offset must be 0 or more (None means 0)."""
    if offset is None:
        return 0
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise BadRequest("offset: must be an integer of 0 or more")
    return offset


@dataclass(frozen=True)
class EventFilter:
    """Filters on audit records, AND-ed; `kind` may end in `*` to match a prefix."""

    tool: str | None = None
    action: str | None = None
    agent: str | None = None
    session: str | None = None
    run_id: str | None = None
    kind: str | None = None
    since: str | None = None
    until: str | None = None
    date: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL condition and parameters; BadRequest naming the first bad field."""
        clauses: list[str] = []
        args: list[Any] = []
        for name in ("tool", "agent", "session", "run_id"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = ?")
                args.append(value)
        if self.action is not None:
            if self.action not in ACTIONS:
                raise BadRequest(f"action: must be one of {', '.join(ACTIONS)}")
            clauses.append("action = ?")
            args.append(self.action)
        if self.kind is not None:
            if not _KIND.fullmatch(self.kind):
                raise BadRequest("kind: letters, digits, '.', '_' or '-', optionally ending "
                                 "in '*'")
            if self.kind.endswith("*"):
                prefix = self.kind[:-1]
                if not prefix:
                    raise BadRequest("kind: a prefix is needed before *")
                clauses.append("kind >= ? AND kind < ?")
                args += [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)]
            else:
                clauses.append("kind = ?")
                args.append(self.kind)
        if self.since is not None:
            clauses.append("ts >= ?")
            args.append(normalize_time("since", self.since))
        if self.until is not None:
            clauses.append("ts < ?")
            args.append(normalize_time("until", self.until, end=True))
        if self.date is not None:
            day = _day("date", self.date)
            clauses.append("ts >= ? AND ts < ?")
            args += [_day_start(day), _day_start(day + timedelta(days=1))]
        return (" AND ".join(clauses) or "1"), args


FILTER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(EventFilter))
EVENTS_PARAMS: tuple[str, ...] = (*FILTER_NAMES, "limit", "cursor", "offset")


@dataclass(frozen=True)
class EventsQuery:
    """A parsed `GET /v1/audit/events` query string."""

    filter: EventFilter
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    offset: int | None = None


def is_count(text: str) -> bool:
    """True for a non-negative integer in ASCII digits that fits SQLite's integers."""
    # ASCII digits only (str.isdigit also accepts "²"), and small enough for SQLite's integers.
    return text.isascii() and text.isdigit() and len(text) <= 18


def _int_param(name: str, text: str) -> int:
    if not is_count(text.strip()):
        raise BadRequest(f"{name}: must be a non-negative integer")
    return int(text)


def parse_events_params(params: Mapping[str, str]) -> EventsQuery:
    """Parse and validate query parameters; unknown names are a BadRequest naming them."""
    for name in params:
        if name not in EVENTS_PARAMS:
            raise BadRequest(f"{name}: unknown parameter")
    flt = EventFilter(**{name: params[name] for name in FILTER_NAMES if name in params})
    flt.where()
    limit = check_limit(_int_param("limit", params["limit"])) if "limit" in params \
        else DEFAULT_LIMIT
    offset = check_offset(_int_param("offset", params["offset"])) if "offset" in params \
        else None
    cursor = params.get("cursor") or None
    if cursor is not None:
        decode_cursor(cursor)
        if offset is not None:
            raise BadRequest("offset: use either cursor or offset, not both")
    return EventsQuery(flt, limit, cursor, offset)
