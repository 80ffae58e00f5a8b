"""Shell expansions: double quotes, `$…` (variables, `$(…)`, `$((…))`, `${…}`, `$'…'`) and
backticks. A mixin of the parser (rampartd.policy.shell.grammar): substitutions are parsed as
scripts, so the commands they would run become components too.
"""

from __future__ import annotations

import contextlib
import re

from rampartd.policy.shell.command import Out, ShellSyntaxError, Word

_DQ_PLAIN = re.compile(r"[^\"\\$`]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ANSI = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b",
         "f": "\f", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_ARITH = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|[0-9]+(?:#[0-9a-zA-Z]+)?|\$?[A-Za-z_][A-Za-z0-9_]*"
    r"|\$[0-9#?$!]|\$\{[^}]*\}|\$\([^)]*\))|(\+\+|--|[-+!~])"
    r"|(\*\*=?|<<=?|>>=?|<=|>=|==|!=|&&|\|\||[-+*/%&|^=]=?|[<>?:,])|(\()|(\)))")


def _is_arithmetic(body: str) -> bool:
    """A plausible `$((…))` expression: operands and operators alternate, parentheses balance."""
    pos, depth, want_operand = 0, 0, True
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        m = _ARITH.match(body, pos)
        if m is None or m.end() == pos:
            return False
        pos = m.end()
        operand, unary, binary, opening, closing = m.groups()
        if want_operand:
            if operand is not None:
                want_operand = False
            elif opening is not None:
                depth += 1
            elif unary is None:
                return False
        elif binary is not None or (unary is not None and unary in "+-"):
            want_operand = unary is None or unary in "+-"
        elif unary in ("++", "--"):
            continue
        elif closing is not None and depth > 0:
            depth -= 1
        else:
            return False
    return depth == 0 and (not want_operand or not body.strip())


def _close(s: str, j: int, n: int, depth: int, opening: str, closing: str, what: str) -> int:
    """Index just past the `closing` that brings `depth` to 0, scanning from s[j]."""
    while j < n and depth:
        c = s[j]
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
        j += 1
    if depth:
        raise ShellSyntaxError(f"unterminated '{what}'")
    return j


def _ansi_c(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 >= len(body):
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _ANSI:
            out.append(_ANSI[e])
            i += 2
        elif e == "x" and (m := re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])):
            out.append(chr(int(m.group(), 16)))
            i += 2 + m.end()
        elif e in "uU" and (m := re.match(r"[0-9a-fA-F]{1,8}", body[i + 2:])):
            out.append(chr(min(int(m.group(), 16), 0x10FFFF)))
            i += 2 + m.end()
        elif (m := re.match(r"[0-7]{1,3}", body[i + 1:])):
            out.append(chr(int(m.group(), 8)))
            i += 1 + m.end()
        else:
            out.append(c + e)
            i += 2
    return "".join(out)


