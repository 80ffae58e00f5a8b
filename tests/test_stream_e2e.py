"""The event stream of a real `rampartd serve`, read by real clients: curl -N, requests, the
npm `eventsource` package (reconnecting across a restart) and `rampartd audit tail -f`."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests

from tests.conftest import REPO, Daemon, start_daemon
from tests.tooling import ensure_debian_package, ensure_node_package

pytestmark = pytest.mark.e2e

STREAM = "/v1/events/stream"

NODE_CLIENT = r"""
const { EventSource } = require("eventsource");
const es = new EventSource(process.argv[2]);
es.onopen = () => console.log(JSON.stringify({ open: true }));
es.onmessage = (e) => console.log(JSON.stringify({ id: e.lastEventId, data: JSON.parse(e.data) }));
es.onerror = () => console.log(JSON.stringify({ error: true }));
"""


class Lines:
    """Lines of a child's stdout, collected by a thread so reads can time out."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """The first new line that satisfies predicate."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no matching line; saw: {self.seen[-10:]}"
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, f"the output ended; saw: {self.seen[-10:]}"
            self.seen.append(line)
            if predicate(line):
                return line


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tool_call(daemon: Daemon, command: str, agent: str = "e2e") -> dict[str, Any]:
    """One recorded tool call through the daemon's HTTP API."""
    resp = requests.post(f"{daemon.base_url}/v1/tool/exec", timeout=10,
                         headers={"Authorization": f"Bearer {daemon.token}"},
                         json={"agent": agent, "session": "e2e", "params": {"command": command}})
    # (the daemon's own log says why, should it fail)
    assert resp.status_code == 200, f"{resp.text}\n{daemon.log.read_text()[-3000:]}"
    body: dict[str, Any] = resp.json()
    return body


def head(daemon: Daemon) -> int:
    """The daemon's audit head seq."""
    resp = requests.get(f"{daemon.base_url}/v1/status", timeout=10,
                        headers={"Authorization": f"Bearer {daemon.token}"})
    seq: int = resp.json()["audit_head"]["seq"]
    return seq


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes to kill at the end of a test."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_curl_sees_connected_then_audit_and_sigterm_ends_it(
        daemon: Daemon, children: list[subprocess.Popen[str]]) -> None:
    curl = ensure_debian_package("curl", "curl")
    proc = subprocess.Popen([curl, "-N", "-sS", "-H", f"Authorization: Bearer {daemon.token}",
                             daemon.base_url + STREAM], stdout=subprocess.PIPE, text=True)
    children.append(proc)
    lines = Lines(proc.stdout)  # type: ignore[arg-type]
    assert lines.until(bool) == "retry: 3000"
    connected = json.loads(lines.until(lambda x: x.startswith("data: "))[6:])
    assert connected["type"] == "connected"
    answer = tool_call(daemon, "ls -la")
    frame_id = lines.until(lambda x: x.startswith("id: "))
    data = json.loads(lines.until(lambda x: x.startswith("data: "))[6:])
    assert data["type"] == "audit" and data["kind"] == "decision.created"
    assert data["event"]["id"] == answer["audit_id"]
    assert frame_id == f"id: {data['event']['seq']}"
    # SIGTERM ends the open stream cleanly: curl sees the end of the body and exits 0, the
    # daemon exits 0 (bench/shutdown.py times it).
    assert daemon.stop(signal.SIGTERM) == 0
    assert proc.wait(timeout=10) == 0
    assert "Traceback" not in daemon.output()


def test_requests_streaming_client(daemon: Daemon) -> None:
    got: queue.Queue[dict[str, Any]] = queue.Queue()

    def listen() -> None:
        # Written the way a user would, after the project's own docs.
        with requests.get(daemon.base_url + STREAM, stream=True, timeout=30,
                          headers={"Authorization": f"Bearer {daemon.token}"},
                          params={"types": "audit", "agent": "req"}) as resp:
            for line in resp.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    data = json.loads(line[6:])
                    got.put(data)
                    if data["type"] == "audit":
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert got.get(timeout=20)["type"] == "connected"
    tool_call(daemon, "ls other", agent="someone-else")
    answer = tool_call(daemon, "ls mine", agent="req")
    data = got.get(timeout=20)
    assert data["type"] == "audit" and data["event"]["id"] == answer["audit_id"]
    thread.join(timeout=10)


