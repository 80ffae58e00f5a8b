"""A bounded lexer for interpreter code: string literals (with their escapes and interpolations),
names, numbers and punctuation. One pass, linear in the code's length, never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TOKENS = 20_000

# A string's pieces: literal text, or the source of an interpolated expression.
Piece = tuple[bool, str]  # (is_expression, text)


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme: kind is str, cmd (backticks, qx), words (qw, %w), name, num, op or nl."""

    kind: str
    text: str
    pieces: tuple[Piece, ...] = ()


@dataclass(frozen=True, slots=True)
class Syntax:
    """What one language's lexer must know."""

    line_comments: tuple[str, ...]
    block_comments: tuple[tuple[str, str], ...] = ()
    raw_single: bool = False  # '…' keeps backslashes except \\ and \'
    single_quotes: bool = True
    interpolation: str = ""  # "$" (perl, php), "#{" (ruby), "${" (JS templates)
    backtick: str = ""  # "cmd" (perl, ruby, php), "template" (JS), "name" (R)
    regex_literals: bool = False
    quote_like: str = ""  # "perl" or "ruby"
    long_strings: bool = False  # lua [[…]]
    newlines: bool = False  # newlines end statements
    name_chars: str = ""  # extra characters inside names ('.' for R)
    sigils: str = ""  # characters that may start a name ('$@%' for perl)


SYNTAX: dict[str, Syntax] = {
    "node": Syntax(("//",), (("/*", "*/"),), interpolation="${", backtick="template",
                   regex_literals=True, sigils="$"),
    "perl": Syntax(("#",), raw_single=True, interpolation="$", backtick="cmd",
                   regex_literals=True, quote_like="perl", sigils="$@%&"),
    "ruby": Syntax(("#",), raw_single=True, interpolation="#{", backtick="cmd",
                   regex_literals=True, quote_like="ruby", newlines=True, sigils="$@:"),
    "php": Syntax(("#", "//"), (("/*", "*/"),), raw_single=True, interpolation="$",
                  backtick="cmd", sigils="$"),
    "lua": Syntax(("--",), long_strings=True, newlines=True),
    "r": Syntax(("#",), backtick="name", newlines=True, name_chars="."),
    "applescript": Syntax(("--", "#"), (("(*", "*)"),), newlines=True),
    "awk": Syntax(("#",), single_quotes=False, regex_literals=True, newlines=True),
    "python": Syntax(("#",), newlines=True),
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUM = re.compile(r"[0-9][0-9A-Za-z_.]*")
_OPS = ("...", "->", "=>", "::", "..", "==", "!=", "<=", ">=", "&&", "||", "|&", "<-", "<<",
        ">>", "?.", "+=", ".=")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "e": "\x1b", "a": "\a", "f": "\f",
            "v": "\v", "b": "\b"}
_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_PERL_QUOTES = {"q": 1, "qq": 1, "qw": 1, "qx": 1, "m": 1, "qr": 1, "s": 2, "tr": 2, "y": 2}
_REGEX_AFTER = frozenset({"(", ",", "=", ":", "[", "!", "&", "|", "?", "{", "}", ";", "~", "+",
                          "-", "*", "%", "<", ">", "nl", "&&", "||", "==", "!=", "=>", "return",
                          "typeof", "case", "split", "grep", "if", "unless", "and", "or", "not",
                          "when", "match"})


def _escape(code: str, i: int) -> tuple[str, int]:
    """Decode the escape at code[i] (just after a backslash); returns (text, next index)."""
    if i >= len(code):
        return "\\", i
    c = code[i]
    if c in _ESCAPES and not (c == "0" and code[i + 1:i + 2].isdigit()):
        return _ESCAPES[c], i + 1
    if c in "xu":
        if code[i + 1:i + 2] == "{":
            end = code.find("}", i + 2)
            digits = code[i + 2:end] if end != -1 else ""
            if digits and len(digits) <= 8 and all(ch in "0123456789abcdefABCDEF" for ch in digits):
                return chr(min(int(digits, 16), 0x10FFFF)), end + 1
        width = 2 if c == "x" else 4
        digits = code[i + 1:i + 1 + width]
        n = 0
        while n < len(digits) and digits[n] in "0123456789abcdefABCDEF":
            n += 1
        if n:
            return chr(int(digits[:n], 16)), i + 1 + n
        return c, i + 1
    if c in "01234567":
        n = 1
        while n < 3 and code[i + n:i + n + 1] in tuple("01234567") and i + n < len(code):
            n += 1
        return chr(int(code[i:i + n], 8)), i + n
    return c, i + 1


