"""Audit query filters, opaque cursors and the SQL they select (pure; no request parsing).

Values arrive already parsed (web/ reads the query string): times are in the stored `ts`
shape, so they compare as strings. `since` is inclusive, `until` exclusive; `normalize_time`
turns a bare date given as `until` into the start of the next day, covering that whole day.
The helpers here raise ValueError with the reason; web/ names the parameter in its answer.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rampartd.audit.chain import format_ts, parse_ts

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
# Record kinds that describe a tool call decision (what stats and call counters count).
DECISION_KINDS: tuple[str, ...] = ("decision", "decision.client")
DECISION_KINDS_SQL = "kind IN (" + ", ".join("?" * len(DECISION_KINDS)) + ")"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CURSOR_PREFIX = "s1:"
_KIND = re.compile(r"[A-Za-z0-9._-]{1,64}\*?")  # a record kind, or a prefix of one with `*`


def parse_day(text: str) -> date:
    """A calendar date written YYYY-MM-DD; ValueError otherwise."""
    if not _DATE.fullmatch(text):
        raise ValueError("expected a date like 2026-11-22")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date") from None


def _day_start(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_time(value: str, *, end: bool = False) -> str:
    """An RFC 3339 time, a date or epoch seconds as a stored-ts-shaped string; else ValueError.

    With end=True a bare date means the start of the next day (an exclusive bound).
    """
    text = value.strip()
    if _DATE.fullmatch(text):
        day = parse_day(text)
        return _day_start(day + timedelta(days=1) if end else day)
    try:
        if _NUMBER.fullmatch(text):
            moment = datetime.fromtimestamp(float(text), UTC)
        else:
            moment = parse_ts(text)
    except (ValueError, OverflowError, OSError):
        raise ValueError("expected RFC 3339 time (2026-11-22T10:15:30Z), a date or epoch "
                         "seconds") from None
    epoch_us = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    if epoch_us < 0:
        raise ValueError("time is before 1970")
    return format_ts(epoch_us)


def encode_cursor(seq: int) -> str:
    """The opaque cursor that continues a listing after (older than) seq."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq inside a cursor; ValueError when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a valid cursor") from None
    digits = text[len(_CURSOR_PREFIX):]
    if not text.startswith(_CURSOR_PREFIX) or not is_count(digits):
        raise ValueError("not a valid cursor")
    return int(digits)


def is_kind_pattern(text: str) -> bool:
    """True for a record kind, or a prefix of one ending in `*` (`approval.*`)."""
    return _KIND.fullmatch(text) is not None and text != "*"


@dataclass(frozen=True)
class EventFilter:
    """Filters on audit records, AND-ed; `kind` may end in `*` to match a prefix.

    `since` and `until` are stored-ts-shaped strings (see normalize_time); `date` is one day.
    """

    tool: str | None = None
    action: str | None = None
    agent: str | None = None
    session: str | None = None
    run_id: str | None = None
    kind: str | None = None
    since: str | None = None
    until: str | None = None
    date: date | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL condition and its parameters."""
        clauses: list[str] = []
        args: list[Any] = []
        for name in ("tool", "action", "agent", "session", "run_id"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = ?")
                args.append(value)
        if self.kind is not None:
            if self.kind.endswith("*"):
                prefix = self.kind[:-1]
                clauses.append("kind >= ? AND kind < ?")
                args += [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)]
            else:
                clauses.append("kind = ?")
                args.append(self.kind)
        if self.since is not None:
            clauses.append("ts >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("ts < ?")
            args.append(self.until)
        if self.date is not None:
            clauses.append("ts >= ? AND ts < ?")
            args += [_day_start(self.date), _day_start(self.date + timedelta(days=1))]
        return (" AND ".join(clauses) or "1"), args


FILTER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(EventFilter))


def is_count(text: str) -> bool:
    """True for a non-negative integer in ASCII digits that fits SQLite's integers."""
    # ASCII digits only (str.isdigit also accepts "²"), and small enough for SQLite's integers.
    return text.isascii() and text.isdigit() and len(text) <= 18
