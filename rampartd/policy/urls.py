"""URLs and hosts the way clients connect: one canonical host, port and path per spelling.

Pure and I/O-free. The parse accepts what curl and WHATWG URL parsers accept (surrounding
whitespace, any number of slashes or backslashes after a special scheme, userinfo, percent-encoded
and fullwidth hosts, every IPv4 notation), so a policy about a host holds however the host is
spelled. Where curl and WHATWG disagree on which host a URL names (`http://a.com\\@b.com`), the
host after the last `@` is the one reported (curl connects there); connect_hosts gives both.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from encodings import idna
from urllib.parse import unquote, unquote_to_bytes

MAX_URL = 1 << 20
MAX_TEXT = 64 * 1024
MAX_URLS = 256
MAX_URL_IN_TEXT = 8192

# Schemes whose authority WHATWG parses leniently (any run of `/` and `\` after the colon).
SPECIAL = frozenset({"http", "https", "ws", "wss", "ftp"})
DEFAULT_PORTS: dict[str, int] = {
    "http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "ftps": 990, "sftp": 22,
    "ssh": 22, "scp": 22, "git": 9418, "telnet": 23, "gopher": 70, "dict": 2628,
    "ldap": 389, "ldaps": 636, "rtsp": 554, "smb": 445, "smtp": 25, "smtps": 465,
    "imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995, "mqtt": 1883, "redis": 6379,
    "rediss": 6379, "mysql": 3306, "postgres": 5432, "postgresql": 5432, "mongodb": 27017,
    "amqp": 5672, "amqps": 5671, "socks4": 1080, "socks4a": 1080, "socks5": 1080,
    "socks5h": 1080, "tftp": 69, "rsync": 873, "nntp": 119,
}
# Full stops that UTS 46 maps to '.' (U+FF0E and U+FF61 also fold under NFKC, U+3002 does not).
_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_EDGES = "".join(chr(c) for c in range(0x21))  # C0 controls and space, stripped at both ends
_INNER = str.maketrans("", "", "\t\n\r")  # removed anywhere, as WHATWG does
_FORBIDDEN = frozenset(" #%/:<>?@[\\]^|\x7f") | frozenset(chr(c) for c in range(0x20))
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_WIDE_SCHEME = re.compile(r"([^:：/／\\＼\s]{2,32})[:：]([/／\\＼]*)")
_PORTISH = re.compile(r"[0-9]*(?:[/\\?#].*)?\Z", re.DOTALL)
_DIGITS = re.compile(r"[0-9]+\Z")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*\Z")
_HOSTNAME = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]+)\Z")
# A URL already as _parse writes it (the most common kind): http(s), a lower-case host name,
# no userinfo, port, query or fragment, a path with no dot segment, `%`, `\` or blank. Its
# endpoint is read off the text; the general parse gives the same.
_CANONICAL = re.compile(r"(https?)://((?:[a-z0-9-]+\.)+[a-z]{2,63})"
                        r"((?:/[A-Za-z0-9_~+,=@:-][A-Za-z0-9._~+,=@:-]*)*/?)\Z")
_PATH_QUOTE = str.maketrans({"?": "%3F", "#": "%23", " ": "%20"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a URL connects: canonical scheme, host, port and path, and the normalised text."""

    scheme: str
    host: str
    port: int | None
    path: str
    url: str


# ---- hosts ------------------------------------------------------------------------------------

def _ipv4_part(part: str) -> int | None:
    """One dotted part the way inet_aton and WHATWG read it: 0x hex, leading-zero octal, decimal."""
    if not part or len(part) > 40:  # longer parts only spell values far past 2**32
        return None
    base = 10
    if _HEX.match(part):
        base, part = 16, part[2:]
    elif len(part) > 1 and part[0] == "0":
        base, part = 8, part[1:]
    if not part:
        return 0
    try:
        return int(part, base) if part.isascii() and part.isalnum() else None
    except ValueError:
        return None


def _ends_in_number(labels: list[str]) -> bool:
    last = labels[-1]
    if not last or last[0] not in "0123456789":
        return False  # (both patterns start with a digit)
    return bool(_DIGITS.match(last) or _HEX.match(last))


