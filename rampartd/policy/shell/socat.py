"""socat's two addresses (`TCP:host:port`, `OPENSSL:host:443,verify=0`, `FILE:path`, `-`):
which connect to a host and which name a file. A table and a parser, pure, no I/O.

An address is `TYPE:PARAM:PARAM…,OPTION=VALUE,…` with a case-insensitive type; `A!!B` reads
from A and writes to B. Listening, local and program addresses (`TCP-LISTEN:8080`, `-`,
`STDIO`, `UNIX-CONNECT:s`, `EXEC:cmd`, `SYSTEM:cmd`) connect to no host.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import NamedTuple

# Types that connect to PARAM host:port, by the scheme their network effect is given.
_CONNECT = {
    **dict.fromkeys(("tcp", "tcp4", "tcp6", "tcp-connect", "tcp4-connect", "tcp6-connect",
                     "openssl", "openssl-connect", "ssl"), "tcp"),
    **dict.fromkeys(("udp", "udp4", "udp6", "udp-connect", "udp4-connect", "udp6-connect",
                     "udp-sendto", "udp4-sendto", "udp6-sendto", "udp-datagram",
                     "udp4-datagram", "udp6-datagram"), "udp"),
}
# Types that reach host:port through a proxy given first (`SOCKS4:proxy:host:port`).
_PROXIES = frozenset({"socks4", "socks4a", "socks5", "proxy", "proxy-connect"})
_FILES: dict[str, tuple[str, ...]] = {"file": ("read", "write"), "open": ("read", "write"),
                                      "gopen": ("read", "write"), "create": ("write",)}
# Types known to reach no host, so a run-time part after them hides none.
_LOCAL = frozenset({"-", "stdio", "stdin", "stdout", "stderr", "exec", "system", "pty",
                    "pipe", "fd", "unix-connect", "unix-listen", "unix-client", "abstract",
                    "readline", "tun", *_FILES})
# Options whose value is the next word (`-b 8192`, `-lf log`).
_VALUES = frozenset({"-b", "-t", "-T", "-L", "-W", "-lf", "-lp", "-S", "-r", "-R"})
_PARAM = re.compile(r"\[[^\]]*\]|[^:]*")  # a bracketed IPv6 address keeps its colons


class Address(NamedTuple):
    """What one address reaches: the argv position, its effect kinds, and a URL or path."""

    at: int
    kinds: tuple[str, ...]
    text: str


def socat_addresses(argv: Sequence[str], dynamic: Collection[int] = ()) -> list[Address]:
    """The hosts and files socat's addresses reach. An address built at run time whose type
    is not known to be local comes back as a network target with its raw text."""
    out: list[Address] = []
    k = 1
    while k < len(argv):
        word = argv[k]
        if word in _VALUES:
            k += 2
            continue
        if not (word.startswith("-") and len(word) > 1):
            for part in word.split("!!"):
                out += _address(k, part, k in dynamic)
        k += 1
    return out


def _params(text: str) -> list[str]:
    """The `:`-separated parameters of an address, before its options."""
    out: list[str] = []
    while True:
        m = _PARAM.match(text)
        end = m.end() if m else 0
        out.append(text[:end])
        if not text.startswith(":", end):
            return out
        text = text[end + 1:]


def _address(at: int, text: str, dynamic: bool) -> list[Address]:
    head, colon, rest = text.partition(":")
    kind = head.split(",", 1)[0].lower()
    params = _params(rest.split(",", 1)[0])
    if colon and kind in _CONNECT and len(params) >= 2:
        return [Address(at, ("network",), f"{_CONNECT[kind]}://{params[0]}:{params[1]}")]
    if colon and kind in _PROXIES and len(params) >= 2:
        target = f"tcp://{params[1]}:{params[2]}" if len(params) >= 3 else f"tcp://{params[1]}"
        return [Address(at, ("network",), f"tcp://{params[0]}"),
                Address(at, ("network",), target)]
    if colon and kind in _FILES and params[0]:
        return [Address(at, _FILES[kind], rest.split(",", 1)[0])]
    if dynamic and kind not in _LOCAL:
        return [Address(at, ("network",), text)]  # (where it connects is only known then)
    return []
