"""Tampering with a real database file (sqlite3) is detected with the right seq and reason."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rampartd.audit import AuditStore, RecordDraft, verify_db
from rampartd.audit.chain import canonical_bytes, compute_hash
from rampartd.cli.audit import audit

ACTIONS = ["allow", "deny", "ask", "watch"]


async def build(home: Path, n: int = 10) -> Path:
    """A home with an n-record chain, closed (so its head is checkpointed)."""
    home.mkdir(parents=True, exist_ok=True)
    store = await AuditStore.open(home / "rampartd.db", home=home)
    for i in range(n):
        await store.append(RecordDraft(
            "decision", agent="a", session="s", tool="exec", request={"command": f"echo {i}"},
            decision={"action": ACTIONS[i % 4], "matched_policies": []}))
    await store.close()
    return home


def report_for(home: Path) -> dict[str, Any]:
    """verify_db with the home's checkpoints, as the CLI runs it."""
    return verify_db(home / "rampartd.db", checkpoints=home / "checkpoints.jsonl")


def edit(home: Path, fn: Callable[[sqlite3.Connection], object]) -> None:
    """Apply a tampering edit with the plain sqlite3 module and commit it."""
    conn = sqlite3.connect(home / "rampartd.db")
    try:
        fn(conn)
        conn.commit()
    finally:
        conn.close()


def record_of(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
    """The decoded record of a row."""
    data: dict[str, Any] = json.loads(conn.execute(
        "SELECT record FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0])
    return data


def edit_record(conn: sqlite3.Connection) -> None:
    raw = conn.execute("SELECT record FROM audit_log WHERE seq = 5").fetchone()[0]
    conn.execute("UPDATE audit_log SET record = ? WHERE seq = 5",
                 (raw.replace(b"echo 4", b"echo X"),))


def edit_record_as_text(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE audit_log SET record = replace(record, 'deny', 'allow') WHERE seq = 2")


def rewrite_and_rehash(conn: sqlite3.Connection) -> None:
    record = record_of(conn, 6)
    record["decision"]["action"] = "allow"
    raw = canonical_bytes(record)
    conn.execute("UPDATE audit_log SET record = ?, action = 'allow', hash = ? WHERE seq = 6",
                 (raw, compute_hash(record["prev_hash"], raw)))


def swap_rows(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 3")
    conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 4")
    conn.execute("UPDATE audit_log SET seq = 4 WHERE seq = -1")


TAMPERS: dict[str, tuple[Callable[[sqlite3.Connection], object], str, int]] = {
    "edited record": (edit_record, "hash_mismatch", 5),
    "edited record through SQL text functions": (edit_record_as_text, "hash_mismatch", 2),
    "edited hash column": (lambda c: c.execute(
        "UPDATE audit_log SET hash = 'sha256:' || hex(randomblob(32)) WHERE seq = 8"),
        "hash_mismatch", 8),
    "edited indexed column": (lambda c: c.execute(
        "UPDATE audit_log SET action = 'allow' WHERE seq = 2"), "column_mismatch", 2),
    "edited agent column": (lambda c: c.execute(
        "UPDATE audit_log SET agent = 'someone-else' WHERE seq = 9"), "column_mismatch", 9),
    "edited prev_hash column": (lambda c: c.execute(
        "UPDATE audit_log SET prev_hash = '' WHERE seq = 3"), "column_mismatch", 3),
    "deleted row": (lambda c: c.execute("DELETE FROM audit_log WHERE seq = 4"), "gap", 4),
    "deleted first row": (lambda c: c.execute("DELETE FROM audit_log WHERE seq = 1"), "gap", 1),
    "reordered rows": (swap_rows, "reordered", 3),
    "rewritten record with a recomputed hash": (rewrite_and_rehash, "broken_link", 7),
    "deleted newest rows": (lambda c: c.execute("DELETE FROM audit_log WHERE seq > 7"),
                            "behind_checkpoint", 8),
    "deleted every row": (lambda c: c.execute("DELETE FROM audit_log"), "behind_checkpoint", 1),
}


@pytest.mark.parametrize("name", list(TAMPERS))
async def test_tampering_is_detected(tmp_path: Path, name: str) -> None:
    home = await build(tmp_path / "home")
    assert report_for(home)["valid"]
    fn, reason, seq = TAMPERS[name]
    edit(home, fn)
    report = report_for(home)
    assert (report["valid"], report["reason"], report["first_broken_seq"]) == (False, reason, seq)
    assert report["detail"]
    result = CliRunner().invoke(audit, ["verify", "--home", str(home)])
    assert result.exit_code == 1
    assert json.loads(result.output)["reason"] == reason


async def test_rewritten_tail_is_caught_by_the_checkpoint(tmp_path: Path) -> None:
    home = await build(tmp_path / "home")

    def rewrite_last(conn: sqlite3.Connection) -> None:
        record = record_of(conn, 10)
        record["request"] = {"command": "innocent"}
        raw = canonical_bytes(record)
        conn.execute("UPDATE audit_log SET record = ?, hash = ? WHERE seq = 10",
                     (raw, compute_hash(record["prev_hash"], raw)))

    edit(home, rewrite_last)
    report = report_for(home)
    assert (report["reason"], report["first_broken_seq"]) == ("checkpoint_mismatch", 10)


async def test_forged_checkpoint_signature_is_reported(tmp_path: Path) -> None:
    home = await build(tmp_path / "home")
    path = home / "checkpoints.jsonl"
    line = json.loads(path.read_text().splitlines()[-1])
    line["seq"] = 10_000
    with path.open("a") as fh:
        fh.write(json.dumps(line) + "\n")
    report = report_for(home)
    assert (report["valid"], report["reason"]) == (False, "bad_checkpoint_signature")
    assert "signature" in report["detail"]


async def test_verify_cli_on_a_valid_log_while_the_store_is_open(tmp_path: Path) -> None:
    home = await build(tmp_path / "home", 5)
    store = await AuditStore.open(home / "rampartd.db", home=home)
    try:
        await store.append(RecordDraft("policy.reloaded"))
        result = CliRunner().invoke(audit, ["verify", "--db", str(home / "rampartd.db")])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["valid"] and report["head"]["seq"] == 6
        assert await store.verify() == report
    finally:
        await store.close()


def test_verify_cli_on_a_missing_database_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(audit, ["verify", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 1
    expected = f"Error: no audit database at {tmp_path / 'nope.db'}"
    assert result.output.strip().splitlines() == [expected]


def test_verify_cli_on_a_database_without_an_audit_log(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "other.db").close()
    result = CliRunner().invoke(audit, ["verify", "--db", str(tmp_path / "other.db")])
    assert result.exit_code == 1 and "holds no audit log" in result.output
