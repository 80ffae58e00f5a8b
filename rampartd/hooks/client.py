"""The hook's connection to the daemon: where it is, the key, one signed request, the proof.

The token never leaves the hook: requests are signed with the key derived from it
(rampartd.proof), so whatever listens on the port learns nothing it could forge a proof with
or present to the daemon.

A raw HTTP/1.1 request over a socket instead of http.client, whose import alone (the email
package) costs more than the whole call budget. Every failure is a HookError, which the hook
turns into a deny.
"""

from __future__ import annotations

import _socket  # the C module: `socket` adds enum and selectors, imports the hook can skip
import json
import os
import time

from rampartd import proof

TYPE_CHECKING = False  # typing itself costs a few ms to import; mypy treats this name as True
if TYPE_CHECKING:  # typing, dataclasses, pathlib, urllib: each costs more than the call
    from collections.abc import Mapping
    from typing import Any

MAX_ANSWER_BYTES = 1 << 20
_TARGET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                          "_.:-/?=&")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9090
ADDRESS_FILE = "daemon.json"  # rampartd.instance.ADDRESS_FILE (a test keeps them equal)


class HookError(Exception):
    """Something prevented a decision; the message is safe to show (it never holds a token)."""


class Daemon:
    """Where the daemon listens, and the key id and key K the hook signs with."""

    __slots__ = ("host", "ident", "key", "port")

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.ident, self.key = proof.key_id(token), proof.proof_key(token)


def home_dir(env: Mapping[str, str], home: str | None = None) -> str:
    """--home, else $RAMPARTD_HOME, else ~/.rampartd."""
    return os.path.expanduser(home or env.get("RAMPARTD_HOME") or "~/.rampartd")


def _config_address(home: str) -> tuple[str | None, int | None]:
    """host/port from config.yaml; YAML is imported only when the file exists."""
    path = os.path.join(home, "config.yaml")
    if not os.path.exists(path):
        return None, None
    from rampartd.config import load_settings  # the slow path: a non-default config

    try:
        settings = load_settings({"home": home})
    except Exception as exc:  # ConfigError and anything else: no address, no decision
        raise HookError(f"cannot read {path}") from exc
    return settings.host, settings.port


