"""What a route requires: its scope, and how agent tokens are looked up."""

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
