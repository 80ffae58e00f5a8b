"""How fast `rampartd serve` stops on SIGTERM with open event streams, next to an idle stop.

    python -m bench.shutdown [--streams 20] [--rounds 3]

Each round starts a real daemon in a fresh home, stops it idle (the baseline), starts it
again, opens `--streams` event streams and stops it. The contract is that every stream ends
within a second; the ratio shows what open streams add to a plain stop on this machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rampartd.home import read_token


def start(home: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A daemon on a free port; returns it and its port once it listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    env["RAMPARTD_HOME"] = str(home)
    log = home.parent / f"{home.name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rampartd", "serve", "--port", "0"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "listening on http://127.0.0.1:" in line:
                return proc, int(line.rsplit(":", 1)[1].split()[0].strip("/"))
        time.sleep(0.02)
    proc.kill()
    raise SystemExit(f"the daemon did not start; see {log}")


def stop_seconds(proc: subprocess.Popen[bytes]) -> float:
    """Seconds from SIGTERM to the process's exit."""
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    return time.perf_counter() - started


def open_streams(port: int, token: str, count: int) -> list[http.client.HTTPConnection]:
    """`count` open event streams, each past its first frame."""
    conns = []
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/v1/events/stream", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        resp.readline()  # retry: …
        conns.append(conn)
    return conns


def main() -> None:
    """Run the rounds and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    idle: list[float] = []
    busy: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            home = Path(tmp) / f"home-{i}"
            proc, _ = start(home)
            idle.append(stop_seconds(proc))
            proc, port = start(home)
            conns = open_streams(port, read_token(home / "token"), args.streams)
            busy.append(stop_seconds(proc))
            for conn in conns:
                conn.close()
    base, with_streams = statistics.median(idle), statistics.median(busy)
    print(f"idle stop: {base * 1000:.0f} ms (median of {args.rounds})")
    print(f"stop with {args.streams} open streams: {with_streams * 1000:.0f} ms")
    print(f"ratio to idle: {with_streams / base:.2f}x")


if __name__ == "__main__":
    main()