class Expander:
    """Expansion handling over the parser's input (`s`, position `i`, length `n`)."""

    s: str
    i: int
    n: int
    depth: int
    out: Out
    vars: dict[str, str | None]
    positional: tuple[str, ...] | None

    def sub(self, text: str, prefix: tuple[str, ...] | None = None) -> str:
        """Parse a nested script, returning its normalised text."""
        raise NotImplementedError

    def parse_list(self, end: str | None) -> str:
        """Parse commands up to `end` on the same input."""
        raise NotImplementedError

    def child(self, text: str) -> Expander:
        """A parser over another text that shares this one's output."""
        raise NotImplementedError

    def dquote(self, buf: list[str], w: Word | None = None) -> bool:
        s, n = self.s, self.n
        dynamic = False
        while True:
            if self.i >= n:
                raise ShellSyntaxError("unterminated double quote")
            m = _DQ_PLAIN.match(s, self.i)
            if m:
                buf.append(m.group())
                self.i = m.end()
                continue
            c = s[self.i]
            if c == '"':
                self.i += 1
                return dynamic
            if c == "\\":
                nxt = s[self.i + 1] if self.i + 1 < n else ""
                if nxt in ("$", "`", '"', "\\", "\n"):
                    if nxt != "\n":
                        buf.append(nxt)
                    self.i += 2
                else:
                    buf.append("\\")
                    self.i += 1
            elif c == "$":
                dynamic |= self.dollar(buf, True, w)  # (w only for `"$@"`)
            else:
                self.backtick(buf)
                dynamic = True

    def dollar(self, buf: list[str], in_dquote: bool, w: Word | None) -> bool:
        """Expand the `$…` at self.i into buf; True if its value is unknown."""
        s, n = self.s, self.n
        nxt = s[self.i + 1] if self.i + 1 < n else ""
        if s.startswith("$((", self.i):
            j = _close(s, self.i + 3, n, 2, "(", ")", "$((")
            body = s[self.i + 3:j - 2]
            self.i = j
            self.scan_expansions(body)
            if not _is_arithmetic(body):
                # `$(( cmd ))` that is no arithmetic may run as a command substitution.
                self.out.problems.append("'$((…))' holds something that is not arithmetic")
                with contextlib.suppress(ShellSyntaxError):
                    self.sub(body)
            buf.append(f"$(({body}))")
            return True
        if nxt == "(":
            self.i += 2
            buf.append(f"$( {self.parse_list(')')} )")
            return True
        if nxt == "{":
            j = _close(s, self.i + 2, n, 1, "{", "}", "${")
            body = s[self.i + 2:j - 1]
            self.i = j
            return self.variable(body, buf, in_dquote, w)
        if nxt == "'" and not in_dquote:
            j = self.i + 2
            while j < n and s[j] != "'":
                j += 2 if s[j] == "\\" else 1
            if j >= n:
                raise ShellSyntaxError("unterminated $'...' quote")
            buf.append(_ansi_c(s[self.i + 2:j]))
            self.i = j + 1
            if w is not None:
                w.quoted = True
            return False
        if nxt == '"' and not in_dquote:
            self.i += 2
            if w is not None:
                w.quoted = True
            return self.dquote(buf, w)
        m = _NAME.match(s, self.i + 1)
        if m:
            self.i = m.end()
            return self.variable(m.group(), buf, in_dquote, w)
        if nxt and nxt in "0123456789@*#?$!-":
            self.i += 2
            if self.positional is not None and nxt in "123456789@*#":
                return self.argument(nxt, buf, in_dquote, w)
            buf.append("$" + nxt)
            return True
        buf.append("$")
        self.i += 1
        return False

    def argument(self, name: str, buf: list[str], in_dquote: bool, w: Word | None) -> bool:
        """`$1`, `$@`, `$*`, `$#` (name: what follows the `$`) of a function called with known
        arguments."""
        args = self.positional or ()
        if name == "#":
            buf.append(str(len(args)))
            return False
        value = " ".join(args) if name in "@*" else (
            args[int(name) - 1] if int(name) <= len(args) else "")
        buf.append(value)
        if w is not None and (name == "@" or not in_dquote) and any(c in value for c in " \t\n"):
            w.split = True  # `"$@"` is a word per argument
        return False

    def variable(self, body: str, buf: list[str], in_dquote: bool, w: Word | None) -> bool:
        if body == "HOME":
            buf.append("~")
            return False
        if self.positional is not None and (body in ("@", "*", "#") or (
                body.isdigit() and body != "0")):
            return self.argument(body, buf, in_dquote, w)  # `${1}`, `${@}`…
        if _NAME.fullmatch(body) and self.vars.get(body) is not None:
            value = self.vars[body] or ""
            buf.append(value)
            printed = "$( " in value or "$!" in value  # of known shape (see shell.printed)
            if w is not None and not in_dquote and not printed \
                    and any(c in value for c in " \t\n"):
                w.split = True
            return printed
        self.scan_expansions(body)
        buf.append("${" + body + "}")
        return True

    def backtick(self, buf: list[str]) -> None:
        s, n = self.s, self.n
        j = self.i + 1
        while j < n and s[j] != "`":
            j += 2 if s[j] == "\\" else 1
        if j >= n:
            raise ShellSyntaxError("unterminated backquote")
        body = re.sub(r"\\([\\`$])", r"\1", s[self.i + 1:j])
        self.i = j + 1
        buf.append(f"$( {self.sub(body, ())} )")

    def scan_expansions(self, text: str) -> None:
        """Parse the command substitutions inside text that the shell would expand."""
        if "$" not in text and "`" not in text:
            return
        child = self.child(text)
        sink: list[str] = []
        while child.i < child.n:
            c = text[child.i]
            if c == "\\":
                child.i += 2
            elif c == "$":
                child.dollar(sink, True, None)
            elif c == "`":
                child.backtick(sink)
            else:
                child.i += 1
