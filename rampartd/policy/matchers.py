"""Pattern translation and value matching: globs → RE2, path and URL normalisation, params.

Pattern forms (every `*_matches` list accepts both):

- a glob. Text globs (commands, URLs, domains, sessions, tool/agent scopes, `params.glob`):
  `*` matches any run of characters including `/` and spaces, `?` one character, `[abc]` /
  `[!abc]` a class, `\\` escapes. A command glob ending in ` *` also matches the bare
  program (`git *` matches `git`). Path globs: `*` stays inside one path segment, `**` is a
  whole segment that spans any number of directories (`**/.ssh/id_*`), and a pattern that does
  not start with `/` or `~` matches at any depth (`.env` is `**/.env`). `~` is the home
  directory captured when the policy set was loaded.
- `re:<regex>`: an RE2 regular expression searched anywhere in the text (anchor it with `^`
  and `$`). RE2 runs in linear time; it has no look-around and no back-references.

Globs compile to RE2 too, so every pattern of a kind can go into one RE2 set.
"""

from __future__ import annotations

import posixpath
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import re2

REGEX_PREFIX = "re:"


class PatternError(ValueError):
    """A glob or regex that cannot be compiled; the message says why."""


# Programs whose bare host arguments (`curl example.com`) count as URLs.
FETCHERS = frozenset({"curl", "wget", "http", "https", "xh", "aria2c"})

def re2_options() -> Any:
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = 64 << 20
    return opts


def compile_regex(regex: str) -> Any:
    """Compile an RE2 regex (PatternError if invalid)."""
    try:
        return re2.compile(regex, re2_options())
    except re2.error as exc:
        raise PatternError(f"invalid regex {regex!r}: {exc}") from None


def bracket(text: str, i: int) -> tuple[bool, str, int] | None:
    """The glob class `[...]` starting at text[i]: (negated, its characters as written, the
    index after it), or None when it is not closed. A `]` first in the class is literal."""
    j = i + 1
    negate = j < len(text) and text[j] in "!^"
    if negate:
        j += 1
    start = j
    if j < len(text) and text[j] == "]":
        j += 1
    while j < len(text) and text[j] != "]":
        j += 1
    if j >= len(text):
        return None
    return negate, text[start:j], j + 1


def _class(glob: str, i: int) -> tuple[str, int]:
    """Translate the `[...]` starting at glob[i]; returns (regex, index after it)."""
    found = bracket(glob, i)
    if found is None:
        raise PatternError(f"unclosed '[' in {glob!r}")
    negate, body, end = found
    if not body:
        raise PatternError(f"empty '[]' in {glob!r}")
    escaped = "".join("\\" + c if c in "\\[]^" else c for c in body)
    return ("[^" if negate else "[") + escaped + "]", end


def literal_regex(text: str) -> str:
    """An unanchored RE2 regex that finds text literally (`command_contains`)."""
    if text == "":
        raise PatternError("empty text")
    return "(?s)" + str(re2.escape(text))


