"""Reading requests strictly: JSON bodies, query parameters, path segments, typed fields.

One vocabulary for bad requests: anything wrong with a query parameter or a path segment is a
400 `invalid_parameter`, anything wrong with a body field a 400 `invalid_field`, and the
message names it. A body that is not a JSON object is `invalid_json`. Handlers read their own
requests with these helpers, so every route refuses the same mistake the same way.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from rampartd.agents import NAME_MAX
from rampartd.errors import BadRequest, PayloadTooLarge

T = TypeVar("T")
MAX_BODY = 1024 * 1024  # 1 MiB
MAX_DEPTH = 64  # nesting levels of a body; deeper input is refused, not recursed into
# Length limits, by what a value is; FIELD_LIMITS says which names are which.
MAX_TOOL_LEN = 128
MAX_ID_LEN = 255  # run ids, tool-call ids, who resolved or requested
MAX_SESSION_LEN = 1024
MAX_TEXT_LEN = 4096  # messages, reasons, working directories, any other string
MAX_COMMAND_LEN = 65536
MAX_OFFSET = 2**31  # the largest `offset` of any paged listing
FIELD_LIMITS: dict[str, int] = {
    "agent": NAME_MAX, "name": NAME_MAX, "tool": MAX_TOOL_LEN, "session": MAX_SESSION_LEN,
    "session_id": MAX_SESSION_LEN, "tool_name": MAX_ID_LEN, "toolName": MAX_ID_LEN,
    "run_id": MAX_ID_LEN, "tool_call_id": MAX_ID_LEN, "resolved_by": MAX_ID_LEN,
    "requested_by": MAX_ID_LEN, "agent_id": MAX_ID_LEN, "command": MAX_COMMAND_LEN,
}
TOOL_NAME = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_TOOL_LEN}}}")
TOOL_NAME_RULE = f"must be 1-{MAX_TOOL_LEN} letters, digits or _ . : -"
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def bad_parameter(name: str, problem: str) -> BadRequest:
    """The 400 for a query parameter: `query parameter 'x' <problem>`."""
    return BadRequest(f"query parameter {name!r} {problem}", code="invalid_parameter")


def bad_path(name: str, problem: str) -> BadRequest:
    """The 400 for a path segment: `path parameter 'x' <problem>`."""
    return BadRequest(f"path parameter {name!r} {problem}", code="invalid_parameter")


def bad_field(name: str, problem: str) -> BadRequest:
    """The 400 for a body field: `field 'x' <problem>`."""
    return BadRequest(f"field {name!r} {problem}", code="invalid_field")


def limit_for(name: str) -> int:
    """The longest accepted value of a string field or parameter of this name."""
    return FIELD_LIMITS.get(name.rpartition(".")[2], MAX_TEXT_LEN)
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


def check_fields(body: Mapping[str, Any], allowed: Collection[str], where: str = "") -> None:
    """Refuse unknown keys so a misspelt field is an error, not silently ignored.

    `where` names the enclosing object field ("context") for keys of a nested object.
    """
    for key in body:
        if key not in allowed:
            name = f"{where}.{key}" if where not in ("", "body") else key
            raise bad_field(name, "is not a known field")


def query(request: web.Request, allowed: Collection[str]) -> dict[str, str]:
    """Query parameters, refusing unknown or repeated names (`token` is auth, not a parameter)."""
    params: dict[str, str] = {}
    for key, value in request.query.items():
        if key == "token":
            continue
        if key not in allowed:
            raise bad_parameter(key, "is not a known parameter")
        if key in params:
            raise bad_parameter(key, "is given more than once")
        params[key] = value
    return params


def opt_str(body: Mapping[str, Any], name: str, *, required: bool = False,
            max_len: int | None = None, label: str | None = None) -> str | None:
    """A string field (or None); 400 naming the field when it has the wrong type or size.

    The limit is the name's (FIELD_LIMITS) unless given; `label` names a nested field.
    """
    label = label or name
    limit = max_len if max_len is not None else limit_for(label)
    value = body.get(name)
    if value is None:
        if required:
            raise bad_field(label, "is required")
        return None
    if not isinstance(value, str):
        raise bad_field(label, "must be a string")
    if required and not value.strip():
        raise bad_field(label, "must not be empty")
    if len(value) > limit:
        raise bad_field(label, f"is longer than {limit} characters")
    return value


def req_str(body: Mapping[str, Any], name: str, *, max_len: int | None = None) -> str:
    """A required non-empty string field."""
    value = opt_str(body, name, required=True, max_len=max_len)
    assert value is not None
    return value


def req_object(body: Mapping[str, Any], name: str, *, required: bool = True) -> dict[str, Any]:
    """An object field ({} when absent and not required)."""
    value = body.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise bad_field(name, "is required and must be an object" if required
                        else "must be an object")
    return value


def req_bool(body: Mapping[str, Any], name: str) -> bool:
    """A required true/false field."""
    value = body.get(name)
    if not isinstance(value, bool):
        raise bad_field(name, "is required and must be true or false")
    return value


def number_field(body: Mapping[str, Any], name: str, lo: float, hi: float, *,
                 required: bool = False, open_low: bool = False) -> float | None:
    """A finite JSON number within [lo, hi] (or (lo, hi] with open_low); None when absent."""
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not lo <= value <= hi or (open_low and value == lo):
        low = "(" if open_low else "["
        raise bad_field(name, f"must be a number in {low}{_number(lo)}, {_number(hi)}]")
    return float(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def choice_field(body: Mapping[str, Any], name: str, choices: Sequence[str], *,
                 default: str | None = None) -> str:
    """One of `choices` (the default when absent, if there is one)."""
    value = body.get(name)
    if value is None and default is not None:
        return default
    if value not in choices:
        raise bad_field(name, "must be one of " + ", ".join(choices))
    assert isinstance(value, str)
    return value


def str_param(params: Mapping[str, str], name: str) -> str | None:
    """A string query parameter (or None); non-empty and within the name's length limit."""
    value = params.get(name)
    if value is None:
        return None
    limit = limit_for(name)
    if not value or len(value) > limit:
        raise bad_parameter(name, f"must be 1 to {limit} characters")
    return value


