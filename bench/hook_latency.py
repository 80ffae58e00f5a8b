"""End-to-end latency of the agent-host hook: the real `rampartd-hook` spawned per call.

    python -m bench.hook_latency [-n 200] [--host claude-code]

Starts a real `rampartd serve` (standard policy, durable audit) on a temporary home and runs
the hook executable N times with a Claude Code PreToolUse payload on stdin, exactly as a host
does (a fresh process per call, allow and deny commands alternating). As the baseline,
`python -c pass` is spawned the same way in the same run, interleaved, so machine load hits
both alike. Prints p50/p99 of each and the hook's overhead over a bare interpreter start.

Bytecode is written on the first (warm-up) run of each, as it is for an installed package:
PYTHONDONTWRITEBYTECODE is dropped from the children's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.http_eval import start

TARGET_P50_MS, TARGET_P99_MS = 30.0, 60.0
COMMANDS = ("git status", "bash -c 'rm -rf ~'", "npm test", "cat README.md")


def free_port() -> int:
    """A currently unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hook_argv(host: str) -> list[str]:
    """The installed hook beside this interpreter (what `rampartd setup` writes)."""
    script = Path(sys.executable).parent / "rampartd-hook"
    if script.exists():
        return [str(script), host]
    return [sys.executable, "-m", "rampartd.hooks", host]


def timed(argv: list[str], stdin: bytes, env: dict[str, str]) -> float:
    """Milliseconds from spawn to exit of one process."""
    start_ns = time.perf_counter_ns()
    proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
    elapsed = (time.perf_counter_ns() - start_ns) / 1e6
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{argv[0]} failed: {proc.stderr.decode(errors='replace')}")
    return elapsed


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="calls of each kind")
    parser.add_argument("--host", default="claude-code")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rampartd-hook-bench-") as tmp:
        home = Path(tmp) / "home"
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("RAMPARTD_") and k != "PYTHONDONTWRITEBYTECODE"}
        env.update(RAMPARTD_HOME=str(home), RAMPARTD_PORT=str(port))
        daemon = start([sys.executable, "-m", "rampartd", "serve", "--port", str(port)],
                       Path(tmp) / "daemon.log", env)
        try:
            events = [json.dumps({"session_id": "bench", "hook_event_name": "PreToolUse",
                                  "cwd": tmp, "tool_name": "Bash",
                                  "tool_input": {"command": c},
                                  "tool_use_id": f"bench-{i}"}).encode()
                      for i, c in enumerate(COMMANDS)]
            hook, baseline = hook_argv(opts.host), [sys.executable, "-c", "pass"]
            for _ in range(3):  # warm-up: bytecode written, page cache filled
                timed(hook, events[0], env)
                timed(baseline, b"", env)
            hook_ms: list[float] = []
            base_ms: list[float] = []
            for i in range(opts.n):
                hook_ms.append(timed(hook, events[i % len(events)], env))
                base_ms.append(timed(baseline, b"", env))
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)
    p50, p99 = pct(hook_ms, 0.5), pct(hook_ms, 0.99)
    b50, b99 = pct(base_ms, 0.5), pct(base_ms, 0.99)
    print(f"rampartd-hook ({opts.host}, {opts.n} calls): p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
          f"mean {statistics.fmean(hook_ms):.1f} ms")
    print(f"python -c pass (baseline):           p50 {b50:.1f} ms  p99 {b99:.1f} ms")
    print(f"ratio to baseline: p50 {p50 / b50:.2f}x  p99 {p99 / b99:.2f}x; "
          f"hook overhead p50 {p50 - b50:.1f} ms")
    print(f"target p50 <= {TARGET_P50_MS:g} ms, p99 <= {TARGET_P99_MS:g} ms: "
          f"{'met' if p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
