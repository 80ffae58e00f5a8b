"""The writer: group commit, concurrency, txn_ops, failure handling, reopen."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rampartd.audit import AuditStore, RecordDraft, verify_db
from rampartd.audit.migrations import MIGRATIONS
from rampartd.errors import Conflict, Unavailable


def draft(i: int = 0, **kw: Any) -> RecordDraft:
    """A decision draft."""
    return RecordDraft("decision", agent=kw.pop("agent", "a"), session="s", tool="exec",
                       request={"command": f"echo {i}"},
                       decision={"action": "allow", "matched_policies": ["p"]}, **kw)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AuditStore]:
    """An open store on a fresh database file."""
    s = await AuditStore.open(tmp_path / "rampartd.db")
    yield s
    await s.close()


async def test_append_returns_the_stored_record(store: AuditStore) -> None:
    assert store.head == (0, "")
    record = await store.append(draft(1, run_id="run_1", tool_call_id="tc"))
    assert record["seq"] == 1 and record["prev_hash"] == ""
    assert record["run_id"] == "run_1" and record["decision"]["action"] == "allow"
    assert len(record["id"]) == 26 and record["ts"].endswith("Z")
    assert store.head == (1, record["hash"])
    assert await store.get(record["id"]) == record
    second = await store.append(RecordDraft("policy.reloaded", detail={"files": 2}))
    assert second["prev_hash"] == record["hash"] and second["tool"] is None


async def test_the_database_is_wal_and_migrated(store: AuditStore) -> None:
    await store.append(draft())
    conn = sqlite3.connect(store.db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
    finally:
        conn.close()


async def test_fifty_concurrent_appenders_make_a_gap_free_valid_chain(tmp_path: Path) -> None:
    committed: list[dict[str, Any]] = []
    store = await AuditStore.open(tmp_path / "db.sqlite", on_commit=committed.extend)

    async def appender(n: int) -> list[dict[str, Any]]:
        return [await store.append(draft(i, agent=f"agent-{n}")) for i in range(20)]

    results = await asyncio.gather(*(appender(n) for n in range(50)))
    await store.close()
    seqs = sorted(r["seq"] for batch in results for r in batch)
    assert seqs == list(range(1, 1001))
    # on_commit sees every record once, in seq order, before its caller is answered.
    assert [r["seq"] for r in committed] == list(range(1, 1001))
    for batch in results:  # each appender's own records are in its own order
        assert [r["seq"] for r in batch] == sorted(r["seq"] for r in batch)
    report = verify_db(tmp_path / "db.sqlite")
    assert report["valid"] and report["records_checked"] == 1000
    ts = [r["ts"] for r in committed]
    assert ts == sorted(ts)


async def test_append_many_is_one_contiguous_job(store: AuditStore) -> None:
    await store.append(draft())
    many, single = await asyncio.gather(
        store.append_many([draft(i, batch_id="b1") for i in range(5)]), store.append(draft(9)))
    seqs = [r["seq"] for r in many]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    assert single["seq"] not in seqs


async def test_txn_ops_runs_in_the_same_transaction_and_returns_its_value(
        store: AuditStore) -> None:
    def create(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE claims (id TEXT PRIMARY KEY, status TEXT)")
        conn.execute("INSERT INTO claims VALUES ('x', 'pending')")

    await store.transact(create, [])

    def claim(conn: sqlite3.Connection) -> int:
        cur = conn.execute(
            "UPDATE claims SET status = 'done' WHERE id = 'x' AND status = 'pending'")
        if cur.rowcount != 1:
            raise Conflict("already claimed")
        return 42

    value, records = await store.transact(
        claim, lambda v: [RecordDraft("approval.resolved", approval={"id": "x", "v": v})])
    assert value == 42 and records[0]["approval"] == {"id": "x", "v": 42}
    head = store.head
    # The second claim fails: its exception reaches the caller and nothing is recorded.
    with pytest.raises(Conflict):
        await store.append(RecordDraft("approval.resolved"), txn_ops=claim)
    assert store.head == head
    async with store.reader() as conn, conn.execute("SELECT status FROM claims") as cur:
        assert list(await cur.fetchall()) == [("done",)]


async def test_one_failing_job_does_not_fail_its_group(store: AuditStore) -> None:
    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE t (x)")  # rolled back with the job's savepoint
        raise ValueError("boom")

    results = await asyncio.gather(
        *(store.append(draft(i), txn_ops=boom if i == 3 else None) for i in range(8)),
        return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    seqs = sorted(r["seq"] for r in results if isinstance(r, dict))
    assert seqs == list(range(1, 8))
    assert verify_db(store.db_path)["valid"]
    async with store.reader() as conn, conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 't'") as cur:
        assert await cur.fetchone() == (0,)


async def test_a_failed_commit_fails_the_group_with_unavailable(store: AuditStore) -> None:
    ok = await store.append(draft(0))

    def setup(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child (p INTEGER REFERENCES parent(id) "
                     "DEFERRABLE INITIALLY DEFERRED)")

    await store.transact(setup, [])

    def orphan(conn: sqlite3.Connection) -> None:
        # A deferred foreign key violation is only found at COMMIT: the whole group fails.
        conn.execute("INSERT INTO child VALUES (99)")

    results = await asyncio.gather(store.append(draft(1), txn_ops=orphan),
                                   store.append(draft(2)), return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results), results
    assert store.head == (1, ok["hash"])
    after = await store.append(draft(3))
    assert after["seq"] == 2 and after["prev_hash"] == ok["hash"]
    assert verify_db(store.db_path)["valid"]


async def test_close_drains_queued_jobs_and_later_appends_fail(tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "db")
    pending = [asyncio.ensure_future(store.append(draft(i))) for i in range(30)]
    await asyncio.sleep(0)  # let the appends queue their jobs
    await store.close()
    assert sorted(r["seq"] for r in await asyncio.gather(*pending)) == list(range(1, 31))
    with pytest.raises(Unavailable):
        await store.append(draft())


async def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    first = await AuditStore.open(tmp_path / "db")
    last = (await first.append_many([draft(i) for i in range(3)]))[-1]
    await first.close()
    second = await AuditStore.open(tmp_path / "db")
    try:
        assert second.head == (3, last["hash"])
        nxt = await second.append(draft())
        assert nxt["seq"] == 4 and nxt["prev_hash"] == last["hash"] and nxt["ts"] >= last["ts"]
    finally:
        await second.close()
    assert verify_db(tmp_path / "db")["records_checked"] == 4


async def test_on_commit_errors_do_not_break_appends(tmp_path: Path) -> None:
    def explode(records: Sequence[dict[str, Any]]) -> None:
        raise RuntimeError("subscriber bug")

    store = await AuditStore.open(tmp_path / "db", on_commit=explode)
    try:
        assert (await store.append(draft()))["seq"] == 1
    finally:
        await store.close()


async def test_open_fails_cleanly_on_an_unusable_path(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        await AuditStore.open(tmp_path / "missing-dir" / "db")


async def test_an_aborted_transaction_fails_the_whole_group(store: AuditStore) -> None:
    import threading

    await store.append(draft(0))
    gate = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        gate.wait(10)  # keeps the writer busy until the next jobs are queued behind it

    def abort(conn: sqlite3.Connection) -> None:
        # What SQLite does on a full disk or an I/O error: the whole transaction is gone.
        conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    first = asyncio.ensure_future(store.transact(hold, [draft(1)]))
    await asyncio.sleep(0)  # let `first` reach the writer
    a = asyncio.ensure_future(store.append(draft(2)))
    b = asyncio.ensure_future(store.transact(abort, [draft(3)]))
    c = asyncio.ensure_future(store.append(draft(4)))
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, a, b, c, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results[1:]), results
    after = await store.append(draft(5))
    report = verify_db(store.db_path)
    assert report["valid"], report
    assert after["seq"] == report["head"]["seq"] == report["records_checked"]


async def test_a_writer_whose_head_was_moved_rereads_it(tmp_path: Path) -> None:
    # Two writers on one file (what the home lock prevents): a seq clash fails that one job
    # (fail closed), then the writer continues from the real head instead of clashing forever.
    first = await AuditStore.open(tmp_path / "rampartd.db")
    second = await AuditStore.open(tmp_path / "rampartd.db")
    try:
        assert (await first.append(draft(1)))["seq"] == 1
        with pytest.raises(Unavailable):
            await second.append(draft(2))  # second still believes the chain is empty
        assert (await second.append(draft(3)))["seq"] == 2
        with pytest.raises(Unavailable):  # a job with txn_ops on a stale head
            await first.transact(lambda conn: None, [draft(4)])
        assert (await first.transact(lambda conn: None, [draft(5)]))[1][0]["seq"] == 3
        report = verify_db(tmp_path / "rampartd.db")
        assert report["valid"] and report["head"]["seq"] == 3
    finally:
        await first.close()
        await second.close()
