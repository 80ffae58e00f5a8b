"""Signed approval links: an HMAC over (approval id, action, expiry) with a key in the home.

A link decides one approval one way before a deadline; the signature is the only credential,
so it is compared in constant time and checked before anything else is revealed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from rampartd.errors import BadRequest, Forbidden, Gone, Unavailable
from rampartd.home import write_private

KEY_FILE = "approval-links.key"
KEY_BYTES = 32
ACTIONS = ("approve", "deny")
LINK_PATH = "/v1/approvals/{id}/link"


def ensure_link_key(home: Path) -> None:
    """Create the link signing key (0600, random) unless it exists; called at start only."""
    path = home / KEY_FILE
    if not path.exists():
        # replace=False: two processes creating it at once end up agreeing on one key.
        write_private(path, secrets.token_bytes(KEY_BYTES), replace=False)


def load_link_key(home: Path) -> bytes:
    """The link signing key; a missing or damaged key refuses every link (never recreated)."""
    path = home / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise Unavailable(f"approval link key {path} is missing; restart rampartd to create "
                          "one", code="no_link_key") from None
    if len(key) < KEY_BYTES:
        raise Forbidden(f"approval link key {path} is damaged; delete it and restart rampartd",
                        code="bad_link_key")
    return key


def sign(key: bytes, approval_id: str, action: str, exp: int) -> str:
    """Hex HMAC-SHA256 of one approval, one action and one expiry."""
    message = f"rampartd-approval-link\n{approval_id}\n{action}\n{exp}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def link_url(base_url: str, key: bytes, approval_id: str, action: str, exp: int) -> str:
    """The full signed URL for one approval and action, valid until exp (epoch seconds)."""
    if action not in ACTIONS:
        raise BadRequest("action must be approve or deny", code="invalid_field")
    query = urllib.parse.urlencode({"action": action, "exp": exp,
                                    "sig": sign(key, approval_id, action, exp)})
    return f"{base_url}{LINK_PATH.format(id=approval_id)}?{query}"


@dataclass(frozen=True)
class SignedLink:
    """A link's parts as presented (web/ parses them from the URL)."""

    approval_id: str
    action: str
    exp: int
    signature: str


def check_link(key: bytes, link: SignedLink, now: float) -> None:
    """Refuse a tampered link (Forbidden) or an expired one (Gone)."""
    expected = sign(key, link.approval_id, link.action, link.exp)
    if not hmac.compare_digest(expected.encode(), link.signature.encode()):
        raise Forbidden("invalid approval link", code="bad_signature")
    if now >= link.exp:
        raise Gone("this approval link has expired", code="link_expired")
