"""Verify throughput of the audit chain on a large log, next to a plain-read baseline.

    python -m bench.audit_verify [--records 1000000] [--db PATH]

Builds the log directly in one transaction (no writer thread; canonical bytes from a template
checked against build_record), then
times (a) a plain SELECT of every row without hashing and (b) verify_db, which streams the
same rows, decodes each record and recomputes its hash.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rampartd.audit.chain import (
    ROW_COLUMNS,
    build_record,
    canonical_bytes,
    compute_hash,
    format_ts,
)
from rampartd.audit.migrations import apply_migrations
from rampartd.audit.verify import verify_db
from rampartd.audit.writer import INSERT_SQL

TOOLS = ("exec", "read", "write", "edit", "fetch")
ACTIONS = ("allow", "deny", "ask", "watch")


def payload(i: int) -> dict[str, Any]:
    """The draft payload of record i, shaped like a real decision."""
    return {
        "kind": "decision", "agent": f"agent-{i % 7}", "session": f"proj/{i % 13}",
        "tool": TOOLS[i % 5], "tool_call_id": f"tc_{i}",
        "request": {"command": f"git log -n {i % 50} --oneline", "cwd": "/home/u/proj"},
        "decision": {"action": ACTIONS[i % 4], "matched_policies": ["standard"],
                     "message": "matched", "suggestions": [], "evaluation_time_us": 9,
                     "policy": "standard"},
    }


def template() -> str:
    """Canonical bytes of a record with %-placeholders where records differ.

    rfc8785 costs ~40 µs a record in pure Python; filling this template gives the same bytes
    (the varying values are plain ASCII), which rows() checks against build_record regularly.
    """
    marks = {"seq": "@seq@", "id": "@id@", "ts": "@ts@", "agent": "@agent@",
             "session": "@session@", "tool": "@tool@", "tool_call_id": "@tc@",
             "command": "@command@", "action": "@action@", "prev_hash": "@prev@"}
    draft = payload(0)
    draft.update(agent=marks["agent"], session=marks["session"], tool=marks["tool"],
                 tool_call_id=marks["tool_call_id"])
    draft["request"]["command"] = marks["command"]
    draft["decision"]["action"] = marks["action"]
    record, _, _ = build_record(draft, seq=0, record_id=marks["id"], ts=marks["ts"],
                                prev_hash=marks["prev_hash"])
    record["seq"] = marks["seq"]
    text = canonical_bytes(record).decode().replace("%", "%%")
    for name, mark in marks.items():
        text = text.replace(f'"{mark}"', "%(seq)d" if name == "seq" else f'"%({name})s"')
    return text


def rows(n: int) -> Iterator[tuple[Any, ...]]:
    """n chained rows; every 10,000th is rebuilt with build_record to prove the bytes equal."""
    fill = template()
    prev = ""
    start_us = int(time.time() * 1_000_000) - n * 1000
    for i in range(n):
        data = payload(i)
        values = {"seq": i + 1, "id": f"01K{i:023d}", "ts": format_ts(start_us + i * 1000),
                  "agent": data["agent"], "session": data["session"], "tool": data["tool"],
                  "tool_call_id": data["tool_call_id"], "command": data["request"]["command"],
                  "action": data["decision"]["action"], "prev_hash": prev}
        canonical = (fill % values).encode()
        digest = compute_hash(prev, canonical)
        if i % 10_000 == 0:
            _, exact, exact_digest = build_record(data, seq=i + 1, record_id=values["id"],
                                                  ts=values["ts"], prev_hash=prev)
            assert (exact, exact_digest) == (canonical, digest), i
        yield (i + 1, values["id"], values["ts"], "decision", data["agent"], data["session"],
               data["tool"], data["decision"]["action"], None, prev, digest, canonical)
        prev = digest


def build(db: Path, n: int) -> float:
    """Write n records in one transaction; returns seconds taken."""
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    apply_migrations(conn)
    conn.execute("BEGIN")
    conn.executemany(INSERT_SQL, rows(n))
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - started


def plain_read(db: Path) -> tuple[int, float]:
    """Baseline: read every row (same columns as verify) without hashing."""
    started = time.perf_counter()
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    count = 0
    for _ in conn.execute(f"SELECT {ROW_COLUMNS} FROM audit_log ORDER BY seq"):
        count += 1
    conn.close()
    return count, time.perf_counter() - started


def main() -> None:
    """Build, then print baseline and verify throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if not db.exists():
            seconds = build(db, args.records)
            print(f"built {args.records:,} records in {seconds:.1f} s "
                  f"({args.records / seconds:,.0f} records/s)")
        count, base = plain_read(db)
        started = time.perf_counter()
        report = verify_db(db)
        took = time.perf_counter() - started
        assert report["valid"] and report["records_checked"] == count, report
        print(f"baseline plain SELECT: {count:,} rows in {base:.2f} s = {count / base:,.0f} rows/s")
        print(f"verify_db:             {count:,} rows in {took:.2f} s = {count / took:,.0f} "
              f"records/s")
        print(f"verify costs {took / base:.1f}x the plain read")


if __name__ == "__main__":
    main()
