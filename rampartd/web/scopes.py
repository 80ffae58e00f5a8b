"""What a route requires: its scope, how agent tokens are looked up, what a signature proved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from rampartd.models import Principal

Scope = Literal["public", "eval", "admin"]


@dataclass(frozen=True, slots=True)
class RouteAuth:
    """How one route is protected."""

    scope: Scope
    stream: bool = False  # stream routes also accept ?token= (EventSource cannot set headers)


class AgentTokens(Protocol):
    """Looks up an agent's principal by the SHA-256 hex of a presented token."""

    def principal_for(self, token_sha256: str) -> Principal | None:
        """The agent principal for this token hash, or None."""
        ...

    def signing_key_for(self, token_sha256: str) -> bytes | None:
        """The key K this token signs requests with, or None (none stored for it)."""
        ...


@dataclass(frozen=True, slots=True)
class Signed:
    """A request that authenticated with Rampartd-HMAC: the key K it proved and its nonce."""

    key: bytes
    nonce: str