def _ipv4(labels: list[str]) -> str | None:
    """The dotted quad for a host that ends in a number, or None when it is no valid address."""
    if len(labels) > 4:
        return None
    numbers = [_ipv4_part(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    address = values[-1]
    for i, n in enumerate(values[:-1]):
        address += n << (8 * (3 - i))
    return str(ipaddress.IPv4Address(address))


def _ipv6(inner: str) -> str | None:
    """Compressed IPv6 text without brackets; a v4-mapped address keeps its dotted quad."""
    inner = inner.split("%", 1)[0]  # a zone id names an interface, not another host
    try:
        addr = ipaddress.IPv6Address(inner)
    except ValueError:
        return None
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{mapped}"
    return addr.compressed


def _idna_label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return idna.ToASCII(label).decode("ascii").lower()
    except UnicodeError:
        return label  # no client can resolve it either; kept as text, it matches no ASCII rule


def canonical_host(raw: str) -> str | None:
    """The host as clients resolve it (see Endpoint.host), or None when it is no valid host."""
    if raw.startswith("["):
        return _ipv6(raw[1:-1]) if raw.endswith("]") else None
    if "%" in raw:
        try:
            raw = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not raw.isascii():
        raw = unicodedata.normalize("NFKC", raw).translate(_FULL_STOPS)
    host = raw.lower()
    if not _FORBIDDEN.isdisjoint(host):
        return None
    host = host.rstrip(".")
    if not host:
        return ""
    labels = host.split(".")
    if not host.isascii():
        labels = [_idna_label(label) for label in labels]
    if _ends_in_number(labels):
        return _ipv4(labels)
    return ".".join(labels)


def _trimmed(text: str) -> str:
    """text without the edge characters and tabs and newlines anywhere (WHATWG's cleanup)."""
    text = text.strip(_EDGES)
    # (translate is slow, and most texts have nothing for it to remove)
    return text.translate(_INNER) if "\t" in text or "\n" in text or "\r" in text else text


def _bare_host(host: str) -> str | None:
    """A canonical host from text that may carry brackets, a port or a trailing dot."""
    text = _trimmed(host)
    if not text.startswith("[") and text.count(":") > 1:
        text = "[" + text + "]"  # a bare IPv6 literal
    elif text.startswith("["):
        text = text[: text.find("]") + 1] or text
    elif ":" in text:
        text = text.split(":", 1)[0]
    return canonical_host(text)


def domain_matches(host: str, domain: str) -> bool:
    """True if host is domain or a subdomain of it at a label boundary (`*.d`: below d only)."""
    below_only = domain.startswith("*.")
    h, d = _bare_host(host), _bare_host(domain[2:] if below_only else domain.lstrip("."))
    if not h or not d:
        return False
    if h == d:
        return not below_only
    return h.endswith("." + d) and not _is_ip(d)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.removeprefix("::ffff:") if host.count(".") == 3 else host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """True if host names this machine: 127.0.0.0/8, ::1, ::ffff:127.x, 0.0.0.0, ::, localhost."""
    h = _bare_host(host)
    if not h:
        return False
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        addr = ipaddress.ip_address(h.removeprefix("::ffff:") if h.startswith("::ffff:") and
                                    "." in h else h)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_unspecified


# ---- URLs -------------------------------------------------------------------------------------

def _resolve_dots(path: str) -> str:
    if "/." not in path:
        return path  # no `.` or `..` segment
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def _path(raw: str) -> str:
    path = unquote(raw.replace("\\", "/"), errors="replace").replace("\\", "/")
    if not path.startswith("/"):
        path = "/" + path
    return _resolve_dots(path)


def _serialise(scheme: str, host: str, port: int | None, path: str, query: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        shown += f":{port}"
    text = f"{scheme}://" if scheme else "//"
    text += shown + path.translate(_PATH_QUOTE)
    return text + ("?" + query if query is not None else "")


def _split_tail(tail: str) -> tuple[str, str | None]:
    """Path and query of what follows the authority; the fragment never leaves the client."""
    tail = tail.split("#", 1)[0]
    if "?" in tail:
        path, query = tail.split("?", 1)
        return path, query
    return tail, None


def _authority(scheme: str, rest: str, *, need_hostname: bool, whatwg: bool = False) \
        -> Endpoint | None:
    """Parse `[userinfo@]host[:port][path][?query][#fragment]` (slashes already skipped).

    whatwg: a backslash ends the authority, as WHATWG parsers read special schemes.
    """
    end = len(rest)
    for sep in "/?#\\" if whatwg and scheme in SPECIAL else "/?#":
        k = rest.find(sep)
        if k != -1 and k < end:
            end = k
    auth, tail = rest[:end], rest[end:]
    if "@" in auth:
        auth = auth[auth.rfind("@") + 1:]
    if "\\" in auth:
        k = auth.index("\\")
        auth, tail = auth[:k], auth[k:] + tail
    port_text: str | None = None
    if auth.startswith("["):
        close = auth.find("]")
        if close == -1:
            return None
        host_text, after = auth[: close + 1], auth[close + 1:]
        if after and not after.startswith(":"):
            return None
        port_text = after[1:] if after else None
    elif ":" in auth:
        host_text, port_text = auth.split(":", 1)
    else:
        host_text = auth
    port: int | None = DEFAULT_PORTS.get(scheme)
    if port_text:
        if not _DIGITS.match(port_text) or len(port_text) > 8 or int(port_text) > 65535:
            return None
        port = int(port_text)
    host = canonical_host(host_text)
    if not host:
        return None
    if need_hostname and not (_HOSTNAME.match(host) or _is_ip(host) or is_loopback(host)):
        return None
    raw_path, query = _split_tail(tail)
    path = _path(raw_path)
    return Endpoint(scheme, host, port, path, _serialise(scheme, host, port, path, query))


def _file(rest: str) -> Endpoint:
    host = ""
    if rest[:2].replace("\\", "/") == "//":
        rest = rest[2:]
        k = len(rest)
        for sep in "/\\?#":
            j = rest.find(sep)
            if j != -1 and j < k:
                k = j
        host = canonical_host(rest[:k]) or ""
        rest = rest[k:]
        if host == "localhost":
            host = ""
    raw_path, _ = _split_tail(rest)
    path = _path(raw_path)
    return Endpoint("file", host, None, path, f"file://{host}{path.translate(_PATH_QUOTE)}")


def _fold_scheme(s: str) -> str:
    """A scheme, colon and slashes written in fullwidth forms, in their ASCII form."""
    m = _WIDE_SCHEME.match(s)
    if m is None or m.group(0).isascii():
        return s
    scheme = unicodedata.normalize("NFKC", m.group(1))
    slashes = unicodedata.normalize("NFKC", m.group(2))
    return scheme + ":" + slashes + s[m.end():] if _SCHEME.fullmatch(scheme + ":") else s


def _parse(text: str, default_scheme: str, *, whatwg: bool = False) -> Endpoint | None:
    s = _trimmed(text)
    if not s or len(s) > MAX_URL:
        return None
    canonical = _CANONICAL.match(s)
    if canonical is not None:
        scheme, host, path = canonical.groups()
        path = path or "/"
        return Endpoint(scheme, host, DEFAULT_PORTS[scheme], path, f"{scheme}://{host}{path}")
    if not s.isascii():
        s = _fold_scheme(s)
    m = _SCHEME.match(s)
    if m and len(m.group(1)) > 1:  # one letter before ':' is a drive, not a scheme
        scheme, rest = m.group(1).lower(), s[m.end():]
        if scheme in SPECIAL:
            return _authority(scheme, rest.lstrip("/\\"), need_hostname=False, whatwg=whatwg)
        if scheme == "file":
            return _file(rest)
        if rest[:2] in ("//", "\\\\", "/\\", "\\/"):
            return _authority(scheme, rest[2:], need_hostname=False)
        if not _PORTISH.match(rest):
            return None  # an opaque URL (mailto:, data:, javascript:) contacts no host
    scheme = default_scheme.lower()
    if s[:2] in ("//", "\\\\", "/\\", "\\/"):
        return _authority(scheme, s.lstrip("/\\"), need_hostname=False, whatwg=whatwg)
    return _authority(scheme, s, need_hostname=not scheme, whatwg=whatwg)


def parse_url(text: str, default_scheme: str = "") -> Endpoint | None:
    """The endpoint a URL or host text names, or None when it names none. Never raises."""
    if not isinstance(text, str) or not isinstance(default_scheme, str):
        return None
    try:
        return _parse(text, default_scheme)
    except (ValueError, UnicodeError, OverflowError):
        return None


def connect_hosts(text: str, default_scheme: str = "") -> tuple[str, ...]:
    """Every host some client connects to for text: parse_url's host and, where WHATWG parsers
    read it differently (`https://a.example\\@b.example`: a.example), that host too."""
    hosts: list[str] = []
    for whatwg in (False, True):
        try:
            ep = _parse(text, default_scheme, whatwg=whatwg) if isinstance(text, str) and \
                isinstance(default_scheme, str) else None
        except (ValueError, UnicodeError, OverflowError):
            ep = None
        if ep is not None and ep.host and ep.host not in hosts:
            hosts.append(ep.host)
    return tuple(hosts)


# ---- URLs in free text ------------------------------------------------------------------------

_URL_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9+.-])"
    r"(?:(?:https?|wss?|ftps?):[/\\]*(?=[^\s/\\\"'`<>])"
    r"|file:[/\\]"
    r"|[A-Za-z][A-Za-z0-9+.-]{1,30}:(?:/|\\){2})"
    r"[^\s\"'`<>]+",
    re.IGNORECASE,
)
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _trim(url: str) -> str:
    """Drop the punctuation that ends a sentence or closes an unopened bracket."""
    balance = {c: url.count(c) - url.count(o) for c, o in _CLOSERS.items()}
    end = len(url)
    while end:
        last = url[end - 1]
        if last in ".,;:!?" or balance.get(last, 0) > 0:
            if last in balance:
                balance[last] -= 1
            end -= 1
        else:
            break
    return url[:end]


def urls_in_text(text: str) -> list[str]:
    """URL-like substrings of free text or code (scheme URLs, odd spellings included), bounded."""
    if not isinstance(text, str):
        return []
    text = text[:MAX_TEXT]
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_FULL_STOPS)
    found: list[str] = []
    for m in _URL_IN_TEXT.finditer(text):
        url = _trim(m.group(0)[:MAX_URL_IN_TEXT])
        if url and url not in found:
            found.append(url)
            if len(found) >= MAX_URLS:
                break
    return found
