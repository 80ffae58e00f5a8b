"""What inline code does (InlineFindings), the bounded collector that builds it, and values.

A Value is a string folded from the code: `text` holds the literal parts, with UNKNOWN standing
for each part that cannot be known before the code runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from rampartd.policy.urls import parse_url, urls_in_text

MAX_CODE = 64 * 1024
MAX_FINDINGS = 256
MAX_DEPTH = 6  # nested exec/eval of literal code analysed in turn

UNKNOWN = "\x00"
# How an unknown part appears in a command line: a parameter expansion, so the shell parser
# sees a target that cannot be known before run time.
UNKNOWN_WORD = "${UNKNOWN}"

FETCHES_AND_EXECUTES = "fetches code and executes it"
BUILDS_NAME = "builds a name from pieces"
EVALUATES = "evaluates computed code"
NATIVE = "loads a native library"
SOCKET = "opens a network socket"
TOO_COMPLEX = "code too complex to analyse"

_PATHISH = re.compile(r"(?:/|~(?:[A-Za-z_][A-Za-z0-9_.-]*)?(?:/|\Z))[^\s\x00]*\Z")
_SHELL_PROGRAMS = re.compile(
    r"(?:^|[|;&(]\s*|\bexec\s+)(?:\S*/)?(?:sh|bash|dash|zsh|ksh|fish|python[0-9.]*|perl|ruby|node"
    r"|php|lua|pwsh)\b")


@dataclass(frozen=True, slots=True)
class InlineFindings:
    """The effects inline code would have, as far as they can be known before it runs."""

    commands: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    chmods: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    risky: tuple[str, ...] = ()
    unknown_targets: bool = False


@dataclass(frozen=True, slots=True)
class Value:
    """A folded string: literal text with UNKNOWN for each part known only at run time."""

    text: str
    obfuscated: bool = False  # built by chr()/decoding/reversal/fragment joins

    @property
    def known(self) -> bool:
        """True when every part of the text is literal."""
        return UNKNOWN not in self.text

    def __add__(self, other: Value) -> Value:
        return Value(self.text + other.text, self.obfuscated or other.obfuscated)


UNKNOWN_VALUE = Value(UNKNOWN)
HOME = Value("~")


def concat(values: list[Value]) -> Value:
    """The concatenation of folded values."""
    text = "".join(v.text for v in values)
    return Value(text, any(v.obfuscated for v in values))


def join_path(parts: list[Value]) -> Value:
    """os.path.join / path.join / File.join of folded parts (an absolute part restarts)."""
    out = ""
    for part in parts:
        t = part.text
        out = t if t.startswith("/") or not out else out.rstrip("/") + "/" + t
    return Value(out, any(p.obfuscated for p in parts))


def shell_quote(text: str) -> str:
    """One shell word for text; a leading `~` (the home directory, already expanded) stays bare."""
    if text == "~" or text.startswith("~/"):
        rest = text[2:]
        return "~/" + shlex.quote(rest) if rest else text
    return shlex.quote(text)


def looks_like_path(text: str) -> bool:
    """An absolute or home path literal (`/etc/shadow`, `~/.ssh/id_rsa`, `~alice`)."""
    return len(text) > 1 and len(text) <= 4096 and bool(_PATHISH.match(text)) \
        and not text.startswith("//")


@dataclass(slots=True)
class Collector:
    """Findings as they are found, deduplicated and bounded."""

    commands: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    chmods: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    risky: list[str] = field(default_factory=list)
    literals: list[str] = field(default_factory=list)
    unknown: bool = False
    fetches: bool = False
    executes_computed: bool = False
    runs_interpreter: bool = False
    count: int = 0

    def _add(self, items: list[str], text: str) -> None:
        if text in items:
            return
        if self.count >= MAX_FINDINGS:
            self.too_complex()
            return
        self.count += 1
        items.append(text)

    def too_complex(self) -> None:
        """Past a cap: the rest cannot be known."""
        self.unknown = True
        self.flag(TOO_COMPLEX)

    def flag(self, reason: str) -> None:
        """Record a reason the code is an unsafe `code` effect."""
        if reason not in self.risky:
            self.risky.append(reason)

    def _target(self, value: Value | None) -> str | None:
        if value is None:
            self.unknown = True
            return None
        if value.obfuscated:
            self.flag(BUILDS_NAME)
        if not value.known or not value.text:
            self.unknown = True
            return None
        return value.text

    def path(self, kind: str, value: Value | None) -> None:
        """A file effect (kind: read, write, delete, chmod) on a folded path."""
        text = self._target(value)
        if text is None:
            return
        if text.startswith(("file://", "file:/")):
            ep = parse_url(text)
            text = ep.path if ep is not None else text
        items = {"read": self.reads, "write": self.writes, "delete": self.deletes,
                 "chmod": self.chmods}[kind]
        self._add(items, text)

    def command(self, value: Value | None) -> None:
        """A shell command line the code runs (unknown parts become `${UNKNOWN}`)."""
        if value is None:
            self.unknown = True
            return
        if value.obfuscated:
            self.flag(BUILDS_NAME)
        if not value.known:
            self.unknown = True
        text = value.text.replace(UNKNOWN, UNKNOWN_WORD).strip()
        if not text:
            self.unknown = True
            return
        if _SHELL_PROGRAMS.search(text):
            self.runs_interpreter = True
        self._add(self.commands, text)
        for url in urls_in_text(text):
            self._add(self.urls, url)

    def argv(self, words: list[Value | None]) -> None:
        """A program run with an argument vector (no shell between)."""
        if not words:
            self.unknown = True
            return
        parts: list[str] = []
        obfuscated = False
        for w in words:
            if w is None or not w.known:
                parts.append(UNKNOWN)
            else:
                parts.append(shell_quote(w.text))
            obfuscated = obfuscated or (w is not None and w.obfuscated)
        self.command(Value(" ".join(parts), obfuscated))

    def url(self, value: Value | None) -> None:
        """A network target (a URL or a host)."""
        text = self._target(value)
        if text is None:
            self.fetches = True
            return
        self.fetches = True
        found = urls_in_text(text)
        if found:
            for u in found:
                self._add(self.urls, u)
        elif parse_url(text, "http") is not None:
            self._add(self.urls, text)

    def literal(self, text: str) -> None:
        """A string literal of the code, classified at the end if nothing else used it."""
        if len(self.literals) < MAX_FINDINGS * 4:
            self.literals.append(text)

    def finish(self) -> InlineFindings:
        """The findings, with unclassified path and URL literals added conservatively."""
        used = set(self.reads) | set(self.writes) | set(self.deletes) | set(self.chmods)
        words: set[str] = set()
        for cmd in self.commands:
            try:
                words.update(shlex.split(cmd))
            except ValueError:
                words.update(cmd.split())
        for text in self.literals:
            for u in urls_in_text(text):
                self._add(self.urls, u)
            if looks_like_path(text) and text not in used and text not in words:
                self._add(self.reads, text)
        if self.fetches and (self.executes_computed or self.runs_interpreter or self.chmods):
            self.flag(FETCHES_AND_EXECUTES)
        order = [FETCHES_AND_EXECUTES, BUILDS_NAME, EVALUATES, NATIVE, SOCKET, TOO_COMPLEX]
        risky = tuple(sorted(self.risky, key=order.index))
        return InlineFindings(tuple(self.commands), tuple(self.reads), tuple(self.writes),
                              tuple(self.deletes), tuple(self.chmods), tuple(self.urls), risky,
                              self.unknown)
