"""Signed hook calls and the proof that an answer came from the daemon that holds the key.

The hook never sends its token. From the token it derives an id, `SHA256(token)` in hex (how
the daemon already looks tokens up), and a key, `K = SHA256("rampartd-proof" + token)`, and
signs each evaluation request:

    Authorization: Rampartd-HMAC id=<id>, ts=<unix ms>, nonce=<random>, mac=<hex>
    mac = HMAC-SHA256(K, "rampartd-hmac-v1\n" METHOD "\n" path?query "\n" ts "\n" nonce
                         "\n" SHA256(body) hex)

The daemon knows K (derived from the admin token, stored for agent tokens), checks the MAC,
the clock and that the nonce is new, and answers with
`proof = HMAC-SHA256(K, "rampartd-answer-v1\n" nonce "\n" decision fields)`. Something else
on the port learns neither the token nor K, so it can neither forge a proof nor use what it
saw against the daemon. Standard library only: the hook imports this on every call.
"""

from __future__ import annotations

import json
from _operator import _compare_digest as compare_digest

try:  # the bare SHA-256 module: hashlib and hmac load OpenSSL, a few ms the hook cannot spare
    from _sha2 import sha256  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # Python 3.11
    from _sha256 import sha256  # type: ignore[no-redef, import-not-found, unused-ignore]

TYPE_CHECKING = False  # typing itself costs a few ms to import; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

NONCE_HEADER = "X-Rampartd-Nonce"  # bearer callers' way to ask for a proof
SCHEME = "Rampartd-HMAC"
MAC_FIELDS = ("id", "ts", "nonce", "mac")
MAC_WINDOW = 60  # seconds a signed request's ts may be off the daemon's clock either way
# Each message K signs starts with what it is, so a request's MAC is never an answer's proof.
_MAC_CONTEXT = b"rampartd-hmac-v1"
_PROOF_CONTEXT = b"rampartd-answer-v1"
# The answer fields a hook acts on; the proof covers exactly these.
PROOF_FIELDS = ("allowed", "decision", "message", "explicit_allow", "audit_id", "approval_id",
                "ask")
_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_NONCE_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_")


def valid_nonce(nonce: str) -> bool:
    """True for 16-128 URL-safe characters (what a hook sends)."""
    return 16 <= len(nonce) <= 128 and all(c in _NONCE_CHARS for c in nonce)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104), the same bytes as hmac.new(key, message, "sha256")."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(key.translate(_IPAD) + message).digest()
    digest: bytes = sha256(key.translate(_OPAD) + inner).digest()
    return digest


def proof_key(token: str) -> bytes:
    """The key K derived from a token, which signs requests and proofs (never the token)."""
    digest: bytes = sha256(b"rampartd-proof" + token.encode("utf-8", "surrogateescape")).digest()
    return digest


def key_id(token: str) -> str:
    """The public name of a token's key: the SHA-256 hex under which the daemon finds it."""
    digest: str = sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
    return digest


def request_mac(key: bytes, method: str, target: str, ts: str, nonce: str, body: bytes) -> str:
    """The MAC of one request (target: the path and query exactly as sent)."""
    message = b"\n".join((_MAC_CONTEXT, method.encode(), target.encode("utf-8", "surrogateescape"),
                          ts.encode(), nonce.encode(), sha256(body).hexdigest().encode()))
    return hmac_sha256(key, message).hex()


def authorization(ident: str, key: bytes, method: str, target: str, ts: str, nonce: str,
                  body: bytes) -> str:
    """The Authorization header value of a signed request."""
    mac = request_mac(key, method, target, ts, nonce, body)
    return f"{SCHEME} id={ident}, ts={ts}, nonce={nonce}, mac={mac}"


def parse_authorization(params: str) -> dict[str, str] | None:
    """The fields after `Rampartd-HMAC `, or None unless exactly id, ts, nonce and mac are
    there, each once and well formed."""
    fields: dict[str, str] = {}
    for part in params.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq or name not in MAC_FIELDS or name in fields:
            return None
        fields[name] = value
    if len(fields) != len(MAC_FIELDS) or not _is_hex(fields["id"], 64) \
            or not _is_hex(fields["mac"], 64) or not valid_nonce(fields["nonce"]) \
            or not (fields["ts"].isascii() and fields["ts"].isdigit() and len(fields["ts"]) <= 15):
        return None
    return fields


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and all(c in "0123456789abcdef" for c in value)


def signed_bytes(nonce: str, answer: Mapping[str, Any]) -> bytes:
    """The bytes a proof covers: the nonce and the answer's decision fields, canonically."""
    fields = {name: answer.get(name) for name in PROOF_FIELDS}
    return _PROOF_CONTEXT + b"\n" + nonce.encode() + b"\n" \
        + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def sign(key: bytes, nonce: str, answer: Mapping[str, Any]) -> str:
    """The proof, under key K, for one answer to one nonce."""
    return hmac_sha256(key, signed_bytes(nonce, answer)).hex()


def verify(key: bytes, nonce: str, answer: Mapping[str, Any]) -> bool:
    """True when the answer carries a valid proof under key K for this nonce."""
    proof = answer.get("proof")
    return isinstance(proof, str) and proof.isascii() \
        and compare_digest(proof, sign(key, nonce, answer))


def mac_matches(expected: str, presented: str) -> bool:
    """Constant-time comparison of two hex MACs."""
    return compare_digest(expected, presented)
