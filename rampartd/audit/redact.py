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
from collections.abc import Collection, Mapping
from typing import Any

import re2
import rfc8785

REDACTED = "[REDACTED]"
_MAX_SAFE_INT = 2**53 - 1
MAX_RECORD_BYTES = 64 * 1024
# Room left for the fields the writer adds (seq, id, ts, prev_hash) and JSON punctuation.
_WRITER_FIELDS_ROOM = 512
_LONG_STRING = 1024
_SHORT = 200  # texts up to this long skip the combined trigger scan
# A known secret shorter than this is not looked for: it would mangle ordinary text.
MIN_KNOWN_SECRET = 8
# Payloads with more items than this are redacted off the event loop and ahead of the writer.
BULKY_BUDGET = 2000
_MAPPING_FIELDS = ("request", "detail", "approval", "decision")
# decision.action drives the indexed action column, so compaction never touches it.
_KEEP_KEYS = {"decision": frozenset({"action"})}

# Key names whose values are secrets whatever they look like (compared without "_" / "-").
_SECRET_KEY_PARTS = ("password", "passwd", "passphrase", "secret", "apikey", "privatekey",
                     "authorization", "credential", "cookie")
_SECRET_KEY_ENDINGS = ("token", "accesskey", "accesskeyid", "sessionkey", "signature")

_SECRET_WORDS = (r"(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key"  # noqa: S105
                 r"|private[_-]?key)")
# Keys that carry an entry's name in {"name": …, "value": …} lists (headers, env, settings).
_ENTRY_NAME_KEYS = ("name", "key", "header")
_WORD_TRIGGERS = ("passw", "passp", "secret", "token", "apikey", "api_key", "api-key",
                  "accesskey", "access_key", "access-key", "privatekey", "private_key",
                  "private-key")
# Programs that take a password glued to `-p` (`mysql -pV`) or right after it (`sshpass -p V`).
_MYSQL_LIKE = r"(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb)"
# How far after a program name its option is looked for (within one command, not past | ; &).
_ARGS = r"[^\n|;&]{0,400}?"
# One word of a command: quoted, or up to the next blank.
_WORD = r"(?:'[^'\n]{0,512}'|\"[^\"\n]{0,512}\"|[^\s'\"]{1,512})"
Rule = tuple[tuple[str, ...], str, re.Pattern[str], str]


def _rule(triggers: tuple[str, ...], pattern: str, replacement: str, flags: int = 0, *,
          needs: str = "") -> Rule:
    """A pattern, run only on text whose lower case contains one of the triggers (and, when
    `needs` is given, one of its characters: a cheap test that skips most short texts)."""
    return triggers, needs, re.compile(pattern, flags), replacement


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
    # Stripe-style live/test keys: sk_live_…, rk_test_…
    _rule(("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
          r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{10,}", REDACTED),
    # rampartd's own agent tokens
    _rule(("rpd_agent_",), r"\brpd_agent_[A-Za-z0-9_-]{16,}", REDACTED),
    # `aws configure set aws_secret_access_key V`, `npm config set //host/:_authToken V`,
    # `git config --global some.password V`: a secret-named setting and its value.
    _rule(("config",), r"(?i)(\bconfig(?:ure)?\s{1,8}(?:set\s{1,8})?(?:--?[A-Za-z-]{1,30}"
          r"\s{1,8}){0,3}[^\s=]{0,200}?(?:" + _SECRET_WORDS[3:-1] + r"|auth)"
          r"[^\s=]{0,60}\s{1,8})(?![-\[])" + _WORD, r"\1" + REDACTED),
    # mysql -pV (mysql reads a password glued to -p; `-p V` names a database instead)
    _rule(("mysql", "mariadb"), r"(?i)(\b" + _MYSQL_LIKE + r"\b" + _ARGS + r"\s-p)"
          r"(?!\[REDACTED)" + _WORD, r"\1" + REDACTED),
    # sshpass -p V / sshpass -pV
    _rule(("sshpass",), r"(\bsshpass\b" + _ARGS + r"\s-p\s{0,8})(?!\[REDACTED)" + _WORD,
          r"\1" + REDACTED),
    # curl -u user:V, curl -uuser:V, --user user:V (any program)
    _rule(("curl", "--user"), r"((?:\bcurl\b" + _ARGS + r"\s-u\s{0,8}|(?<![A-Za-z0-9-])"
          r"--user(?:\s{1,8}|=))['\"]?[^:\s'\"]{1,256}:)(?!\[REDACTED)[^\s'\"]+",
          r"\1" + REDACTED, needs=":"),
    _rule(("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
          r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})", REDACTED),
    _rule(("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", REDACTED),
    _rule(("xox",), r"\bxox[abprs]-[A-Za-z0-9-]{10,}", REDACTED),
    _rule(("aiza",), r"\bAIza[0-9A-Za-z_-]{35}\b", REDACTED),
    _rule(("eyj",), r"\beyJ[A-Za-z0-9_-]{8,2048}\.eyJ[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]+",
          REDACTED),
    # scheme://user:password@host
    _rule(("://",), r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^/\s:@]{1,256}):[^/\s@]{1,256}@",
          r"\1:" + REDACTED + "@", needs="@"),
    # https://TOKEN@host: a long user name alone in a web URL is a token (`git@` is kept)
    _rule(("http://", "https://"), r"(?i)\b(https?://)(?!\[REDACTED)[^/\s:@]{16,256}@",
          r"\1" + REDACTED + "@", needs="@"),
    # password=..., api_key: ..., AWS_SECRET_ACCESS_KEY=..., "token": "..." (the name's
    # prefix needs no match: it is kept either way)
    _rule(_WORD_TRIGGERS, r"(?i)(" + _SECRET_WORDS + r"(?:[_-][A-Za-z0-9]{1,20}){0,4})"
          r"([\"']?\s{0,8}[=:]\s{0,8}[\"']?)(?!\[REDACTED)"
          r"((?<=')[^'\n]+|(?<=\")[^\"\n]+|[^\s\"'&;,]+)", r"\1\2" + REDACTED, needs="=:"),
    # --password VALUE, --api-key VALUE
    _rule(_WORD_TRIGGERS, r"(?i)(?<![A-Za-z0-9-])(--?[A-Za-z0-9-]{0,40}" + _SECRET_WORDS
          + r"(?:-[A-Za-z0-9]{1,20}){0,4})(\s{1,8})(?![-\[])(\S+)", r"\1\2" + REDACTED,
          needs="-"),
)
_RULES_BY_TRIGGER: tuple[tuple[str, tuple[int, ...]], ...] = tuple(
    (t, tuple(i for i, rule in enumerate(_SECRET_PATTERNS) if t in rule[0]))
    for t in dict.fromkeys(t for rule in _SECRET_PATTERNS for t in rule[0]))
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