def test_node_eventsource_reconnects_and_resumes_without_gaps(
        tmp_path: Path, children: list[subprocess.Popen[str]]) -> None:
    modules = ensure_node_package("eventsource@3", "eventsource")  # 3.x runs on Node >= 18
    home = tmp_path / "home"
    port = free_port()
    daemon = start_daemon(home, port=port)
    try:
        script = tmp_path / "es.cjs"
        script.write_text(NODE_CLIENT)
        proc = subprocess.Popen(["node", str(script), f"{daemon.base_url}{STREAM}?token="
                                 f"{daemon.token}"], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "NODE_PATH": str(modules)})
        children.append(proc)
        lines = Lines(proc.stdout)  # type: ignore[arg-type]
        messages: list[dict[str, Any]] = []

        def message(line: str) -> bool:
            msg = json.loads(line)
            if "data" in msg:
                messages.append(msg)
            return "data" in msg

        lines.until(message)
        assert messages[0]["data"]["type"] == "connected"
        for i in range(3):
            tool_call(daemon, f"ls before-{i}")
        while len(messages) < 4:
            lines.until(message)
        last_before = int(messages[-1]["id"])
        assert daemon.stop() == 0
        daemon = start_daemon(home, port=port)  # same port: the client reconnects by itself
        for i in range(3):
            tool_call(daemon, f"ls after-{i}")
        final = head(daemon)
        while not messages[-1]["id"] or int(messages[-1]["id"]) < final:
            lines.until(message)
        connected = [m for m in messages if m["data"]["type"] == "connected"]
        assert len(connected) == 2, "the client did not reconnect"
        ids = [int(m["data"]["event"]["seq"]) for m in messages if m["data"].get("event")]
        first = ids[0]
        assert ids == list(range(first, final + 1)), "a gap or a duplicate across the restart"
        # After the restart the client resumed from its Last-Event-ID: the restart's own
        # records (committed before it could reconnect) were replayed, not lost.
        after = messages[messages.index(connected[1]) + 1]
        assert int(after["id"]) == last_before + 1
        commands = [m["data"]["event"]["request"]["command"] for m in messages
                    if m["data"]["type"] == "audit"]
        assert commands == [f"ls before-{i}" for i in range(3)] + \
            [f"ls after-{i}" for i in range(3)]
    finally:
        daemon.stop()


def _tail(home: Path, port: int, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    env.update({"RAMPARTD_HOME": str(home), "RAMPARTD_PORT": str(port),
                "PYTHONPATH": str(REPO)})
    return subprocess.Popen([sys.executable, "-m", "rampartd", "audit", "tail", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)


def test_audit_tail_follows_across_a_restart(
        tmp_path: Path, children: list[subprocess.Popen[str]]) -> None:
    home = tmp_path / "home"
    port = free_port()
    daemon = start_daemon(home, port=port)
    try:
        tool_call(daemon, "ls earlier-one")
        tool_call(daemon, "cat /etc/hostname", agent="other")
        once = _tail(home, port, "-n", "5", "--agent", "e2e")
        out, _ = once.communicate(timeout=30)
        assert once.returncode == 0, out
        assert out.count("\n") == 1 and "ls earlier-one" in out and "allow" in out
        proc = _tail(home, port, "-f", "-n", "1")
        children.append(proc)
        lines = Lines(proc.stdout)  # type: ignore[arg-type]
        lines.until(lambda x: "cat /etc/hostname" in x)
        tool_call(daemon, "ls marker-1")
        line = lines.until(lambda x: "marker-1" in x)
        assert " e2e " in line and " exec " in line and " allow " in line
        assert daemon.stop() == 0
        daemon = start_daemon(home, port=port)
        tool_call(daemon, "ls marker-2")
        lines.until(lambda x: "marker-2" in x, timeout=30)
        joined = "\n".join(lines.seen)
        assert joined.count("marker-1") == 1 and joined.count("marker-2") == 1
        assert "policy.reloaded" in joined  # the restart's record, replayed after reconnect
        assert "Traceback" not in joined
    finally:
        daemon.stop()
