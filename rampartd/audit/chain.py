"""The hash chain: canonical record bytes, record hashes, and the streaming verifier (pure).

A record is the dict of RECORD_FIELDS; its canonical bytes are its RFC 8785 (JCS)
serialisation, and `hash = "sha256:" + hex(sha256(prev_hash + canonical))` with a genesis
`prev_hash` of "". The same verifier checks rows read by the CLI (sync sqlite3) and by the
daemon, so both report the same thing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import rfc8785

RECORD_FIELDS: tuple[str, ...] = (
    "seq", "id", "ts", "kind", "agent", "session", "run_id", "tool_call_id", "tool",
    "request", "decision", "approval", "batch_id", "detail", "prev_hash",
)
# Fields a draft supplies; the writer supplies seq, id, ts and prev_hash.
DRAFT_FIELDS: tuple[str, ...] = (
    "kind", "agent", "session", "run_id", "tool_call_id", "tool",
    "request", "decision", "approval", "batch_id", "detail",
)
# Indexed copies of record values, stored next to the canonical bytes for querying.
COLUMN_FIELDS: tuple[str, ...] = (
    "seq", "id", "ts", "kind", "agent", "session", "tool", "action", "run_id", "prev_hash",
)
GENESIS_HASH = ""
HASH_PREFIX = "sha256:"

# Verification reasons, lowest seq first wins.
GAP = "gap"
HASH_MISMATCH = "hash_mismatch"
REORDERED = "reordered"
BROKEN_LINK = "broken_link"
COLUMN_MISMATCH = "column_mismatch"
CHECKPOINT_MISMATCH = "checkpoint_mismatch"
BEHIND_CHECKPOINT = "behind_checkpoint"
BAD_CHECKPOINT = "bad_checkpoint_signature"
CHECKPOINTS_MISSING = "checkpoints_missing"


@dataclass(frozen=True)
class RecordDraft:
    """What a caller wants recorded; the writer adds seq, id, ts, prev_hash and hash."""

    kind: str
    agent: str | None = None
    session: str | None = None
    run_id: str | None = None
    tool_call_id: str | None = None
    tool: str | None = None
    request: Mapping[str, Any] | None = None
    decision: Mapping[str, Any] | None = None
    approval: Mapping[str, Any] | None = None
    batch_id: str | None = None
    detail: Mapping[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        """The draft's fields as a plain dict (before redaction)."""
        return {name: getattr(self, name) for name in DRAFT_FIELDS}


class StoredRow(NamedTuple):
    """One row of the audit table as read for verification (column order of ROW_COLUMNS)."""

    seq: int
    id: str
    ts: str
    kind: str
    agent: str | None
    session: str | None
    tool: str | None
    action: str | None
    run_id: str | None
    prev_hash: str
    hash: str
    record: bytes


ROW_COLUMNS = ", ".join(StoredRow._fields)


@dataclass(frozen=True, slots=True)
class CheckpointRef:
    """A signed chain head the chain must still reach."""

    seq: int
    hash: str
    ts: str


