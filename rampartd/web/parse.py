"""Reading requests strictly: JSON bodies, query parameters, typed fields."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from aiohttp import web

from rampartd.errors import BadRequest, PayloadTooLarge

MAX_BODY = 1024 * 1024  # 1 MiB
MAX_DEPTH = 64  # nesting levels of a body; deeper input is refused, not recursed into
# What can put a lone surrogate into a parsed body: a \uD800-\uDFFF escape, or the UTF-8 form
# of one (json.loads decodes bytes with "surrogatepass"), or a UTF-16/32 body.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE_UTF8 = re.compile(rb"\xed[\xa0-\xbf]")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; 413 over 1 MiB, 400 for anything but an object."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge("request body is larger than 1 MiB")
    try:
        raw = await request.read()
    except web.RequestPayloadError:  # a body its Content-Encoding does not decode
        raise BadRequest("request body could not be decoded (check Content-Encoding)",
                         code="invalid_encoding") from None
    except ConnectionResetError:  # closed mid-body: by the client, a read deadline or shutdown
        raise BadRequest("the connection closed before the request body arrived",
                         code="incomplete_body") from None
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object", code="invalid_json")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON ({exc.__class__.__name__})",
                         code="invalid_json") from None
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON ({exc})", code="invalid_json") \
            from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    # Most bodies skip the walk: each test below is a fast scan of the raw bytes.
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw[:4] \
            or (b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None) \
            or (b"\xed" in raw and _SURROGATE_UTF8.search(raw) is not None):
        check_unicode(body)
    # Only a body with many brackets can be too deep; most skip the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(body):
        raise BadRequest(f"request body nests deeper than {MAX_DEPTH} levels",
                         code="invalid_json")
    return body


def check_unicode(body: Mapping[str, Any]) -> None:
    """400 naming a field (a key or a value, at any depth) that holds a lone surrogate:
    text that is not Unicode cannot be stored, hashed or compared."""
    stack: list[tuple[Any, str]] = [(body, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            stack.extend((item, f"{path}.{key}" if path else str(key))
                         for key, item in value.items())
            texts = [(key, path or "the body") for key in value]
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
            continue
        else:
            texts = [(value, path)] if isinstance(value, str) else []
        for text, where in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                name = where.encode("utf-8", "backslashreplace").decode()
                raise BadRequest(f"field {name!r} is not valid Unicode (lone surrogate)",
                                 code="invalid_field") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def check_fields(body: Mapping[str, Any], allowed: Collection[str], where: str = "body") -> None:
    """Refuse unknown keys so a misspelt field is an error, not silently ignored."""
    for key in body:
        if key not in allowed:
            raise BadRequest(f"unknown field {key!r} in {where}", code="unknown_field")


def query(request: web.Request, allowed: Collection[str]) -> dict[str, str]:
    """Query parameters, refusing unknown or repeated names (`token` is auth, not a parameter)."""
    params: dict[str, str] = {}
    for key, value in request.query.items():
        if key == "token":
            continue
        if key not in allowed:
            raise BadRequest(f"unknown query parameter {key!r}", code="unknown_parameter")
        if key in params:
            raise BadRequest(f"query parameter {key!r} given more than once",
                             code="unknown_parameter")
        params[key] = value
    return params


def opt_str(body: Mapping[str, Any], name: str, *, required: bool = False,
            max_len: int = 4096) -> str | None:
    """A string field (or None); 400 naming the field when it has the wrong type or size."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"field {name!r} is required", code="missing_field")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"field {name!r} must be a string", code="invalid_field")
    if required and not value:
        raise BadRequest(f"field {name!r} must not be empty", code="invalid_field")
    if len(value) > max_len:
        raise BadRequest(f"field {name!r} is longer than {max_len} characters",
                         code="invalid_field")
    return value


def req_str(body: Mapping[str, Any], name: str, *, max_len: int = 4096) -> str:
    """A required non-empty string field."""
    value = opt_str(body, name, required=True, max_len=max_len)
    assert value is not None
    return value


def int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi]."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer",
                         code="invalid_parameter") from None
    if not lo <= value <= hi:
        raise BadRequest(f"query parameter {name!r} must be between {lo} and {hi}",
                         code="invalid_parameter")
    return value


def float_param(params: Mapping[str, str], name: str, default: float, lo: float,
                hi: float) -> float:
    """A number query parameter within [lo, hi]."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be a number",
                         code="invalid_parameter") from None
    if not lo <= value <= hi:  # also refuses NaN
        raise BadRequest(f"query parameter {name!r} must be between {lo:g} and {hi:g}",
                         code="invalid_parameter")
    return value
