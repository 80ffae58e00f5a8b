"""Stream frames: committed audit records → SSE frames, stream filters, wire encoding (pure).

The stream's query string is read in web/sse.py; StreamFilter is what it becomes.

One function, `frames_for`, maps records to frames; the live broadcaster and the replay from
SQLite both use it, so a resumed stream carries exactly the frames a live one would have.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rampartd.audit.filters import DECISION_KINDS

RETRY_MS = 3000
BATCH_DONE_KIND = "approval.batch_resolved"
FRAME_TYPES = ("audit", "approvals", "audit_batch", "policy", "agent")
CONTROL_TYPES = ("connected", "lagged", "reset")
FRAME_KINDS = (
    "decision.created", "approval.requested", "approval.resolved", "approval.expired",
    "approval.batch_resolved", "policy.reloaded", "policy.reload_failed",
    "agent.created", "agent.updated", "agent.deleted", "audit.checkpoints_missing",
)


def _compact(value: Any, *, sort_keys: bool = False) -> str:
    # Compact JSON never contains a raw newline, so one `data:` line always holds one frame.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)


def _dumps(data: Mapping[str, Any]) -> str:
    """Frame JSON: its own fields in order, then the record with sorted keys.

    A live record dict and the same record decoded from SQLite order their keys differently;
    sorting the record makes a replayed frame byte-for-byte the frame sent live.
    """
    if "event" not in data:
        return _compact(data)
    head = _compact({k: v for k, v in data.items() if k != "event"})
    return f'{head[:-1]},"event":{_compact(data["event"], sort_keys=True)}}}'


class Frame:
    """One SSE frame; durable frames carry `id` (a seq), control frames do not."""

    __slots__ = ("_named", "_plain", "data", "id", "kind", "records", "type")

    def __init__(self, data: dict[str, Any], *, id: int | None = None,
                 records: Sequence[Mapping[str, Any]] = ()) -> None:
        self.data = data
        self.id = id
        self.type: str = data["type"]
        self.kind: str | None = data.get("kind")
        self.records = tuple(records)
        self._plain: bytes | None = None
        self._named: bytes | None = None

    def encode(self, named: bool = False) -> bytes:
        """The frame on the wire (encoded once, shared by every subscriber)."""
        if named:
            if self._named is None:
                self._named = self._wire(True)
            return self._named
        if self._plain is None:
            self._plain = self._wire(False)
        return self._plain

    def _wire(self, named: bool) -> bytes:
        head = "" if self.id is None else f"id: {self.id}\n"
        if named:
            head += f"event: {self.kind or self.type}\n"
        return f"{head}data: {_dumps(self.data)}\n\n".encode()

    def __repr__(self) -> str:
        return f"Frame(id={self.id!r}, type={self.type!r}, kind={self.kind!r})"


def connected_frame(head_seq: int) -> Frame:
    """The first frame of every stream."""
    return Frame({"type": "connected", "head_seq": head_seq})


def lagged_frame(skipped: int) -> Frame:
    """Sent when a subscriber was too far behind and skipped that many records to the head."""
    return Frame({"type": "lagged", "skipped": skipped})


def reset_frame(head_seq: int) -> Frame:
    """Sent once when a resume cursor is not in the log (beyond the head)."""
    return Frame({"type": "reset", "head_seq": head_seq})


def retry_line() -> bytes:
    """The reconnection delay line that opens every stream."""
    return f"retry: {RETRY_MS}\n".encode()


def record_frame(record: Mapping[str, Any]) -> Frame:
    """The frame for one record that is not part of a batch."""
    kind: str = record["kind"]
    seq: int = record["seq"]
    data: dict[str, Any]
    if kind in DECISION_KINDS:
        data = {"type": "audit", "kind": "decision.created", "event": record}
    elif kind.startswith("approval."):
        approval = record.get("approval") or {}
        data = {"type": "approvals", "kind": kind, "approval_id": approval.get("id"),
                "event": record}
    elif kind.startswith("policy."):
        data = {"type": "policy", "kind": kind, "event": record}
    elif kind.startswith("agent."):
        data = {"type": "agent", "kind": kind, "event": record}
    else:
        data = {"type": "audit", "kind": kind, "event": record}
    return Frame(data, id=seq, records=(record,))


def batch_frame(records: Sequence[Mapping[str, Any]]) -> Frame:
    """One frame for the records of one bulk operation (they share a batch_id)."""
    last = records[-1]
    run_id = next((r.get("run_id") for r in reversed(records) if r.get("run_id")), None)
    data = {"type": "audit_batch", "kind": last["kind"], "run_id": run_id,
            "count": len(records), "first_seq": records[0]["seq"], "last_seq": last["seq"]}
    return Frame(data, id=last["seq"], records=records)


def frames_for(records: Sequence[Mapping[str, Any]], *,
               final: bool = True) -> tuple[list[Frame], list[Mapping[str, Any]]]:
    """Frames for records in seq order, and the records held back as an unfinished batch.

    Consecutive records sharing a batch_id become one `audit_batch` frame. A bulk operation
    is committed as one job, so a live commit always holds whole batches; a replay page may
    end inside one, and with final=False that trailing group is returned to be re-read.
    """
    frames: list[Frame] = []
    i, n = 0, len(records)
    while i < n:
        batch_id = records[i].get("batch_id")
        if not batch_id:
            frames.append(record_frame(records[i]))
            i += 1
            continue
        j = i + 1
        while j < n and records[j].get("batch_id") == batch_id:
            j += 1
        group = records[i:j]
        if j == n and not final and group[-1]["kind"] != BATCH_DONE_KIND:
            return frames, list(group)
        frames.append(batch_frame(group))
        i = j
    return frames, []


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What one subscriber wants: AND of all given fields; `scope_agent` is forced by its token."""

    types: frozenset[str] = frozenset()
    tool: str | None = None
    agent: str | None = None
    session: str | None = None
    decision: str | None = None
    run_id: str | None = None
    scope_agent: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when every durable frame matches."""
        return not self.types and self.tool is None and self.agent is None and \
            self.session is None and self.decision is None and self.run_id is None and \
            self.scope_agent is None

    def _record_matches(self, record: Mapping[str, Any]) -> bool:
        if self.scope_agent is not None and record.get("agent") != self.scope_agent:
            return False
        for name in ("tool", "agent", "session", "run_id"):
            wanted = getattr(self, name)
            if wanted is not None and record.get(name) != wanted:
                return False
        if self.decision is not None:
            decision = record.get("decision")
            if not isinstance(decision, Mapping) or decision.get("action") != self.decision:
                return False
        return True

    def matches(self, frame: Frame) -> bool:
        """True if the frame passes; a batch passes when one of its records does."""
        if frame.id is None:  # control frames reach every subscriber
            return True
        if self.types and frame.type not in self.types and frame.kind not in self.types:
            return False
        return any(self._record_matches(r) for r in frame.records)


def encode_all(frames: Iterable[Frame], named: bool) -> bytes:
    """Several frames as one write."""
    return b"".join(f.encode(named) for f in frames)
