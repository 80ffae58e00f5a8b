"""Queries: filters, keyset and offset pagination, get, stats, dates, export, catch-up."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rampartd.audit import AuditStore, EventFilter, RecordDraft
from rampartd.audit.filters import (
    decode_cursor,
    encode_cursor,
    is_kind_pattern,
    normalize_time,
    parse_day,
)

TOOLS = ["exec", "read", "write"]
ACTIONS = ["allow", "deny", "ask", "watch"]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AuditStore]:
    """A store with 60 decisions (varied tool/action/agent/session) and 3 other records."""
    s = await AuditStore.open(tmp_path / "rampartd.db")
    await s.append_many([RecordDraft(
        "decision", agent=f"agent-{i % 2}", session=f"sess-{i % 3}", run_id=f"run-{i % 5}",
        tool=TOOLS[i % 3], request={"i": i},
        decision={"action": ACTIONS[i % 4], "matched_policies": []}) for i in range(60)])
    await s.append_many([RecordDraft("approval.requested", agent="agent-0", tool="exec"),
                         RecordDraft("approval.resolved", agent="agent-0", tool="exec"),
                         RecordDraft("policy.reloaded", detail={"policies": 3})])
    yield s
    await s.close()


async def test_filters_select_matching_records_newest_first(store: AuditStore) -> None:
    page, cursor = await store.query(EventFilter(tool="exec", action="deny"), limit=500)
    assert cursor is None
    assert [r["request"]["i"] for r in page] == [i for i in range(59, -1, -1)
                                                 if i % 3 == 0 and i % 4 == 1]
    page, _ = await store.query(EventFilter(agent="agent-1", session="sess-2", run_id="run-3"))
    assert page and all((r["agent"], r["session"], r["run_id"]) == ("agent-1", "sess-2", "run-3")
                        for r in page)
    page, _ = await store.query(EventFilter(kind="approval.*"))
    assert [r["kind"] for r in page] == ["approval.resolved", "approval.requested"]
    page, _ = await store.query(EventFilter(kind="policy.reloaded"))
    assert page[0]["detail"] == {"policies": 3}


async def test_keyset_pagination_has_no_gap_and_no_duplicate(store: AuditStore) -> None:
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        before = None if cursor is None else decode_cursor(cursor)
        page, cursor = await store.query(EventFilter(), limit=7, before=before)
        # A record appended meanwhile must not shift later pages.
        await store.append(RecordDraft("decision", tool="exec"))
        seen += [r["seq"] for r in page]
        pages += 1
        if cursor is None:
            break
    assert seen == list(range(63, 0, -1)) and pages == 9


async def test_date_and_offset_form(store: AuditStore) -> None:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    first, _ = await store.query(EventFilter(date=parse_day(today)), limit=10, offset=0)
    second, _ = await store.query(EventFilter(date=parse_day(today)), limit=10, offset=10)
    assert [r["seq"] for r in first + second] == list(range(63, 43, -1))
    none, cursor = await store.query(EventFilter(date=parse_day("2001-01-01")), offset=5)
    assert none == [] and cursor is None


async def test_since_and_until(store: AuditStore) -> None:
    all_records, _ = await store.query(EventFilter(), limit=500)
    middle = all_records[30]["ts"]
    newer, _ = await store.query(EventFilter(since=middle), limit=500)
    older, _ = await store.query(EventFilter(until=middle), limit=500)
    assert {r["seq"] for r in newer} | {r["seq"] for r in older} == set(range(1, 64))
    assert not {r["seq"] for r in newer} & {r["seq"] for r in older}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    whole_day, _ = await store.query(EventFilter(since=normalize_time(today),
                                                 until=normalize_time(today, end=True)),
                                     limit=500)
    assert len(whole_day) == 63
    epoch, _ = await store.query(EventFilter(since=normalize_time(str(int(time.time()) + 3600))))
    assert epoch == []


async def test_paging_outside_its_bounds_is_a_caller_error(store: AuditStore) -> None:
    # web/ refuses these with a 400 before the store is asked (see test_api_params.py)
    for kwargs in ({"limit": 501}, {"limit": 0}, {"offset": -1}):
        with pytest.raises(ValueError, match="limit must be"):
            await store.query(EventFilter(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("parse", "text", "reason"), [
    (normalize_time, "yesterday", "RFC 3339"), (normalize_time, "2026-13-01", "calendar date"),
    (normalize_time, "-5", "before 1970"), (parse_day, "2026-02-30", "calendar date"),
    (parse_day, "today", "a date like"), (decode_cursor, "not-a-cursor", "cursor"),
    (decode_cursor, encode_cursor(5)[:-2], "cursor"),
])
def test_bad_values_are_refused_with_the_reason(parse: object, text: str, reason: str) -> None:
    assert callable(parse)
    with pytest.raises(ValueError, match=reason):
        parse(text)


def test_kind_patterns() -> None:
    assert is_kind_pattern("approval.*") and is_kind_pattern("policy.reloaded")
    assert not is_kind_pattern("*") and not is_kind_pattern("a b") and \
        not is_kind_pattern("x" * 65)
    assert decode_cursor(encode_cursor(41)) == 41


def test_times_normalise_to_the_stored_shape() -> None:
    assert normalize_time("2026-11-22T11:15:30+01:00") == "2026-11-22T10:15:30.000000Z"
    assert normalize_time("2026-11-22", end=True) == "2026-11-23T00:00:00.000000Z"
    assert normalize_time("0") == "1970-01-01T00:00:00.000000Z"


async def test_get_by_id(store: AuditStore) -> None:
    page, _ = await store.query(EventFilter(), limit=1)
    assert await store.get(page[0]["id"]) == page[0]
    assert await store.get(page[0]["id"].lower()) == page[0]
    assert await store.get("01JAAAAAAAAAAAAAAAAAAAAAAA") is None
    assert await store.get("../etc/passwd") is None  # web/ refuses a non-ULID id with a 400


async def test_stats_count_by_action_tool_agent_session(store: AuditStore) -> None:
    stats = await store.stats(None, None)
    assert stats["total"] == 63 and stats["decisions"] == 60
    assert stats["by_kind"] == {"decision": 60, "approval.requested": 1,
                                "approval.resolved": 1, "policy.reloaded": 1}
    assert stats["by_action"] == {"allow": 15, "ask": 15, "deny": 15, "watch": 15}
    assert stats["by_tool"] == {"exec": 20, "read": 20, "write": 20}
    assert stats["by_agent"] == {"agent-0": 30, "agent-1": 30}
    assert stats["by_session"] == {"sess-0": 20, "sess-1": 20, "sess-2": 20}
    empty = await store.stats(normalize_time("2001-01-01"),
                              normalize_time("2001-01-02", end=True))
    assert empty["total"] == 0 and empty["by_action"] == {}
    assert empty["until"] == "2001-01-03T00:00:00.000000Z"


async def test_dates_list_days_with_counts(store: AuditStore) -> None:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    conn = sqlite3.connect(store.db_path)  # an older day, written as a migration import would
    try:
        conn.execute("UPDATE audit_log SET ts = '2026-01-02T00:00:00.000000Z' WHERE seq <= 3")
        conn.commit()
    finally:
        conn.close()
    assert await store.dates() == [{"date": today, "count": 60},
                                   {"date": "2026-01-02", "count": 3}]


async def test_export_streams_jsonl_in_chunks(tmp_path: Path) -> None:
    s = await AuditStore.open(tmp_path / "db")
    try:
        await s.append_many([RecordDraft("decision", tool=TOOLS[i % 3], request={"i": i})
                             for i in range(2500)])
        chunks = [c async for c in s.export(EventFilter())]
        assert len(chunks) == 3  # 1000 records per chunk, never the whole log at once
        records = [json.loads(line) for c in chunks for line in c.splitlines()]
        assert [r["seq"] for r in records] == list(range(1, 2501))
        assert records[0] == await s.get(records[0]["id"])
        reads = [json.loads(line) async for c in s.export(EventFilter(tool="read"))
                 for line in c.splitlines()]
        assert len(reads) == 833 and {r["tool"] for r in reads} == {"read"}
    finally:
        await s.close()


async def test_after_seq_and_recent_calls(store: AuditStore) -> None:
    after = await store.after_seq(58, limit=3)
    assert [r["seq"] for r in after] == [59, 60, 61]
    assert await store.after_seq(63) == []
    calls = await store.recent_calls(time.time() - 60)
    assert len(calls) == 60
    assert calls[0][:2] == ("agent-0", "exec") and abs(calls[0][2] - time.time()) < 60
    assert await store.recent_calls(time.time() + 60) == []


async def test_reader_serves_other_modules_tables(store: AuditStore) -> None:
    async with store.reader() as conn, conn.execute("SELECT COUNT(*) FROM audit_log") as cur:
        assert await cur.fetchone() == (63,)
    async with store.reader() as conn:
        with pytest.raises(Exception, match=r"readonly|read-only|query_only|attempt to write"):
            await conn.execute("DELETE FROM audit_log")
