"""The real `rampartd serve` process under hostile input: malformed requests never put the
token in a log line or an answer, slow connections cannot starve ordinary calls, and SIGTERM
after load still ends in a clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import Daemon, start_daemon

pytestmark = pytest.mark.e2e
HOST = b"Host: 127.0.0.1\r\n"


def exchange(daemon: Daemon, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the daemon closes it."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=timeout) as sock:
        sock.sendall(raw)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def json_answer(raw: bytes) -> tuple[int, dict[str, object]]:
    """(status, JSON body) of a raw HTTP answer; fails unless the body is the error shape."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    data = json.loads(body)
    assert set(data) == {"error", "code"}, data
    return status, data


def malformed_shapes(token: bytes) -> dict[str, bytes]:
    """Requests aiohttp's parser refuses, each carrying the token somewhere."""
    auth = b"Authorization: Bearer " + token
    stream = b"GET /v1/events/stream?token=" + token
    return {
        "bad status line": stream + b" x HTTP/1.1\r\n" + HOST + b"\r\n",
        "unknown version": stream + b" HTTP/9.9\r\n" + HOST + b"\r\n",
        "control byte in target": stream + b"\x01 HTTP/1.1\r\n" + HOST + b"\r\n",
        "request line too long": stream + b"&p=" + b"A" * 9000 + b" HTTP/1.1\r\n" + HOST
        + b"\r\n",
        "control byte in header": b"GET /v1/status HTTP/1.1\r\n" + HOST + auth + b"\x01\r\n\r\n",
        "header too long": b"GET /v1/status HTTP/1.1\r\n" + HOST + b"X-Pad: " + token
        + b"A" * 9000 + b"\r\n\r\n",
        "space in header name": b"GET /v1/status HTTP/1.1\r\n" + HOST + b"Auth orization: Bearer "
        + token + b"\r\n\r\n",
        "LF endings and folding": b"GET /v1/status HTTP/1.1\nHost: 127.0.0.1\n"
        b"Authorization: Bearer\n " + token + b"\n\n",
        "bad Content-Length": b"POST /v1/tool/exec HTTP/1.1\r\n" + HOST + auth
        + b"\r\nContent-Length: x" + token + b"\r\n\r\n",
        "bad chunk size": b"POST /v1/tool/exec HTTP/1.1\r\n" + HOST + auth
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + token + b"\r\n",
        "NUL in method": b"G\x00T /v1/status?token=" + token + b" HTTP/1.1\r\n" + HOST + b"\r\n",
    }


def test_malformed_requests_get_json_400s_and_never_reach_the_log(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "home", "--log-level", "debug")
    try:
        token = daemon.token.encode()
        for name, raw in malformed_shapes(token).items():
            answer = exchange(daemon, raw)
            assert token not in answer, name
            status, body = json_answer(answer)
            assert status == 400 and body["code"] == "malformed_request", (name, body)
        encoded = (b"POST /v1/tool/exec HTTP/1.1\r\n" + HOST + b"Authorization: Bearer " + token
                   + b"\r\nContent-Encoding: br\r\nContent-Length: 2\r\nConnection: close"
                   b"\r\n\r\n{}")
        status, body = json_answer(exchange(daemon, encoded))
        assert (status, body["code"]) == (415, "unsupported_encoding")
        broken = encoded.replace(b"br", b"deflate").replace(b"{}", b"xx")
        status, body = json_answer(exchange(daemon, broken))
        assert (status, body["code"]) == (400, "invalid_encoding")
        probe = b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
        assert exchange(daemon, probe).startswith(b"HTTP/1.1 200")  # still serving
    finally:
        assert daemon.stop() == 0
    log = daemon.output()
    assert "refused a malformed request" in log
    assert daemon.token not in log
    assert "Traceback" not in log


