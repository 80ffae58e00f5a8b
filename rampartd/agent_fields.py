"""What an agent's fields may hold: ids, names, descriptions, statuses and their transitions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from rampartd.errors import BadRequest, Conflict

STATUSES: tuple[str, ...] = ("active", "suspended", "revoked")
NAME_MAX = 255
DESCRIPTION_MAX = 2000
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters


class _Unset:
    """Marks a PATCH field that was not given (None means "clear")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def check_id(agent_id: str) -> str:
    """A canonical lower-case UUID, or BadRequest naming `id`."""
    norm = agent_id.strip().lower()
    if not _UUID.fullmatch(norm):
        raise BadRequest("id: not a UUID (expected 8-4-4-4-12 hex digits)", code="invalid_id")
    return norm


def check_name(value: Any) -> str:
    """A valid agent name (1-255 characters, no control characters)."""
    if not isinstance(value, str):
        raise BadRequest("field 'name' must be a string", code="invalid_field")
    if not value.strip() or len(value) > NAME_MAX:
        raise BadRequest(f"field 'name' must be 1 to {NAME_MAX} characters, not blank",
                         code="invalid_field")
    if _CONTROL.search(value) or value != value.strip():
        # The name is what policies match and records carry: no invisible differences.
        raise BadRequest("field 'name' must not contain control characters or start or end "
                         "with whitespace", code="invalid_field")
    return value


def check_description(value: Any) -> str | None:
    """A valid description (None, or a string of at most 2,000 characters)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("field 'description' must be a string or null", code="invalid_field")
    if len(value) > DESCRIPTION_MAX:
        raise BadRequest(f"field 'description' is longer than {DESCRIPTION_MAX} characters",
                         code="invalid_field")
    return value


def check_status(value: Any) -> str:
    """One of active, suspended, revoked."""
    if value not in STATUSES:
        raise BadRequest("field 'status' must be one of active, suspended, revoked",
                         code="invalid_field")
    assert isinstance(value, str)
    return value


def check_transition(old: str, new: str) -> None:
    """active and suspended switch freely; anything may become revoked; revoked is final."""
    if old == "revoked" and new != "revoked":
        raise Conflict("agent is revoked; a revoked agent cannot change status again")


def patch_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `update` for the fields present in a PATCH body."""
    return {key: body[key] for key in ("name", "description", "status") if key in body}
