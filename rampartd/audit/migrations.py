"""Numbered schema migrations of rampartd.db and the function that applies them.

MIGRATIONS[i] is migration number i + 1. Append new scripts at the end (approvals, agents and
any later table); never edit or reorder one that has shipped, because databases record which
numbers they have applied in `schema_migrations`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

MIGRATIONS: list[str] = [
    # 1: the audit chain. `record` holds the canonical (RFC 8785) bytes that were hashed; the
    # other columns are copies of record values for querying and are checked by verification.
    """
    CREATE TABLE audit_log (
        seq       INTEGER PRIMARY KEY,
        id        TEXT NOT NULL UNIQUE,
        ts        TEXT NOT NULL,
        kind      TEXT NOT NULL,
        agent     TEXT,
        session   TEXT,
        tool      TEXT,
        action    TEXT,
        run_id    TEXT,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL,
        record    BLOB NOT NULL
    );
    CREATE INDEX audit_log_ts ON audit_log (ts);
    CREATE INDEX audit_log_kind ON audit_log (kind, seq);
    CREATE INDEX audit_log_agent ON audit_log (agent, seq);
    CREATE INDEX audit_log_session ON audit_log (session, seq);
    CREATE INDEX audit_log_tool ON audit_log (tool, seq);
    CREATE INDEX audit_log_action ON audit_log (action, seq);
    CREATE INDEX audit_log_run_id ON audit_log (run_id, seq);
    """,
    # agents registry: one row per agent; only the SHA-256 of each agent token is stored.
    # Names are unique (case-sensitive) because the name is the identity policies match.
    """
    CREATE TABLE agents (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        description TEXT,
        status      TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE agent_tokens (
        token_sha256 TEXT PRIMARY KEY,
        agent_id     TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
        created_at   TEXT NOT NULL
    );
    CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);
    """,
    # approvals: the queue of asks waiting for a person, the grants an approval leaves behind
    # (a one-shot retry or a whole run until a deadline) and the signed links already used.
    """
    CREATE TABLE approvals (
        id               TEXT PRIMARY KEY,
        call_key         TEXT NOT NULL,
        status           TEXT NOT NULL
                         CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
        source           TEXT NOT NULL,
        agent            TEXT NOT NULL,
        session          TEXT NOT NULL,
        run_id           TEXT,
        tool_call_id     TEXT,
        tool             TEXT NOT NULL,
        request          TEXT NOT NULL,
        message          TEXT,
        policy           TEXT,
        matched_policies TEXT NOT NULL,
        created_at       TEXT NOT NULL,
        expires_at       TEXT NOT NULL,
        expires_epoch    REAL NOT NULL,
        resolved_at      TEXT,
        resolved_by      TEXT,
        reason           TEXT,
        batch_id         TEXT
    );
    CREATE INDEX approvals_status ON approvals (status, expires_epoch);
    CREATE INDEX approvals_call_key ON approvals (call_key, status);
    CREATE INDEX approvals_run ON approvals (agent, session, run_id, status);
    CREATE TABLE approval_grants (
        key           TEXT PRIMARY KEY,
        kind          TEXT NOT NULL CHECK (kind IN ('once', 'run')),
        approval_id   TEXT NOT NULL,
        agent         TEXT NOT NULL,
        session       TEXT NOT NULL,
        run_id        TEXT,
        expires_epoch REAL NOT NULL
    );
    CREATE TABLE approval_link_uses (
        signature   TEXT PRIMARY KEY,
        approval_id TEXT NOT NULL,
        used_at     TEXT NOT NULL
    );
    """,
    # 4: the working directory of an approval's call, shown to the person deciding and part
    # of the call's identity (a relative path means another file from another directory)
    """
    ALTER TABLE approvals ADD COLUMN cwd TEXT;
    """,
    # 5: the key K an agent token signs hook requests with (hex of SHA256("rampartd-proof" +
    # token)), stored when the token is issued; tokens issued before have none and can be used
    # only as bearer tokens until they are re-issued
    """
    ALTER TABLE agent_tokens ADD COLUMN proof_key TEXT;
    """,
]

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)
"""


def _statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (semicolons inside strings/triggers are kept)."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        yield buffer


def applied_version(conn: sqlite3.Connection) -> int:
    """The highest migration number applied to the database (0 when none)."""
    conn.execute(_MIGRATIONS_TABLE)
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


def apply_migrations(conn: sqlite3.Connection,
                     migrations: Sequence[str] = MIGRATIONS) -> list[int]:
    """Apply pending migrations, each in its own transaction; returns the numbers applied.

    The connection must be in autocommit mode (isolation_level=None). BEGIN IMMEDIATE makes
    two processes starting at once apply each migration exactly once.
    """
    done: list[int] = []
    for number, script in enumerate(migrations, start=1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if applied_version(conn) >= number:
                conn.execute("COMMIT")
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                         (number, datetime.now(UTC).isoformat()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done.append(number)
    return done
