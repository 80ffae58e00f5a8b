"""Durable append throughput through the audit writer (group commit) vs one record per commit.

    python -m bench.audit_append [--appenders 50] [--records 4000]

Both runs use the real AuditStore on a fresh file (WAL, synchronous=FULL, every append awaited
until committed). The baseline has one appender, so each transaction holds one record; the
measured run has N concurrent appenders, whose records the writer commits in groups.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from rampartd.audit import AuditStore, RecordDraft, verify_db


def draft(i: int) -> RecordDraft:
    """A typical decision record."""
    return RecordDraft("decision", agent=f"agent-{i % 7}", session="proj/main", tool="exec",
                       tool_call_id=f"tc_{i}", request={"command": f"git status {i}"},
                       decision={"action": "allow", "matched_policies": ["standard"],
                                 "message": "matched", "evaluation_time_us": 9})


async def run(db: Path, appenders: int, records: int) -> tuple[float, int]:
    """Append `records` records from `appenders` tasks; returns (seconds, transactions)."""
    commits = 0

    def count(batch: object) -> None:
        nonlocal commits
        commits += 1

    store = await AuditStore.open(db, on_commit=count)
    per_task = records // appenders

    async def appender(k: int) -> None:
        for i in range(per_task):
            await store.append(draft(k * per_task + i))

    started = time.perf_counter()
    await asyncio.gather(*(appender(k) for k in range(appenders)))
    took = time.perf_counter() - started
    await store.close()
    assert verify_db(db)["records_checked"] == per_task * appenders
    return took, commits


def main() -> None:
    """Run the baseline and the concurrent case and print appends/s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appenders", type=int, default=50)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--baseline-records", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_n = args.baseline_records
        base, base_commits = asyncio.run(run(Path(tmp) / "base.db", 1, base_n))
        n = args.records // args.appenders * args.appenders
        took, commits = asyncio.run(run(Path(tmp) / "group.db", args.appenders, n))
    print(f"baseline, 1 appender (one record per transaction): {base_n / base:,.0f} appends/s "
          f"({base_commits} transactions)")
    print(f"{args.appenders} concurrent appenders (group commit):        {n / took:,.0f} "
          f"appends/s ({commits} transactions, {n / max(commits, 1):.1f} records each)")
    print(f"speed-up: {(n / took) / (base_n / base):.1f}x")


if __name__ == "__main__":
    main()
