"""Proof that an evaluation answer came from the daemon that holds the caller's token.

A hook sends a fresh random nonce with each call; the daemon answers with
`proof = HMAC-SHA256(SHA256("rampartd-proof" + token), nonce + "\\n" + decision fields)`.
Something else listening on the port (a leftover process, an impostor) cannot produce it, so a
hook that checks the proof can be talked only into denials. Standard library only: the hook
imports this on every call.
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

NONCE_HEADER = "X-Rampartd-Nonce"
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
    """The proof key derived from a token (never the token itself)."""
    digest: bytes = sha256(b"rampartd-proof" + token.encode("utf-8", "surrogateescape")).digest()
    return digest


def signed_bytes(nonce: str, answer: Mapping[str, Any]) -> bytes:
    """The bytes a proof covers: the nonce and the answer's decision fields, canonically."""
    fields = {name: answer.get(name) for name in PROOF_FIELDS}
    return nonce.encode() + b"\n" + json.dumps(fields, sort_keys=True,
                                               separators=(",", ":")).encode()


def sign(token: str, nonce: str, answer: Mapping[str, Any]) -> str:
    """The proof for one answer to one nonce."""
    return hmac_sha256(proof_key(token), signed_bytes(nonce, answer)).hex()


def verify(token: str, nonce: str, answer: Mapping[str, Any]) -> bool:
    """True when the answer carries a valid proof for this token and nonce."""
    proof = answer.get("proof")
    return isinstance(proof, str) and proof.isascii() \
        and compare_digest(proof, sign(token, nonce, answer))
