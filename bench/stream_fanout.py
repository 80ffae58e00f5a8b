"""Event stream fan-out against a real `rampartd serve`: latency, memory, throughput cost.

    python -m bench.stream_fanout [--rate 100] [--seconds 5]

One run prints, for 100 and 1,000 concurrent subscribers, the delivery latency (p50/p99) from
a record's commit to a subscriber receiving its frame while tool calls arrive at a steady rate;
the daemon's resident memory per idle subscriber; and tool-call throughput with 100 connected
subscribers as a ratio to throughput with none.

Subscribers are raw asyncio connections that read every frame (no filter). Latency is measured
on every 10th subscriber (all of them read everything) as receive time minus the record's `ts`,
which the writer stamps just before the commit, so it slightly overstates commit-to-client.
Targets: p99 <= 250 ms with 1,000 subscribers at 100 events/s; <= 64 KiB per idle subscriber;
throughput with 100 subscribers >= 80% of throughput with none.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
TS = re.compile(rb'"ts":"([0-9T:.\-]+)Z"')
SAMPLE_EVERY = 10


def free_port() -> int:
    """A currently unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def epoch(ts: bytes) -> float:
    """A record ts (without the Z) as epoch seconds."""
    return datetime.fromisoformat(ts.decode() + "+00:00").timestamp()


class Subscriber(asyncio.Protocol):
    """One stream client; optionally records commit-to-receive latencies."""

    def __init__(self, request: bytes, sample: list[float] | None) -> None:
        self.request = request
        self.sample = sample
        self.connected = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.frames = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the GET."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        """Count frames; sampled subscribers time each one."""
        now = time.time()
        if not self.connected.done():
            self.buffer += data
            if b'"type":"connected"' in self.buffer:
                self.connected.set_result(None)
                self.buffer = b""
            return
        self.frames += data.count(b"\nid: ") + data.startswith(b"id: ")
        if self.sample is None:
            return
        self.buffer += data
        cut = self.buffer.rfind(b"\n\n")
        if cut < 0:
            return
        complete, self.buffer = self.buffer[:cut], self.buffer[cut + 2:]
        for match in TS.finditer(complete):
            self.sample.append(now - epoch(match.group(1)))

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing to clean up."""
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("stream refused"))

    def close(self) -> None:
        """Hang up."""
        if self.transport is not None:
            self.transport.close()


class Bench:
    """Drives one daemon."""

    def __init__(self, port: int, token: str, pid: int) -> None:
        self.port = port
        self.token = token
        self.pid = pid
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.subs: list[Subscriber] = []
        self.latencies: list[float] = []

    async def open_subscribers(self, total: int, *, timed: bool = True) -> None:
        """Grow to `total` connected subscribers, 100 connections at a time."""
        loop = asyncio.get_running_loop()
        request = (f"GET /v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                   f"Authorization: Bearer {self.token}\r\n\r\n").encode()
        while len(self.subs) < total:
            batch = []
            for _ in range(min(100, total - len(self.subs))):
                index = len(self.subs) + len(batch)
                sample = self.latencies if timed and index % SAMPLE_EVERY == 0 else None
                batch.append(Subscriber(request, sample))
            await asyncio.gather(*(loop.create_connection(lambda s=s: s, "127.0.0.1",
                                                          self.port) for s in batch))
            await asyncio.gather(*(s.connected for s in batch))
            self.subs.extend(batch)

    def close_subscribers(self, keep: int) -> None:
        """Hang up all but `keep` subscribers."""
        for sub in self.subs[keep:]:
            sub.close()
        self.subs = self.subs[:keep]

    async def stream_clients(self, session: aiohttp.ClientSession) -> int:
        """The daemon's own count of open streams."""
        async with session.get(self.base + "/v1/status", headers=self.headers) as resp:
            count: int = (await resp.json())["stream_clients"]
            return count

    async def wait_for_clients(self, session: aiohttp.ClientSession, n: int) -> None:
        """Until the daemon sees exactly n streams."""
        while await self.stream_clients(session) != n:
            await asyncio.sleep(0.1)

    async def call(self, session: aiohttp.ClientSession, i: int) -> None:
        """One recorded tool call."""
        body = {"agent": "bench", "session": "s", "params": {"command": f"ls {i}"}}
        async with session.post(self.base + "/v1/tool/exec", json=body,
                                headers=self.headers) as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()

    async def steady(self, session: aiohttp.ClientSession, rate: float,
                     seconds: float) -> tuple[float, float, int]:
        """Tool calls at a fixed rate; returns latency p50, p99 (ms) and samples."""
        self.latencies.clear()
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = int(rate * seconds)
        tasks = []
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            tasks.append(asyncio.create_task(self.call(session, i)))
        await asyncio.gather(*tasks)
        sampled = sum(1 for i, _ in enumerate(self.subs) if i % SAMPLE_EVERY == 0)
        expected = sampled * n
        deadline = loop.time() + 30
        while len(self.latencies) < expected and loop.time() < deadline:
            await asyncio.sleep(0.05)
        ms = sorted(x * 1000 for x in self.latencies)
        if not ms:
            return float("nan"), float("nan"), 0
        return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))], len(ms)

    async def throughput(self, session: aiohttp.ClientSession, seconds: float,
                         concurrency: int) -> float:
        """Closed-loop tool calls/s from `concurrency` callers."""
        loop = asyncio.get_running_loop()
        stop = loop.time() + seconds
        done = 0

        async def worker(k: int) -> None:
            nonlocal done
            i = 0
            while loop.time() < stop:
                await self.call(session, k * 1_000_000 + i)
                i += 1
                done += 1

        started = loop.time()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return done / (loop.time() - started)