def _published_url(home: str) -> str | None:
    """The URL in the home's address file (rampartd.instance's daemon.json) while its pid lives.

    Read here with os and json alone: rampartd.instance brings urllib and the home module,
    imports that would double the hook's start-up.
    """
    try:
        with open(os.path.join(home, ADDRESS_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
        pid, url = data["pid"], data["url"]
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 \
                or not isinstance(url, str):
            return None
        os.kill(pid, 0)
    except PermissionError:  # alive, owned by another user
        return url if isinstance(url, str) else None
    except (OSError, ValueError, KeyError, TypeError):  # no file, bad file, or its pid is gone
        return None
    return url


def _split_url(url: str) -> tuple[str, int]:
    rest = url.strip()[len("http://"):] if url.strip().startswith("http://") else ""
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port[1:] if port.startswith(":") else ""
    else:
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if not host or (port and not port.isdigit()):
        raise HookError("the daemon's URL must be http://HOST:PORT")
    return host, int(port) if port else DEFAULT_PORT


def daemon_address(home: str, env: Mapping[str, str]) -> tuple[str, int]:
    """The daemon's address, in the CLI's order: $RAMPARTD_URL, the address the home's running
    daemon published, $RAMPARTD_HOST/$RAMPARTD_PORT, config.yaml, 127.0.0.1:9090."""
    url = env.get("RAMPARTD_URL")
    if url:
        return _split_url(url)
    published = _published_url(home)
    if published is not None:
        return _split_url(published)
    host, port = env.get("RAMPARTD_HOST"), env.get("RAMPARTD_PORT")
    if host is None or port is None:
        file_host, file_port = _config_address(home)
        host = host or file_host
        port = port if port is not None else (None if file_port is None else str(file_port))
    try:
        number = int(port) if port is not None else DEFAULT_PORT
    except ValueError:
        raise HookError("RAMPARTD_PORT is not a number") from None
    if not 0 < number < 65536:
        raise HookError("the daemon's port is out of range")
    host = host or DEFAULT_HOST
    if host in ("0.0.0.0", "::", ""):  # a wildcard bind is reached on loopback
        host = DEFAULT_HOST
    return host, number


def read_credential(home: str, env: Mapping[str, str]) -> str:
    """$RAMPARTD_TOKEN (e.g. an agent's own token), else the admin token file."""
    token = env.get("RAMPARTD_TOKEN")
    if token is None:
        try:
            with open(os.path.join(home, "token"), encoding="utf-8") as fh:
                token = fh.read()
        except OSError:
            raise HookError(f"cannot read the token file in {home}") from None
    token = token.strip()
    # A token goes into a header line: anything but visible ASCII could split the request.
    if not token or not all(33 <= ord(c) < 127 for c in token):
        raise HookError("the token is empty or contains characters a token cannot have")
    return token


def locate(env: Mapping[str, str], home: str | None = None) -> Daemon:
    """The daemon and credential for this environment."""
    where = home_dir(env, home)
    host, port = daemon_address(where, env)
    return Daemon(host, port, read_credential(where, env))


def _host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect(host: str, port: int, timeout: float) -> _socket.socket:
    # An ASCII host as bytes skips the IDNA codec (an import of its own).
    name: str | bytes = host.encode() if host.isascii() else host
    error: OSError = ConnectionRefusedError()
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0,
                                                               _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def _read_all(sock: _socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HookError("the daemon did not answer in time")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise HookError("the answer is too large")


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while True:
        line, sep, body = body.partition(b"\r\n")
        if not sep:
            raise HookError("a cut-off chunked answer")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[:size]
        body = body[size + 2:]


def parse_response(raw: bytes) -> tuple[int, Any]:
    """Status and decoded JSON body of a complete HTTP/1.1 response."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise HookError("no valid HTTP answer")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") \
            or not status_line[1].isdigit():
        raise HookError("no valid HTTP answer")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = _dechunk(body)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if len(body) < length:
                raise HookError("a cut-off answer")
            body = body[:length]
        return int(status_line[1]), json.loads(body) if body else None
    except ValueError:
        raise HookError("the answer is not JSON") from None


def post(daemon: Daemon, path: str, body: Mapping[str, Any], *, timeout: float, nonce: str,
         query: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """POST JSON to the daemon, signed with this nonce; (status, decoded answer).

    Raises HookError on any failure.
    """
    data = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    # Tool names and query values are plain tokens; anything else could bend the request line.
    target = path
    if query:
        target += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    if not all(c in _TARGET_CHARS for c in target):
        raise HookError("the tool name has characters a tool name cannot have")
    signature = proof.authorization(daemon.ident, daemon.key, "POST", target,
                                    str(int(time.time() * 1000)), nonce, data)
    request = (f"POST {target} HTTP/1.1\r\nHost: {_host_header(daemon.host, daemon.port)}\r\n"
               f"Authorization: {signature}\r\nContent-Type: application/json\r\n"
               f"Accept: application/json\r\nContent-Length: {len(data)}\r\n"
               f"Connection: close\r\n\r\n").encode() + data
    deadline = time.monotonic() + timeout
    try:
        sock = _connect(daemon.host, daemon.port, timeout)
        try:
            sock.sendall(request)
            raw = _read_all(sock, deadline)
        finally:
            sock.close()
    except HookError:
        raise
    except OSError as exc:
        reason = "the daemon did not answer in time" if isinstance(exc, TimeoutError) \
            else f"rampartd is not reachable at {daemon.host}:{daemon.port}"
        raise HookError(reason) from None
    return parse_response(raw)


def new_nonce() -> str:
    """A fresh random nonce for one call."""
    return os.urandom(16).hex()


def checked(daemon: Daemon, nonce: str, answer: Any) -> Mapping[str, Any]:
    """The answer if it carries the daemon's proof for this nonce; otherwise HookError."""
    if not isinstance(answer, dict) or not proof.verify(daemon.key, nonce, answer):
        raise HookError("the answer carries no valid proof that it came from rampartd")
    return answer