def test_absolute_form_and_foreign_hosts_are_refused(daemon: Daemon) -> None:
    auth = b"Authorization: Bearer " + daemon.token.encode() + b"\r\nConnection: close\r\n\r\n"
    absolute = b"GET http://127.0.0.1/v1/status HTTP/1.1\r\nHost: evil.com\r\n" + auth
    status, body = json_answer(exchange(daemon, absolute))
    assert (status, body["code"]) == (400, "invalid_target")
    for host in (b"localhost:9090@evil", b"127.0.0.1:evil", b"localhost:", b"[::1]:9o"):
        status, body = json_answer(exchange(daemon, b"GET /v1/status HTTP/1.1\r\nHost: "
                                            + host + b"\r\n" + auth))
        assert (status, body["code"]) == (403, "bad_host"), host


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_slow_connections_cannot_starve_ordinary_calls(tmp_path: Path) -> None:
    cap = 100
    daemon = start_daemon(tmp_path / "home", "--max-connections", str(cap),
                          "--request-read-timeout", "30")
    slow: list[socket.socket] = []
    try:
        body = json.dumps({"agent": "a", "session": "s", "params": {"command": "git status"}})
        call = (f"POST /v1/tool/exec HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {daemon.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode()
        answered = 0
        for i in range(300):
            sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never ends
            slow.append(sock)
            if i % 10 == 9:  # 30 ordinary calls while the slow connections pile up
                answer = exchange(daemon, call, timeout=30)
                answered += answer.startswith(b"HTTP/1.1 200")
        assert answered == 30
        # The cap holds: the daemon has not kept anything like 300 sockets open.
        assert _open_fds(daemon.proc.pid) < cap + 60
        closed = 0
        for sock in slow:
            sock.settimeout(0.001)
            try:
                closed += sock.recv(1) == b""
            except (TimeoutError, BlockingIOError):
                pass
            except ConnectionResetError:
                closed += 1
        assert closed >= 300 - cap - 5  # the oldest were closed to make room
    finally:
        for sock in slow:
            sock.close()
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.output()


def test_a_request_that_never_finishes_is_cut_off(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "home", "--request-read-timeout", "0.5")
    try:
        auth = b"Authorization: Bearer " + daemon.token.encode() + b"\r\n"
        for partial in (b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                        b"POST /v1/test HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n"
                        + auth + b"\r\n{"):
            with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as sock:
                sock.sendall(partial)
                assert sock.recv(1) == b""  # closed by the daemon, not by our timeout
        ok = exchange(daemon, b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200")
    finally:
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.output()


def test_sigterm_after_load_shuts_down_cleanly(daemon: Daemon) -> None:
    token = daemon.token
    socks = []
    for i in range(200):
        body = json.dumps({"agent": "a", "session": "s", "params": {"command": f"ls {i}"}})
        sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
        sock.sendall((f"POST /v1/tool/exec HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
                      f"{body}").encode())
        socks.append(sock)  # keep-alive connections left open, as clients do
    for sock in socks:
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    stream = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    stream.sendall(f"GET /v1/events/stream?token={token} HTTP/1.1\r\n".encode() + HOST
                   + b"\r\n")
    seen = b""
    while b"connected" not in seen:
        chunk = stream.recv(65536)
        assert chunk, seen
        seen += chunk
    for i in range(25):  # requests still arriving: headers, or a body, cut short
        sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Slow: " if i % 5 else
                     f"POST /v1/tool/exec HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                     f"Bearer {token}\r\nContent-Length: 100\r\n\r\n{{".encode())
        socks.append(sock)
    ok = exchange(daemon, b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    code = daemon.proc.wait(timeout=30)
    elapsed = time.monotonic() - started
    print(f"SIGTERM after 200 calls, 200 idle connections, 25 unfinished requests and a "
          f"stream: exit in {elapsed:.3f}s")
    for sock in [*socks, stream]:
        sock.close()
    assert code == 0
    log = daemon.output()
    assert "shutting down" in log and log.rstrip().endswith("stopped")
    assert "Traceback" not in log


def test_at_the_cap_idle_connections_make_room_and_busy_ones_do_not(tmp_path: Path) -> None:
    cap = 6
    daemon = start_daemon(tmp_path / "home", "--max-connections", str(cap))
    held: list[socket.socket] = []
    try:
        healthz = b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n"
        for _ in range(cap):  # idle keep-alive connections, each after one answered request
            sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
            sock.sendall(healthz)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            held.append(sock)
        close = b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
        assert exchange(daemon, close).startswith(b"HTTP/1.1 200")
        assert held[0].recv(1) == b""  # the longest-idle one was closed to make room
        for sock in held:
            sock.close()
        held = []
        stream = f"GET /v1/events/stream?token={daemon.token} HTTP/1.1\r\n".encode() + HOST \
            + b"\r\n"
        while len(held) < cap:  # streams being answered: busy, never evicted
            sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
            sock.sendall(stream)
            seen = b""
            while b"connected" not in seen:
                chunk = sock.recv(65536)
                assert chunk, seen
                seen += chunk
            held.append(sock)
        status, body = json_answer(exchange(daemon, close))
        assert (status, body["code"]) == (503, "too_many_connections")
    finally:
        for sock in held:
            sock.close()
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.output()