def _translate(text: str, glob: str, *, star: str, one: str) -> str:
    """Glob syntax to RE2: runs of `*` become `star`, `?` becomes `one`, classes and escapes
    are kept, everything else is literal. `glob` is the whole pattern, for error messages."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "*":
            while i < len(text) and text[i] == "*":
                i += 1
            out.append(star)
            continue
        if c == "?":
            out.append(one)
        elif c == "[":
            piece, i = _class(text, i)
            out.append(piece)
            continue
        elif c == "\\":
            if i + 1 >= len(text):
                raise PatternError(f"trailing backslash in {glob!r}")
            out.append(re2.escape(text[i + 1]))
            i += 2
            continue
        else:
            out.append(re2.escape(c))
        i += 1
    return "".join(out)


def text_glob_regex(glob: str, *, command: bool = False) -> str:
    """Translate a text glob to an anchored RE2 regex (`*` crosses everything)."""
    if glob == "":
        raise PatternError("empty pattern")
    bare_ok = command and glob.endswith(" *") and len(glob) > 2
    body = glob[:-2] if bare_ok else glob
    tail = "(?: .*)?" if bare_ok else ""
    return r"(?s)\A" + _translate(body, glob, star=".*", one=".") + tail + r"\z"


def expand_home(pattern: str, home: str) -> str:
    """Replace a leading `~` or `$HOME` with the home directory."""
    for lead in ("~", "$HOME", "${HOME}"):
        if pattern == lead:
            return home
        if pattern.startswith(lead + "/"):
            return home.rstrip("/") + pattern[len(lead):]
    return pattern


def path_glob_regex(glob: str, home: str) -> str:
    """Translate a path glob to an anchored RE2 regex (`*` within a segment, `**` across)."""
    if glob == "":
        raise PatternError("empty pattern")
    pattern = expand_home(glob, home)
    pattern = re.sub(r"/{2,}", "/", pattern)
    if not pattern.startswith("/"):
        pattern = "**/" + pattern
    segments = pattern.split("/")
    out: list[str] = []
    for n, seg in enumerate(segments):
        last = n == len(segments) - 1
        if seg == "**":
            # `**/` is zero or more directories; a final `/**` is anything below.
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        if "**" in seg:
            raise PatternError(f"'**' must be a whole path segment in {glob!r}",
                               ) from None
        out.append(_translate(seg, glob, star="[^/]*", one="[^/]") + ("" if last else "/"))
    regex = "".join(out)
    if pattern.endswith("/**") and len(segments) > 1:
        # `dir/**` also matches `dir` itself.
        regex = regex[: -len("/.*")] if regex.endswith("/.*") else regex
        regex += "(?:/.*)?"
    # Case is ignored: macOS and Windows file systems do (~/.SSH/ID_RSA is the key there).
    return r"(?si)\A" + regex + r"\z"


def path_tree_regex(glob: str, home: str) -> str | None:
    """An RE2 regex for the directories a path glob could name something in or below: the
    trees `rm -rf T` or `tar c T` would reach it through. None for `re:` patterns.

    `~/.ssh/id_*` gives `~`, `~/.ssh` and `~/.ssh/id_*` (and `/`); a pattern at any depth
    (`**/.ssh/id_*`) gives only trees that hold one of its own segments (`…/.ssh`), not
    every directory: `rm -rf build` is no deletion of a key that might be inside it.
    """
    if glob.startswith(REGEX_PREFIX):
        return None
    pattern = re.sub(r"/{2,}", "/", expand_home(glob, home))
    if not pattern.startswith("/"):
        pattern = "**/" + pattern
    while pattern.startswith("**/**/"):
        pattern = pattern[3:]
    segments = pattern.split("/")
    lead = segments[0] == "**"
    pieces: list[str] = []
    for seg in segments:
        if seg == "**":
            pieces.append("**")
        elif "**" in seg:
            return None
        else:
            pieces.append(_translate(seg, glob, star="[^/]*", one="[^/]"))
    alts: list[str] = []
    if not lead:
        alts.append("/")  # the root holds every absolute path
    for k in range(2, len(pieces) + 1):
        parts = pieces[:k]
        out = ""
        for n, piece in enumerate(parts):
            if piece == "**":
                out += ".*" if n == len(parts) - 1 else "(?:[^/]*/)*"
            else:
                out += piece + ("" if n == len(parts) - 1 else "/")
        alts.append(out)
    if not alts:
        return None
    return r"(?si)\A(?:" + "|".join(alts) + r")\z"


def pattern_regex(pattern: str, kind: str, home: str) -> str:
    """The RE2 regex for one policy pattern of a kind (command, path, url, domain, text)."""
    if pattern.startswith(REGEX_PREFIX):
        regex = pattern[len(REGEX_PREFIX):]
        if not regex:
            raise PatternError("empty regex after 're:'")
        return regex
    if kind == "path":
        regex = path_glob_regex(pattern, home)
    elif kind == "domain":
        regex = text_glob_regex(pattern.lower().rstrip("."))
    else:
        regex = text_glob_regex(pattern, command=kind == "command")
    return regex


def normalize_path(path: str, *, cwd: str | None, home: str) -> str:
    """Expand `~`, resolve against cwd, collapse `//`, `.` and `..` (never above `/`)."""
    p = expand_home(path.strip(), home)
    if not p.startswith("/") and cwd:
        p = expand_home(cwd, home).rstrip("/") + "/" + p
    absolute = p.startswith("/")
    parts: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not absolute:
                parts.append("..")
            continue
        parts.append(seg)
    joined = "/".join(parts)
    if absolute:
        return "/" + joined
    return joined or "."


_HOSTISH = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}(?::[0-9]+)?(?:[/?#].*)?\Z")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def url_host(url: str) -> str | None:
    """The lower-case host of a URL without port or trailing dot (None if there is none)."""
    try:
        host = urlsplit(url if _SCHEME.match(url) else "http://" + url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host.rstrip(".").lower()


def normalize_url(url: str) -> str:
    """A URL with its scheme and host in lower case (the rest is kept as sent)."""
    m = _SCHEME.match(url)
    if not m:
        return url
    rest = url[m.end():]
    cut = len(rest)
    for sep in "/?#":
        k = rest.find(sep)
        if k != -1:
            cut = min(cut, k)
    return m.group(0).lower() + rest[:cut].lower() + rest[cut:]


def urls_in_words(program: str, words: tuple[str, ...]) -> list[str]:
    """URLs named by a command's arguments (any `scheme://…`, and bare hosts for fetchers)."""
    found: list[str] = []
    fetcher = program in FETCHERS
    for word in words:
        if _SCHEME.match(word):
            found.append(word)
        elif fetcher and not word.startswith("-") and _HOSTISH.match(word):
            found.append("http://" + word)
    return found


# ---- params constraints -------------------------------------------------------------------

_NUMERIC_TEXT = re.compile(r"\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*\Z")


def as_number(value: Any) -> int | float | Decimal | None:
    """A number, or a string that is exactly a decimal number; None otherwise (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, str) and len(value) <= 100 and _NUMERIC_TEXT.match(value):
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
            return None
    return None


def values_equal(actual: Any, expected: Any) -> bool:
    """Typed equality: numbers compare as numbers (numeric strings too), bools only with bools."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and actual == expected
    if isinstance(expected, (int, float)):
        number = as_number(actual)
        return number is not None and number == expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    if expected is None:
        return actual is None
    return bool(actual == expected)


AMBIGUOUS = object()  # a value a rule must not decide on


def lookup_param(params: Any, name: str) -> tuple[bool, Any]:
    """(present, value) of a named argument; `a.b` reaches into nested objects.

    A caller could send both a literal key "a.b" and a nested {"a": {"b": …}} to hide one
    behind the other; when both exist and differ, the value is AMBIGUOUS.
    """
    if not isinstance(params, dict) and not hasattr(params, "get"):
        return False, None
    literal = name in params
    if "." not in name:
        return literal, params[name] if literal else None
    value: Any = params
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return literal, params[name] if literal else None
    if literal and not values_equal(params[name], value):
        return True, AMBIGUOUS
    return True, value


def posix_basename(word: str) -> str:
    """The program name of a command word (`/bin/rm` → `rm`)."""
    base = posixpath.basename(word.rstrip("/")) if "/" in word else word
    return base or word
