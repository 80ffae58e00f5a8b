"""Secret redaction and size compaction of record payloads (pure).

Runs before a record is canonicalised and hashed, so no secret is ever written, hashed,
exported or streamed, and no record is ever too big to store.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import re2
import rfc8785

REDACTED = "[REDACTED]"
_MAX_SAFE_INT = 2**53 - 1
MAX_RECORD_BYTES = 64 * 1024
# Room left for the fields the writer adds (seq, id, ts, prev_hash) and JSON punctuation.
_WRITER_FIELDS_ROOM = 512
_LONG_STRING = 1024
_MAPPING_FIELDS = ("request", "detail", "approval", "decision")
# decision.action drives the indexed action column, so compaction never touches it.
_KEEP_KEYS = {"decision": frozenset({"action"})}

# Key names whose values are secrets whatever they look like (compared without "_" / "-").
_SECRET_KEY_PARTS = ("password", "passwd", "passphrase", "secret", "apikey", "privatekey",
                     "authorization", "credential", "cookie")
_SECRET_KEY_ENDINGS = ("token", "accesskey", "accesskeyid", "sessionkey", "signature")

_SECRET_WORDS = (r"(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key"  # noqa: S105
                 r"|private[_-]?key)")
_WORD_TRIGGERS = ("passw", "passp", "secret", "token", "apikey", "api_key", "api-key",
                  "accesskey", "access_key", "access-key", "privatekey", "private_key",
                  "private-key")
Rule = tuple[tuple[str, ...], re.Pattern[str], str]


def _rule(triggers: tuple[str, ...], pattern: str, replacement: str, flags: int = 0) -> Rule:
    """A pattern, run only on text whose lower case contains one of the triggers."""
    return triggers, re.compile(pattern, flags), replacement


# Quantifiers are bounded so a hostile 1 MiB string cannot make redaction quadratic.
_SECRET_PATTERNS: tuple[Rule, ...] = (
    # PEM private keys, also a block whose END line was cut off.
    _rule(("private key",), r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----.*?"
          r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)", "[REDACTED PRIVATE KEY]",
          re.DOTALL),
    _rule(("authorization",), r"(?i)\b(authorization[\"']?\s{0,8}[:=]\s{0,8}[\"']?"
          r"(?:(?:basic|bearer|token|digest)\s{1,8})?)(?!\[REDACTED)[^\s\"']+", r"\1" + REDACTED),
    _rule(("bearer",), r"(?i)\b(bearer\s{1,8})(?!\[REDACTED)[A-Za-z0-9._~+/=-]{8,}",
          r"\1" + REDACTED),
    _rule(("sk-",), r"\bsk-[A-Za-z0-9_-]{16,}", REDACTED),
    _rule(("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
          r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})", REDACTED),
    _rule(("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", REDACTED),
    _rule(("xox",), r"\bxox[abprs]-[A-Za-z0-9-]{10,}", REDACTED),
    _rule(("aiza",), r"\bAIza[0-9A-Za-z_-]{35}\b", REDACTED),
    _rule(("eyj",), r"\beyJ[A-Za-z0-9_-]{8,2048}\.eyJ[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]+",
          REDACTED),
    # scheme://user:password@host
    _rule(("://",), r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^/\s:@]{1,256}):[^/\s@]{1,256}@",
          r"\1:" + REDACTED + "@"),
    # password=..., api_key: ..., AWS_SECRET_ACCESS_KEY=..., "token": "..." (the name's
    # prefix needs no match: it is kept either way)
    _rule(_WORD_TRIGGERS, r"(?i)(" + _SECRET_WORDS + r"(?:[_-][A-Za-z0-9]{1,20}){0,4})"
          r"([\"']?\s{0,8}[=:]\s{0,8}[\"']?)(?!\[REDACTED)"
          r"((?<=')[^'\n]+|(?<=\")[^\"\n]+|[^\s\"'&;,]+)", r"\1\2" + REDACTED),
    # --password VALUE, --api-key VALUE
    _rule(_WORD_TRIGGERS, r"(?i)(?<![A-Za-z0-9-])(--?[A-Za-z0-9-]{0,40}" + _SECRET_WORDS
          + r"(?:-[A-Za-z0-9]{1,20}){0,4})(\s{1,8})(?![-\[])(\S+)", r"\1\2" + REDACTED),
)
# Literal alternations are scanned with RE2 (one DFA pass); the stdlib tries each alternative.
_ANY_TRIGGER = re2.compile("|".join(re.escape(t) for rule in _SECRET_PATTERNS for t in rule[0]))
# What in a payload's JSON text could need a change. Two scans, because they look at different
# texts: pattern triggers (`sk-`, `ghp_`, …), big integers and non-finite floats in the lower-
# cased text; secret-looking words with their separators squeezed out, so that `pass_word`,
# `api-key` and `PRIVATE_KEY` are all caught like is_secret_key() catches them.
_TRIGGER_SCAN = re2.compile("|".join(
    [re.escape(t) for rule in _SECRET_PATTERNS for t in rule[0]]
    + [r"\d{16}", "nan", "infinity"]))
_WORD_SCAN = re2.compile("|".join(re.escape(w.replace("_", "").replace("-", "")) for w in (
    *_SECRET_KEY_PARTS, *_SECRET_KEY_ENDINGS, *_WORD_TRIGGERS)))


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when a mapping key names a secret (password, token, api_key, authorization …)."""
    norm = key.lower().replace("_", "").replace("-", "")
    return any(part in norm for part in _SECRET_KEY_PARTS) or norm.endswith(_SECRET_KEY_ENDINGS)