def choice_param(params: Mapping[str, str], name: str, choices: Sequence[str]) -> str | None:
    """One of `choices`, or None when absent."""
    value = params.get(name)
    if value is not None and value not in choices:
        raise bad_parameter(name, "must be one of " + ", ".join(choices))
    return value


def converted_param(params: Mapping[str, str], name: str, convert: Callable[[str], T]) -> T | None:
    """A parameter turned into a value by `convert`, whose ValueError says what is wrong."""
    value = params.get(name)
    if value is None:
        return None
    try:
        return convert(value)
    except ValueError as exc:
        raise bad_parameter(name, f"is invalid: {exc}") from None


def int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi]."""
    raw = params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit() and len(text) <= 19):
        raise bad_parameter(name, "must be an integer")
    value = int(text)
    if not lo <= value <= hi:
        raise bad_parameter(name, f"must be between {lo} and {hi}")
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
        raise bad_parameter(name, "must be a number") from None
    if not lo <= value <= hi:  # also refuses NaN
        raise bad_parameter(name, f"must be between {lo:g} and {hi:g}")
    return value


def path_tool(request: web.Request) -> str:
    """The {tool} path segment: 1-128 letters, digits or _ . : -."""
    tool = request.match_info["tool"]
    if not TOOL_NAME.fullmatch(tool):
        raise bad_path("tool", TOOL_NAME_RULE)
    return tool


def path_ulid(request: web.Request) -> str:
    """The {id} path segment as an upper-case ULID (audit records, decisions, approvals)."""
    value = request.match_info["id"].upper()
    if not ULID.fullmatch(value):
        raise bad_path("id", "must be a ULID (26 characters of Crockford base 32)")
    return value
