"""Soak: memory over a long run, for the call counter and for the real daemon.

    python -m bench.soak [--counter-calls 1000000] [--http-calls 50000] [--concurrency 32]

1. One million calls through the call counter sized for a policy with call_count rules (the
   daemon's bounded counter), and the same calls through an unbounded one (every timestamp of
   the last day, as a naive counter keeps) as the baseline: memory held and ns per call.
2. A real `rampartd serve` with that policy, driven over HTTP with durable decisions from many
   agents: its RSS after a warm-up and after the run (target: growth under 50 MiB), then how
   long SIGTERM takes to end it (target: under a second).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import aiohttp

from rampartd.policy import compile_text
from rampartd.policy.counter import MAX_WINDOW_SECONDS, SlidingWindowCounter, requirements
from tests.conftest import start_daemon

POLICY = """\
version: "1"
default_action: allow
policies:
  - name: rates
    match: {tool: "*"}
    rules:
      - action: deny
        message: slow down
        when: {call_count: {max: 100, window: 1h}}
      - action: watch
        message: a burst
        when: {call_count: {max: 30, window: 60s}}
"""
AGENTS = 50
TOOLS = ("exec", "read", "write", "fetch")


def counter_memory(counter: SlidingWindowCounter, calls: int) -> tuple[float, float]:
    """(MiB held after `calls` records at 2,000 calls/s of simulated time, ns per record)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter_ns()
    for i in range(calls):
        counter.record(f"agent-{i % AGENTS}", TOOLS[i % len(TOOLS)], 1_000_000.0 + i / 2000)
    elapsed = time.perf_counter_ns() - started
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / 2**20, elapsed / calls


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def drive(base: str, token: str, calls: int, concurrency: int) -> float:
    """Send `calls` tool calls from many agents; returns calls per second."""
    headers = {"Authorization": f"Bearer {token}"}
    counter = iter(range(calls))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in counter:
            body = {"agent": f"agent-{i % AGENTS}", "session": f"s-{i % 7}",
                    "params": {"command": f"ls /tmp/{i}", "path": f"/tmp/{i}"}}
            async with session.post(f"{base}/v1/tool/{TOOLS[i % len(TOOLS)]}",
                                    data=json.dumps(body), headers=headers) as resp:
                await resp.read()
                if resp.status >= 500:
                    raise RuntimeError(f"{resp.status}: {await resp.text()}")

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


def main() -> None:
    """Run both soaks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counter-calls", type=int, default=1_000_000)
    parser.add_argument("--http-calls", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    keep, horizon = requirements(compile_text(POLICY))
    bounded_mib, bounded_ns = counter_memory(SlidingWindowCounter(keep, horizon),
                                             args.counter_calls)
    naive_mib, naive_ns = counter_memory(SlidingWindowCounter(None, MAX_WINDOW_SECONDS),
                                         args.counter_calls)
    print(f"counter, {args.counter_calls:,} calls from {AGENTS} agents x {len(TOOLS)} tools "
          f"(keep {keep}, horizon {horizon:g}s):")
    print(f"  bounded   {bounded_mib:8.2f} MiB held  {bounded_ns:6.0f} ns/call")
    print(f"  unbounded {naive_mib:8.2f} MiB held  {naive_ns:6.0f} ns/call  (baseline)")
    print(f"  memory ratio bounded/unbounded: {bounded_mib / naive_mib:.4f}")

    with tempfile.TemporaryDirectory(prefix="rampartd-soak-") as tmp:
        home = Path(tmp) / "home"
        (home / "policies").mkdir(parents=True)
        (home / "policies" / "soak.yaml").write_text(POLICY)
        daemon = start_daemon(home)
        try:
            asyncio.run(drive(daemon.base_url, daemon.token, 2000, args.concurrency))
            before = rss_mib(daemon.proc.pid)
            rate = asyncio.run(drive(daemon.base_url, daemon.token, args.http_calls,
                                     args.concurrency))
            after = rss_mib(daemon.proc.pid)
        finally:
            started = time.perf_counter()
            code = daemon.stop()
            stopped = time.perf_counter() - started
    print(f"daemon, {args.http_calls:,} durable calls at {rate:,.0f}/s: RSS {before:.1f} MiB "
          f"-> {after:.1f} MiB, growth {after - before:+.1f} MiB (target < 50 MiB)")
    print(f"SIGTERM after the soak: exit code {code} in {stopped:.3f}s (target < 1s)")


if __name__ == "__main__":
    main()