def redact_text(text: str) -> str:
    """Replace credential-shaped substrings of text (and lone surrogates, which JSON can't hold)."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    # One scan for any trigger word skips every pattern for the (usual) text that has none.
    lowered = text.lower()
    if _ANY_TRIGGER.search(lowered) is None:
        return text
    for triggers, pattern, replacement in _SECRET_PATTERNS:
        if any(t in lowered for t in triggers):
            text = pattern.sub(replacement, text)
    return text


def _clean_text(value: Any) -> str | None:
    """The compact JSON of value when one scan shows nothing in it needs redacting, else None."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    if not text.isascii():
        return None
    lowered = text.lower()
    if _TRIGGER_SCAN.search(lowered) is not None:
        return None
    if _WORD_SCAN.search(lowered.replace("_", "").replace("-", "")) is not None:
        return None
    return text


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with secrets replaced by "[REDACTED]"."""
    if isinstance(value, Mapping):
        text = _clean_text(value)  # fast path: one C-level dump and one scan
        if text is not None:
            return json.loads(text)
    return _redact(value)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            secret = is_secret_key(name) and item not in (None, "") \
                and not isinstance(item, bool)
            out[redact_text(name)] = REDACTED if secret else _redact(item)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        # JCS numbers are IEEE doubles: bigger integers are kept exactly as strings.
        return value if abs(value) <= _MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return redact_text(str(value))


def _size(value: Any) -> int:
    # json.dumps (C) gives the canonical length up to number formatting: close enough for a
    # size bound and far faster than canonicalising.
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def digest_stub(value: Any) -> dict[str, Any]:
    """What replaces a value too large to keep: its digest and size."""
    data = rfc8785.dumps(value)
    return {"compacted": True, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _short_string(text: str) -> str:
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    return f"{text[:64]}…[compacted sha256:{digest} size:{len(data)}]"


def compact(payload: Mapping[str, Any], limit: int = MAX_RECORD_BYTES) -> dict[str, Any]:
    """Shrink a payload whose canonical form is over limit; small payloads come back unchanged.

    The biggest values inside request/detail/approval/decision are replaced by digest stubs
    first, then whole fields, then over-long strings; a record is never rejected for size.
    """
    out = dict(payload)
    budget = limit - _WRITER_FIELDS_ROOM
    total = _size(out)
    if total <= budget:
        return out
    # Replacing one value changes the canonical size by exactly the difference of the two
    # values' sizes, so each value is measured once.
    sized: list[tuple[int, str, str]] = []
    for field in _MAPPING_FIELDS:
        value = out.get(field)
        if isinstance(value, Mapping):
            out[field] = dict(value)
            keep = _KEEP_KEYS.get(field, frozenset())
            sized.extend((_size(v), field, k) for k, v in value.items() if k not in keep)
    for size, field, key in sorted(sized, key=lambda item: item[0], reverse=True):
        if total <= budget or size <= _LONG_STRING // 4:
            break
        stub = digest_stub(out[field][key])
        out[field][key] = stub
        total += _size(stub) - size
    for field, value in list(out.items()):
        if total <= budget:
            break
        size = _size(value)
        if isinstance(value, str) and len(value) > _LONG_STRING:
            out[field] = _short_string(value)
        elif isinstance(value, Mapping | list) and size > _LONG_STRING:
            kept = {k: value[k] for k in _KEEP_KEYS.get(field, ()) if isinstance(value, Mapping)
                    and isinstance(value.get(k), str) and len(value[k]) <= _LONG_STRING}
            out[field] = {**kept, **digest_stub(value)}
        total += _size(out[field]) - size
    return out


def prepare_payload(payload: Mapping[str, Any], limit: int = MAX_RECORD_BYTES) -> dict[str, Any]:
    """Redact then compact a draft payload: what a record is built from."""
    text = _clean_text(payload)
    if text is not None and len(text) <= limit - _WRITER_FIELDS_ROOM:
        clean: dict[str, Any] = json.loads(text)  # clean and small: the usual case, one dump
        return clean
    redacted = json.loads(text) if text is not None else _redact(payload)
    assert isinstance(redacted, dict)
    return compact(redacted, limit)