# A number token that JSON and RFC 8785 may write differently: a float (it has "." or an
# exponent), an integer a double cannot hold, or NaN/Infinity. In compact JSON a number
# follows a key's `":`, a `[` or a `,`; text inside a string that merely looks like that only
# costs the slow path.
_NOT_PLAIN_NUMBER = re.compile(r'(?:":|[\[,])-?(?:\d+\.|\d+[eE]|\d{16}|NaN|Infinity)')


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of a record, without its `hash` field."""
    body = {k: v for k, v in record.items() if k != "hash"} if "hash" in record else record
    try:
        text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = None
    # Without such numbers and with every character in the Basic Multilingual Plane (where
    # code-point order is UTF-16 order), the C encoder writes exactly the RFC 8785 bytes.
    if text is not None and _NOT_PLAIN_NUMBER.search(text) is None \
            and (text.isascii() or max(text) <= "\uffff"):
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 report it
            pass
    data: bytes = rfc8785.dumps(body)
    return data


def compute_hash(prev_hash: str, canonical: bytes) -> str:
    """The chain hash of canonical bytes that follow prev_hash."""
    return HASH_PREFIX + hashlib.sha256(prev_hash.encode("utf-8") + canonical).hexdigest()


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def format_ts(epoch_us: int) -> str:
    """RFC 3339 UTC with microseconds, e.g. 2026-11-22T10:15:30.123456Z."""
    seconds, micros = divmod(epoch_us, 1_000_000)
    return f"{_second(seconds)}.{micros:06d}Z"


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (Z or offset) to an aware UTC datetime; ValueError if bad."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a time zone (Z or +hh:mm)")
    return moment.astimezone(UTC)


def record_action(record: Mapping[str, Any]) -> str | None:
    """The decision action of a record, or None when it carries no decision."""
    decision = record.get("decision")
    if isinstance(decision, Mapping):
        action = decision.get("action")
        return action if isinstance(action, str) else None
    return None


def build_record(payload: Mapping[str, Any], *, seq: int, record_id: str, ts: str,
                 prev_hash: str) -> tuple[dict[str, Any], bytes, str]:
    """Make the next record from a (redacted) draft payload; returns (record, canonical, hash)."""
    record: dict[str, Any] = {name: payload.get(name) for name in RECORD_FIELDS}
    record.update(seq=seq, id=record_id, ts=ts, prev_hash=prev_hash)
    canonical = canonical_bytes(record)
    digest = compute_hash(prev_hash, canonical)
    return record, canonical, digest


def columns_of(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """The indexed column values (COLUMN_FIELDS order) derived from a record."""
    return tuple(record_action(record) if name == "action" else record.get(name)
                 for name in COLUMN_FIELDS)


class ChainVerifier:
    """Consumes stored rows in seq order and remembers the first break."""

    def __init__(self, checkpoints: Sequence[CheckpointRef] = ()) -> None:
        self._checkpoints = {cp.seq: cp.hash for cp in checkpoints}
        self._last_checkpoint = max(checkpoints, key=lambda cp: cp.seq, default=None)
        self._expected_seq = 1
        self._prev_hash = GENESIS_HASH
        self._prev_ts = ""
        self.records_checked = 0
        self.first_broken_seq: int | None = None
        self.reason: str | None = None
        self.detail: str | None = None

    @property
    def broken(self) -> bool:
        """True once a break has been found."""
        return self.reason is not None

    def _fail(self, seq: int, reason: str, detail: str) -> bool:
        self.first_broken_seq, self.reason, self.detail = seq, reason, detail
        return False

    def feed(self, row: StoredRow) -> bool:
        """Check the next row; False once the chain is broken (later rows are ignored)."""
        if self.broken:
            return False
        self.records_checked += 1
        seq = row.seq
        if seq != self._expected_seq:
            return self._fail(self._expected_seq, GAP,
                              f"seq {self._expected_seq} is missing (next row is {seq})")
        # A tampered row may hold TEXT where the writer stored a BLOB.
        raw = row.record.encode("utf-8") if isinstance(row.record, str) else bytes(row.record)
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            return self._fail(seq, HASH_MISMATCH, f"record {seq} is not a JSON object")
        prev = record.get("prev_hash")
        if not isinstance(prev, str) or compute_hash(prev, raw) != row.hash:
            return self._fail(seq, HASH_MISMATCH, f"record {seq} does not match its hash")
        if record.get("seq") != seq:
            return self._fail(seq, REORDERED,
                              f"row {seq} holds the record of seq {record.get('seq')!r}")
        if prev != self._prev_hash:
            return self._fail(seq, BROKEN_LINK,
                              f"record {seq} does not link to the hash of record {seq - 1}")
        expected = columns_of(record)
        for name, stored, wanted in zip(COLUMN_FIELDS, row[:10], expected, strict=True):
            if stored != wanted:
                return self._fail(seq, COLUMN_MISMATCH,
                                  f"column {name} of row {seq} differs from its record")
        ts = record.get("ts")
        if not isinstance(ts, str) or ts < self._prev_ts:
            return self._fail(seq, REORDERED, f"record {seq} is older than record {seq - 1}")
        signed = self._checkpoints.get(seq)
        if signed is not None and signed != row.hash:
            return self._fail(seq, CHECKPOINT_MISMATCH,
                              f"record {seq} differs from the signed checkpoint")
        self._expected_seq = seq + 1
        self._prev_hash = row.hash
        self._prev_ts = ts
        return True

    def report(self, head: tuple[int, str]) -> dict[str, Any]:
        """The verification report for a chain whose newest row is head (seq, hash)."""
        last = self._last_checkpoint
        if not self.broken and last is not None and self._expected_seq - 1 < last.seq:
            self._fail(self._expected_seq, BEHIND_CHECKPOINT,
                       f"chain ends at seq {self._expected_seq - 1} but seq {last.seq} was "
                       f"signed at {last.ts}: newest records were removed")
        return {
            "valid": not self.broken,
            "records_checked": self.records_checked,
            "first_broken_seq": self.first_broken_seq,
            "reason": self.reason,
            "detail": self.detail,
            "head": {"seq": head[0], "hash": head[1]},
            "checkpoint": None if last is None else
            {"seq": last.seq, "hash": last.hash, "ts": last.ts},
        }


def verify_rows(rows: Iterable[StoredRow], *, head: tuple[int, str] | None = None,
                checkpoints: Sequence[CheckpointRef] = (),
                checkpoint_error: str | None = None,
                checkpoints_expected: bool = False) -> dict[str, Any]:
    """Verify rows in seq order; head (seq, hash) is taken from the rows when not given.

    checkpoint_error names a checkpoint whose signature did not verify; it is reported when
    the chain itself is intact. With checkpoints_expected, a chain that has records but no
    checkpoint at all is reported as checkpoints_missing: the first record of a chain is
    always signed, so an absent or emptied checkpoint file hides a truncation.
    """
    verifier = ChainVerifier(checkpoints)
    last: tuple[int, str] = (0, GENESIS_HASH)
    for row in rows:
        last = (row.seq, row.hash)
        if not verifier.feed(row) and head is not None:
            break
    report = verifier.report(head if head is not None else last)
    if report["valid"] and checkpoint_error is not None:
        report.update(valid=False, reason=BAD_CHECKPOINT, detail=checkpoint_error)
    elif report["valid"] and checkpoints_expected and not checkpoints \
            and report["head"]["seq"] > 0:
        report.update(valid=False, reason=CHECKPOINTS_MISSING,
                      detail="the chain has records but no signed checkpoint: the checkpoint "
                             "file is missing or empty, so removed records cannot be ruled out")
    return report
