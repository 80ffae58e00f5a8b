"""Asks handed to the host, found again in the audit log.

An ask answered with `?ask=host` is recorded as a decision with `detail.ask = "host"`; when
the host later reports that the call ran, `ask.host_outcome` is recorded once. Both are
looked up here by agent, session and tool_call_id, so the outcome is recorded after a
daemon restart too and never twice.
"""

from __future__ import annotations

import json
import sqlite3

HOST_OUTCOME = "ask.host_outcome"
# The newest asks and outcomes of one session that are searched for a call's ask.
MAX_CANDIDATES = 1000


def pending_handed_ask(conn: sqlite3.Connection, agent: str, session: str,
                       tool_call_id: str) -> str | None:
    """The audit id of this call's ask handed to the host if no outcome was recorded yet.

    Run in the writer's transaction, so a concurrent report of the same call sees the first
    one's outcome. Only the session's asks and outcomes are decoded (the session index and
    the `action` column narrow the rows first).
    """
    rows = conn.execute(
        "SELECT id, kind, record FROM audit_log WHERE session = ? AND agent = ? "
        "AND ((kind = 'decision' AND action = 'ask') OR kind = ?) "
        "ORDER BY seq DESC LIMIT ?", (session, agent, HOST_OUTCOME, MAX_CANDIDATES))
    for record_id, kind, raw in rows:
        record = json.loads(raw)
        if record.get("tool_call_id") != tool_call_id:
            continue
        if kind == HOST_OUTCOME:
            return None  # reported already
        detail = record.get("detail") or {}
        return str(record_id) if detail.get("ask") == "host" else None
    return None