def redact_text(text: str, known: Collection[str] = ()) -> str:
    """Replace credential-shaped substrings of text, and every `known` secret it contains
    (and lone surrogates, which JSON can't hold)."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    for secret in known:
        if len(secret) >= MIN_KNOWN_SECRET and secret in text:
            text = text.replace(secret, REDACTED)
    # One scan for any trigger word skips every pattern for the (usual) text that has none;
    # a short text is cheaper to test for each trigger directly.
    lowered = text.lower()
    if len(text) > _SHORT and _ANY_TRIGGER.search(lowered) is None:
        return text
    wanted = {i for trigger, rules in _RULES_BY_TRIGGER if trigger in lowered for i in rules}
    if not wanted:
        return text
    for i in sorted(wanted):  # in table order: later patterns see earlier replacements
        _, needs, pattern, replacement = _SECRET_PATTERNS[i]
        if not needs or any(c in text for c in needs):
            text = pattern.sub(replacement, text)
    return text


def _clean_text(value: Any, known: Collection[str] = ()) -> str | None:
    """The compact JSON of value when one scan shows nothing in it needs redacting, else None."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    if not text.isascii():
        return None
    if any(len(secret) >= MIN_KNOWN_SECRET and secret in text for secret in known):
        return None
    lowered = text.lower()
    if _TRIGGER_SCAN.search(lowered) is not None:
        return None
    if _WORD_SCAN.search(lowered.replace("_", "").replace("-", "")) is not None:
        return None
    return text


def redact(value: Any, known: Collection[str] = ()) -> Any:
    """A copy of a JSON-like value with secrets (and any `known` secret) replaced by
    "[REDACTED]"."""
    if isinstance(value, Mapping):
        text = _clean_text(value, known)  # fast path: one C-level dump and one scan
        if text is not None:
            return json.loads(text)
    return _redact(value, tuple(s for s in known if len(s) >= MIN_KNOWN_SECRET))


def _is_secret_item(key: str, item: Any) -> bool:
    return is_secret_key(key) and item not in (None, "") and not isinstance(item, bool)


def _named_secret(value: Mapping[Any, Any]) -> bool:
    """A {"name": "X-Api-Key", "value": V} entry (header and env lists) naming a secret."""
    name = next((value[k] for k in _ENTRY_NAME_KEYS if k in value), None)
    return isinstance(name, str) and _is_secret_item(name, value.get("value"))


def _redact(value: Any, known: tuple[str, ...] = ()) -> Any:
    if isinstance(value, str):
        return redact_text(value, known)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        named = "value" in value and _named_secret(value)
        for key, item in value.items():
            name = str(key)
            secret = _is_secret_item(name, item) or (named and name == "value")
            # A key that names no secret and is short holds no credential-shaped text.
            clean = name if len(name) < 8 and not known else redact_text(name, known)
            out[clean] = REDACTED if secret else _redact(item, known)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item, known) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        # JCS numbers are IEEE doubles: bigger integers are kept exactly as strings.
        return value if abs(value) <= _MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return redact_text(str(value), known)


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


def is_bulky(value: Any, budget: int = BULKY_BUDGET) -> bool:
    """True when redacting value would take long: over `budget` items (a string counts one
    per 64 characters). Stops looking as soon as it knows, so the check itself is cheap."""
    stack = [value]
    while stack:
        item = stack.pop()
        budget -= 1
        if isinstance(item, str):
            budget -= len(item) // 64
        elif isinstance(item, Mapping):
            stack.extend(item.values())
            budget -= len(item)  # each key is a text to scan too
        elif isinstance(item, list | tuple):
            stack.extend(item)
        if budget < 0:
            return True
    return False


def prepare_payload(payload: Mapping[str, Any], limit: int = MAX_RECORD_BYTES,
                    known: Collection[str] = ()) -> dict[str, Any]:
    """Redact (patterns, secret keys and the `known` secrets) then compact a draft payload:
    what a record is built from."""
    known = tuple(s for s in known if len(s) >= MIN_KNOWN_SECRET)
    text = _clean_text(payload, known)
    if text is not None and len(text) <= limit - _WRITER_FIELDS_ROOM:
        clean: dict[str, Any] = json.loads(text)  # clean and small: the usual case, one dump
        return clean
    redacted = json.loads(text) if text is not None else _redact(payload, known)
    assert isinstance(redacted, dict)
    return compact(redacted, limit)
