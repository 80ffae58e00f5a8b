"""Random input to every route of the real `rampartd serve` process: random bytes and random
JSON as bodies, random path parameters and query strings. Never a 500, never a hang, and
every error is the one JSON error shape."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rampartd.web.routes import ROUTES
from tests.conftest import Daemon, start_daemon

pytestmark = pytest.mark.e2e
# Each request has this long to be answered: far above any honest answer, far below a hang.
ANSWER_TIMEOUT = 15.0
EXAMPLES = 800  # per test (half for raw bytes); together some fifteen seconds

# Any code point, lone surrogates included (json.dumps writes them as \uXXXX escapes).
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=5),
    max_leaves=20)
# Bodies that look like the API's own, so handlers get past the first check.
FIELDS = ("agent", "session", "params", "run_id", "tool_call_id", "cwd", "command", "tool",
          "approved", "resolved_by", "reason", "message", "ids", "scope", "action", "name",
          "description", "status", "decision", "timeout_seconds", "requested_by")
api_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
# A well-formed tool call with arbitrary values: reaches evaluation, recording and approvals.
tool_calls = st.fixed_dictionaries(
    {"agent": any_text, "session": any_text,
     "params": st.dictionaries(st.sampled_from(["command", "path", "url", "amount", "x"]),
                               json_values, max_size=4)},
    optional={"run_id": any_text, "tool_call_id": any_text, "cwd": any_text})
bodies = st.one_of(st.binary(max_size=600), json_values.map(json.dumps),
                   api_like.map(json.dumps), tool_calls.map(json.dumps))
segment = st.text(min_size=1, max_size=30).map(lambda t: urllib.parse.quote(t, safe=""))
query = st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=3)


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for every example."""
    d = start_daemon(Path(tmp_path_factory.mktemp("fuzz")) / "home")
    try:
        yield d
    finally:
        assert d.stop() == 0
        assert "Traceback" not in d.output()


def send(daemon: Daemon, method: str, target: str, body: bytes | None,
         headers: dict[str, str]) -> tuple[int, bytes]:
    """One request on its own connection; the status and (for non-streams) the body."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=ANSWER_TIMEOUT)
    try:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        if resp.getheader("Content-Type", "").startswith("text/event-stream"):
            return resp.status, b""  # a stream that opened: it would never end by itself
        return resp.status, resp.read()
    finally:
        conn.close()


def check(status: int, data: bytes, what: str) -> None:
    """Not a 500, and an error answer is the JSON error shape."""
    assert status != 500 and status < 600, (what, status, data[:300])
    if status >= 400:
        error = json.loads(data)
        assert isinstance(error.get("error"), str) and isinstance(error.get("code"), str), \
            (what, data[:300])


def fill(path: str, values: list[str]) -> str:
    """The route's path with each {param} replaced by the next value."""
    it = iter(values)
    return re.sub(r"\{[^}]+\}", lambda _: next(it, "x"), path)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), values=st.lists(segment, max_size=2), params=query,
       body=bodies, admin=st.booleans())
def test_random_input_to_every_route(fuzz_daemon: Daemon, route: Any, values: list[str],
                                     params: dict[str, str], body: bytes | str,
                                     admin: bool) -> None:
    if "wait" in params:
        params.pop("wait")  # a valid ?wait= is a long poll by design, not a hang
    target = fill(route.path, values)
    if params:
        target += "?" + urllib.parse.urlencode(params)
    headers = {"Content-Type": "application/json"}
    if admin:
        headers["Authorization"] = f"Bearer {fuzz_daemon.token}"
    data = body.encode() if isinstance(body, str) else body
    status, answer = send(fuzz_daemon, route.method, target,
                          data if route.method in ("POST", "PATCH") else None, headers)
    check(status, answer, f"{route.method} {target}")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
       path=st.text(max_size=60), body=bodies,
       header=st.tuples(st.sampled_from(["Content-Type", "Content-Encoding", "Accept",
                                         "Last-Event-ID", "X-Anything"]),
                        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                max_size=40)))
def test_random_paths_methods_and_headers(fuzz_daemon: Daemon, method: str, path: str,
                                          body: bytes | str, header: tuple[str, str]) -> None:
    target = "/" + urllib.parse.quote(path, safe="/?=&")
    headers = {"Authorization": f"Bearer {fuzz_daemon.token}", header[0]: header[1]}
    data = body.encode() if isinstance(body, str) else body
    status, answer = send(fuzz_daemon, method, target, data if method != "HEAD" else None,
                          headers)
    if method == "HEAD":
        assert status != 500
        return
    check(status, answer, f"{method} {target} {header}")



@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(start=st.sampled_from([b"", b"GET /", b"POST /v1/tool/exec HTTP/1.1\r\n",
                              b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"]),
       noise=st.binary(max_size=300))
def test_random_bytes_on_the_wire(fuzz_daemon: Daemon, start: bytes, noise: bytes) -> None:
    with socket.create_connection(("127.0.0.1", fuzz_daemon.port),
                                  timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall(start + noise + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)  # the end of the input: the daemon answers or closes
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    if answer:
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/"), answer[:200]
        status = int(status_line.split()[1])
        body = rest.partition(b"\r\n\r\n")[2]
        if b"Transfer-Encoding: chunked" not in rest.partition(b"\r\n\r\n")[0]:
            check(status, body, repr(start + noise))
        else:
            assert status != 500
