"""Event-loop stalls while a real daemon reloads 1,500 policies, next to what the compile costs.

    python -m bench.reload_lag [--policies 1500] [--reloads 5]

Starts a real `rampartd serve`, replaces its policy file with `--policies` policies and
reloads it `--reloads` times (POST /v1/policy/reload, a second apart as the API allows) while
another connection sends GET /healthz every 5 ms. A probe waits for as long as the daemon's
event loop is stalled, so the worst probe latency during the reloads, less the median idle
round trip (measured first), is the worst stall. Printed next to the time one compile of the same
set takes in this process, measured in the same run, the daemon's RSS after each reload (a
replaced set that is not freed shows as growth) and the 50 ms target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bench.soak import rss_mib
from rampartd.policy import load_policy_dir
from tests.conftest import start_daemon
from tests.test_loop_lag import big_policy

TARGET_MS = 50.0
PROBE_EVERY = 0.005


async def probe_until(session: aiohttp.ClientSession, url: str, done: asyncio.Event) -> list[float]:
    """GET url every PROBE_EVERY seconds until `done`; the latencies in ms."""
    latencies: list[float] = []
    while not done.is_set():
        started = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(PROBE_EVERY)
    return latencies


async def measure(base: str, token: str, reloads: int,
                  rss: Callable[[], float]) -> tuple[list[float], list[tuple[float, float, float]]]:
    """(idle latencies, per reload: worst probe ms, reload round trip ms, RSS MiB after)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as probes, aiohttp.ClientSession() as admin:
        done = asyncio.Event()
        idle_task = asyncio.create_task(probe_until(probes, f"{base}/healthz", done))
        await asyncio.sleep(1.0)
        done.set()
        idle = await idle_task
        rounds: list[tuple[float, float, float]] = []
        for _ in range(reloads):
            await asyncio.sleep(1.1)  # the API takes one reload a second
            done = asyncio.Event()
            task = asyncio.create_task(probe_until(probes, f"{base}/healthz", done))
            await asyncio.sleep(0.1)
            started = time.perf_counter()
            async with admin.post(f"{base}/v1/policy/reload", headers=headers) as resp:
                body = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"reload failed: {resp.status} {body}")
            took = (time.perf_counter() - started) * 1000
            await asyncio.sleep(0.1)
            done.set()
            rounds.append((max(await task), took, rss()))
    return idle, rounds


def main() -> None:
    """Run the reloads and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", type=int, default=1500)
    parser.add_argument("--reloads", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rampartd-reload-") as tmp:
        home = Path(tmp) / "home"
        policy_dir = home / "policies"
        policy_dir.mkdir(parents=True)
        (policy_dir / "big.yaml").write_text(big_policy(10))
        daemon = start_daemon(home, timeout=120.0)
        try:
            (policy_dir / "big.yaml").write_text(big_policy(args.policies))
            started = time.perf_counter()
            load_policy_dir(policy_dir).warm()  # what one compile costs here, right now
            compile_ms = (time.perf_counter() - started) * 1000
            idle, rounds = asyncio.run(measure(daemon.base_url, daemon.token, args.reloads,
                                               lambda: rss_mib(daemon.proc.pid)))
        finally:
            daemon.stop()
    worst_probe = max(r[0] for r in rounds)
    worst = worst_probe - statistics.median(idle)  # the stall, less the probe's own round trip
    print(f"{args.reloads} reloads of {args.policies:,} policies; one compile in this process: "
          f"{compile_ms:,.0f} ms")
    print(f"/healthz every {PROBE_EVERY * 1000:g} ms: idle p50 {statistics.median(idle):.1f} ms, "
          f"max {max(idle):.1f} ms")
    print(f"{'reload':>8}{'worst probe ms':>16}{'reload ms':>12}{'RSS MiB':>10}")
    for n, (probe_ms, took, mib) in enumerate(rounds, 1):
        print(f"{n:>8}{probe_ms:>16.1f}{took:>12,.0f}{mib:>10.1f}")
    print(f"worst stall {worst:.1f} ms (worst probe {worst_probe:.1f} ms less the idle p50; "
          f"target < {TARGET_MS:g} ms) = {worst / compile_ms:.4f} of one compile")
    print(f"RSS after the first and last reload: {rounds[0][2]:.1f} -> {rounds[-1][2]:.1f} MiB")


if __name__ == "__main__":
    main()
