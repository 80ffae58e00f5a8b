"""One exception tree; every error a client can see is one of these.

    RampartdError (500 internal)
    ├── BadRequest (400 bad_request)            malformed JSON, wrong types, unknown params
    │   ├── PolicyError (400 policy_error)      a policy file failed to load (file, line, hint)
    │   └── ConfigError (400 config_error)      a bad setting or config.yaml key
    ├── Unauthorized (401 unauthorized)         no credential or a wrong one
    ├── Forbidden (403 forbidden)               valid credential, wrong scope or host
    ├── NotFound (404 not_found)
    ├── MethodNotAllowed (405 method_not_allowed)
    ├── Conflict (409 conflict)
    ├── Gone (410 gone)                         approval already resolved or expired
    ├── PayloadTooLarge (413 payload_too_large)
    ├── TooManyRequests (429 rate_limited)      carries retry_after seconds
    └── Unavailable (503 unavailable)           cannot record durably: fail closed

The HTTP layer turns each into `{"error": message, "code": code}` with `status`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class RampartdError(Exception):
    """Base of every rampartd error; status and code drive the JSON error shape."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def details(self) -> dict[str, Any]:
        """Extra, secret-free fields added beside `error` and `code` (none by default)."""
        return {}


class BadRequest(RampartdError):
    """The request or input is malformed; the message names the field."""

    status = 400
    code = "bad_request"


class PolicyError(BadRequest):
    """A policy file could not be loaded; carries file and line for the reader."""

    code = "policy_error"

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 hint: str | None = None) -> None:
        where = file or "<policy>"
        if line is not None:
            where = f"{where}:{line}"
        text = f"{where}: {message}"
        if hint:
            text = f"{text} ({hint})"
        super().__init__(text)
        self.file = file
        self.line = line
        self.reason = message
        self.hint = hint

    def details(self) -> dict[str, Any]:
        """Where the policy broke and why, for the reload API."""
        return {"file": self.file, "line": self.line, "reason": self.reason, "hint": self.hint}


class ConfigError(BadRequest):
    """A setting has a bad value or config.yaml has an unknown key."""

    code = "config_error"


class Unauthorized(RampartdError):
    """No credential, or one that matches no token."""

    status = 401
    code = "unauthorized"


class Forbidden(RampartdError):
    """A valid credential without the scope the route needs, or a refused Host."""

    status = 403
    code = "forbidden"


class NotFound(RampartdError):
    """The route or the named object does not exist."""

    status = 404
    code = "not_found"


class MethodNotAllowed(RampartdError):
    """The route exists but not for this method; `allowed` lists the methods it has."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: Iterable[str] = (),
                 code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.allowed = tuple(sorted(set(allowed)))


class Conflict(RampartdError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class Gone(RampartdError):
    """The object existed but can no longer be acted on."""

    status = 410
    code = "gone"


class PayloadTooLarge(RampartdError):
    """The request body is over the limit."""

    status = 413
    code = "payload_too_large"


class TooManyRequests(RampartdError):
    """A rate or concurrency limit was hit; retry_after is in seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unavailable(RampartdError):
    """rampartd cannot do this safely right now (e.g. the audit log is not writable)."""

    status = 503
    code = "unavailable"