class Lexer:
    """Tokens of one piece of code in one language."""

    def __init__(self, code: str, lang: str) -> None:
        self.code = code
        self.syn = SYNTAX.get(lang, SYNTAX["python"])
        self.lang = lang
        self.tokens: list[Token] = []
        self.truncated = False

    def _prev(self) -> str:
        for t in reversed(self.tokens):
            return t.text if t.kind in ("op", "name", "nl") else t.kind
        return "("

    def _regex_allowed(self) -> bool:
        prev = self._prev()
        return prev in _REGEX_AFTER or prev == "(" or not self.tokens

    def _quoted(self, i: int, close: str, *, raw: bool, interp: str, opener: str = "") -> \
            tuple[tuple[Piece, ...], int]:
        """Read a quoted body from code[i] up to close; returns (pieces, index after close)."""
        code, out, buf, depth = self.code, [], [], 0
        while i < len(code):
            c = code[i]
            if c == "\\" and i + 1 < len(code):
                if raw:
                    nxt = code[i + 1]
                    if nxt in ("\\", close, opener):
                        buf.append(nxt)
                        i += 2
                    else:
                        buf.append(c)
                        i += 1
                    continue
                text, i = _escape(code, i + 1)
                buf.append(text)
                continue
            if opener and c == opener:
                depth += 1
            elif c == close:
                if depth == 0:
                    break
                depth -= 1
            if interp and not raw:
                end = self._interpolation(i, interp)
                if end is not None:
                    if buf:
                        out.append((False, "".join(buf)))
                        buf = []
                    out.append((True, code[i:end]))
                    i = end
                    continue
            buf.append(c)
            i += 1
        if buf:
            out.append((False, "".join(buf)))
        return tuple(out), min(i + 1, len(code))

    def _interpolation(self, i: int, interp: str) -> int | None:
        """End index of an interpolated expression starting at code[i], or None."""
        code = self.code
        if interp in ("${", "#{") and code.startswith(interp, i):
            depth, j = 0, i + 2
            while j < len(code):
                if code[j] == "{":
                    depth += 1
                elif code[j] == "}":
                    if depth == 0:
                        return j + 1
                    depth -= 1
                j += 1
            return len(code)
        if interp == "$" and code[i] in "$@" and i + 1 < len(code):
            j = i + 1
            if code[j] == "{":
                end = code.find("}", j)
                return len(code) if end == -1 else end + 1
            m = _NAME.match(code, j)
            if m is None:
                return None
            j = m.end()
            while j < len(code) and code[j] in "[{":  # $ENV{HOME}, $a[0], $_SERVER['HOME']
                end = code.find(_PAIRS[code[j]], j)
                if end == -1:
                    break
                j = end + 1
            return j
        return None

    def _quote_like(self, i: int, word: str) -> int | None:
        """Perl q()/qq{}/qw//… and Ruby %q()/%w[]/%x{}…: the index after it, or None."""
        code = self.code
        if i >= len(code) or code[i].isalnum() or code[i] in " \t\n_=,;)":
            return None
        opener = code[i]
        close = _PAIRS.get(opener, opener)
        parts = _PERL_QUOTES.get(word, 1)
        raw = word in ("q", "qw", "%q", "%w", "%i")
        interp = "" if raw else self.syn.interpolation
        pieces, j = self._quoted(i + 1, close, raw=raw, interp=interp,
                                 opener=opener if close != opener else "")
        if parts == 2:
            if close != opener:
                while j < len(code) and code[j] in " \t\n":
                    j += 1
                if j < len(code):
                    second = code[j]
                    _, j = self._quoted(j + 1, _PAIRS.get(second, second), raw=True, interp="")
            else:
                _, j = self._quoted(j, close, raw=True, interp="")
        while j < len(code) and code[j].isalpha():
            j += 1
        if word in ("qw", "%w", "%W", "%i"):
            text = "".join(t for _, t in pieces)
            self._add(Token("words", text, tuple((False, w) for w in text.split())))
        elif word in ("qx", "%x"):
            self._add(Token("cmd", "", pieces))
        elif word in ("m", "qr", "s", "tr", "y", "%r"):
            self._add(Token("regex", ""))
        else:
            self._add(Token("str", "", pieces))
        return j

    def _add(self, token: Token) -> None:
        if len(self.tokens) >= MAX_TOKENS:
            self.truncated = True
            return
        self.tokens.append(token)

    def _comment(self, i: int) -> int | None:
        code, syn = self.code, self.syn
        for start, end in syn.block_comments:
            if code.startswith(start, i):
                k = code.find(end, i + len(start))
                return len(code) if k == -1 else k + len(end)
        if self.lang == "lua" and code.startswith("--[", i):
            m = re.match(r"--\[(=*)\[", code[i:i + 64])
            if m:
                k = code.find("]" + m.group(1) + "]", i)
                return len(code) if k == -1 else k + len(m.group(1)) + 2
        for start in syn.line_comments:
            if code.startswith(start, i):
                if start == "#" and self.lang == "perl" and i and code[i - 1] == "$":
                    return None  # $#array
                k = code.find("\n", i)
                return len(code) if k == -1 else k
        return None

    def run(self) -> list[Token]:
        """Tokenise the whole code (up to MAX_TOKENS)."""
        code, syn, i = self.code, self.syn, 0
        while i < len(code) and not self.truncated:
            c = code[i]
            if c == "\n":
                if syn.newlines:
                    self._add(Token("nl", "nl"))
                i += 1
                continue
            if c in " \t\r\f\v":
                i += 1
                continue
            end = self._comment(i)
            if end is not None:
                i = end
                continue
            if c == '"' or (c == "'" and syn.single_quotes):
                raw = c == "'" and syn.raw_single
                interp = syn.interpolation if c == '"' and syn.interpolation != "${" else ""
                pieces, i = self._quoted(i + 1, c, raw=raw, interp=interp)
                self._add(Token("str", "", pieces))
                continue
            if c == "`" and syn.backtick:
                if syn.backtick == "name":
                    k = code.find("`", i + 1)
                    k = len(code) if k == -1 else k
                    self._add(Token("name", code[i + 1:k]))
                    i = k + 1
                    continue
                interp = "${" if syn.backtick == "template" else syn.interpolation
                pieces, i = self._quoted(i + 1, "`", raw=False, interp=interp)
                self._add(Token("str" if syn.backtick == "template" else "cmd", "", pieces))
                continue
            if syn.long_strings and c == "[":
                m = re.match(r"\[(=*)\[", code[i:i + 64])
                if m:
                    close = "]" + m.group(1) + "]"
                    k = code.find(close, i + m.end())
                    k = len(code) if k == -1 else k
                    self._add(Token("str", "", ((False, code[i + m.end():k]),)))
                    i = k + len(close)
                    continue
            if syn.quote_like == "ruby" and c == "%":
                m = re.match(r"%([qQwWixrs]?)", code[i:i + 2])
                word = "%" + (m.group(1) if m else "")
                if word == "%" and not self._regex_allowed():
                    word = ""
                j = self._quote_like(i + len(word), word if word != "%" else "%Q") if word \
                    else None
                if j is not None:
                    i = j
                    continue
            if c == "/" and syn.regex_literals and self._regex_allowed() and \
                    not code.startswith("//", i):
                _, i = self._quoted(i + 1, "/", raw=True, interp="")
                while i < len(code) and code[i].isalpha():
                    i += 1
                self._add(Token("regex", ""))
                continue
            if c.isalpha() or c == "_" or (c in syn.sigils and i + 1 < len(code) and
                                           (code[i + 1].isalpha() or code[i + 1] == "_")):
                j = i + 1
                while j < len(code) and (code[j].isalnum() or code[j] == "_" or
                                         code[j] in syn.name_chars):
                    j += 1
                word = code[i:j]
                if syn.quote_like == "perl" and word in _PERL_QUOTES and \
                        self._prev() not in ("->", "{"):
                    k = j
                    while k < len(code) and code[k] in " \t" and word != "s":
                        k += 1
                    end = self._quote_like(k, word)
                    if end is not None:
                        i = end
                        continue
                self._add(Token("name", word))
                i = j
                continue
            if c.isdigit():
                m = _NUM.match(code, i)
                j = m.end() if m else i + 1
                self._add(Token("num", code[i:j]))
                i = j
                continue
            for op in _OPS:
                if code.startswith(op, i):
                    self._add(Token("op", op))
                    i += len(op)
                    break
            else:
                self._add(Token("op", c))
                i += 1
        return self.tokens


def tokenize(code: str, lang: str) -> tuple[list[Token], bool]:
    """The tokens of code in lang, and whether the token cap was reached."""
    lexer = Lexer(code, lang)
    tokens = lexer.run()
    return tokens, lexer.truncated
