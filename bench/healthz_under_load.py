"""/healthz latency while crafted 64 KiB commands are evaluated, against the same idle, in one run.

    python -m bench.healthz_under_load [--crafted 10] [--probes 20]

Runs the real app in process (standard policy) and sends `--crafted` expensive commands at
once (thousands of glob arguments, thousands of nested `eval`s), then probes /healthz every
few milliseconds until they are answered. Prints the worst and median probe latency next to
the same figures with nothing else running (target: under 100 ms worse than idle).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from rampartd.config import load_settings
from rampartd.daemon import prepare_home
from rampartd.home import read_token
from rampartd.web.app import create_app


def crafted(n: int) -> str:
    """Expensive shapes of a 64 KiB command."""
    if n % 2:
        return "eval " * 13000 + "ls"
    return ("cat " + " ".join(f"~/.s*/[a-z]{n}{i}*" for i in range(6000)))[:64 * 1024 - 16]


async def probe(client: TestClient[Any, Any]) -> float:
    start = time.perf_counter()
    resp = await client.get("/healthz")
    await resp.read()
    return (time.perf_counter() - start) * 1000


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"home": str(Path(tmp) / "home"), "port": 0}, env={})
        prepare_home(settings)
        auth = {"Authorization": f"Bearer {read_token(settings.token_path)}"}
        async with TestClient(TestServer(create_app(settings))) as client:
            idle = [await probe(client) for _ in range(args.probes)]

            async def send(n: int) -> None:
                body = {"agent": "bench", "session": "b", "params": {"command": crafted(n)}}
                resp = await client.post("/v1/preflight/exec", json=body, headers=auth)
                await resp.read()

            start = time.perf_counter()
            tasks = [asyncio.create_task(send(n)) for n in range(args.crafted)]
            busy: list[float] = []
            while not all(t.done() for t in tasks):
                busy.append(await probe(client))
                await asyncio.sleep(0.005)
            await asyncio.gather(*tasks)
            total = time.perf_counter() - start
    print(f"/healthz under {args.crafted} crafted 64 KiB commands ({total:.2f} s to answer "
          f"them all), {len(busy)} probes")
    print(f"{'':24}{'p50 ms':>8}{'max ms':>8}")
    print(f"{'idle':24}{statistics.median(idle):8.1f}{max(idle):8.1f}")
    print(f"{'while evaluating':24}{statistics.median(busy):8.1f}{max(busy):8.1f}")
    print(f"worst delay over idle: {max(busy) - max(idle):.1f} ms (target < 100 ms); "
          f"ratio p50 {statistics.median(busy) / statistics.median(idle):.1f}x")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crafted", type=int, default=10)
    parser.add_argument("--probes", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