async def run(bench: Bench, args: argparse.Namespace) -> None:
    """The whole measurement sequence, printing as it goes."""
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        await bench.throughput(session, 1.0, args.concurrency)  # warm-up
        await bench.open_subscribers(1)
        bench.close_subscribers(0)
        await bench.wait_for_clients(session, 0)
        rss0 = rss_kib(bench.pid)
        await bench.open_subscribers(1000)
        await bench.wait_for_clients(session, 1000)
        await asyncio.sleep(1.0)  # let the daemon settle before reading its memory
        per_idle = (rss_kib(bench.pid) - rss0) / 1000
        print(f"memory per idle subscriber (1,000 open):    {per_idle:8.1f} KiB  (target <= 64)")

        p50, p99, n = await bench.steady(session, args.rate, args.seconds)
        print(f"1,000 subscribers, {args.rate:g} events/s: latency p50 {p50:6.1f} ms, "
              f"p99 {p99:6.1f} ms  ({n:,} samples; target p99 <= 250 ms)")

        bench.close_subscribers(100)
        await bench.wait_for_clients(session, 100)
        p50, p99, n = await bench.steady(session, args.rate, args.seconds)
        print(f"  100 subscribers, {args.rate:g} events/s: latency p50 {p50:6.1f} ms, "
              f"p99 {p99:6.1f} ms  ({n:,} samples)")

        # Throughput is noisy on a small machine: alternate rounds, compare medians. The
        # subscribers keep reading every frame but stop timing them (that is bench work).
        bases: list[float] = []
        loads: list[float] = []
        for _ in range(args.rounds):
            bench.close_subscribers(0)
            await bench.wait_for_clients(session, 0)
            bases.append(await bench.throughput(session, args.throughput_seconds,
                                                args.concurrency))
            await bench.open_subscribers(100, timed=False)
            await bench.wait_for_clients(session, 100)
            loads.append(await bench.throughput(session, args.throughput_seconds,
                                                args.concurrency))
        base, loaded = statistics.median(bases), statistics.median(loads)
        print(f"tool-call throughput, no subscribers:       {base:8,.0f} calls/s  "
              f"(median of {args.rounds}: {', '.join(f'{x:,.0f}' for x in bases)})")
        print(f"tool-call throughput, 100 subscribers:      {loaded:8,.0f} calls/s  "
              f"(median of {args.rounds}: {', '.join(f'{x:,.0f}' for x in loads)})")
        print(f"ratio with 100 subscribers / with none:     {loaded / base:8.2f}  "
              f"(target >= 0.80)")
        bench.close_subscribers(0)


def main() -> None:
    """Start a daemon in a temporary home, measure, stop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="steady-rate duration")
    parser.add_argument("--throughput-seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating throughput rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="callers for throughput")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
        env.update({"RAMPARTD_HOME": str(home), "PYTHONPATH": str(REPO),
                    "RAMPARTD_STREAM_MAX_TOTAL": "2000",
                    "RAMPARTD_STREAM_MAX_PER_CREDENTIAL": "2000",
                    "RAMPARTD_LOG_LEVEL": "warning"})
        proc = subprocess.Popen([sys.executable, "-m", "rampartd", "serve", "--port", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("rampartd did not start") from None
                    time.sleep(0.05)
            token = (home / "token").read_text().strip()
            asyncio.run(run(Bench(port, token, proc.pid), args))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
