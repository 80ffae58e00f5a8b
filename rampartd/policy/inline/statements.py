"""Statement-level forms the call scan builds on: where a statement starts and ends, file
and code effects of a folded value, and the statement forms of awk (`print | "cmd"`,
`"cmd" | getline`, `print > "file"`, `getline < "file"`) and AppleScript (`do shell script`).
"""

from __future__ import annotations

import re

from rampartd.policy.inline import findings as F
from rampartd.policy.inline.findings import UNKNOWN_VALUE, Analyze, Collector, Value
from rampartd.policy.inline.fold import Folder, quote
from rampartd.policy.inline.lexer import tokenize

URL_SCHEME = re.compile(r"(?i)(?:https?|ftps?)://")
STOP_WORDS = frozenset({"or", "and", "if", "unless", "while", "until", "then", "do", "foreach",
                        "for", "rescue"})
_AWK_PRINT = frozenset({"print", "printf"})
_AS_CLAUSES = frozenset({"with", "without", "given", "user", "password", "altering"})


class Statements(Folder):
    """Tokens of one piece of code, with the statement forms every language shares."""

    def __init__(self, lang: str, code: str, out: Collector, depth: int, budget: list[int],
                 analyze: Analyze, *, alternate: bool = False) -> None:
        super().__init__(lang, budget, depth)
        self.out = out
        self.analyze_nested = analyze
        self.toks, truncated = tokenize(code, lang, alternate=alternate)
        if truncated:
            out.too_complex()

    def _statement_end(self, i: int, *, commas: bool = True) -> int:
        j = self._statement_end_from(i, commas)
        self.spend(j - i)
        return j

    def _statement_end_from(self, i: int, commas: bool) -> int:
        toks, depth, j = self.toks, 0, i
        while j < len(toks):
            t = toks[j]
            if t.kind == "op" and t.text in "([{":
                depth += 1
            elif t.kind == "op" and t.text in ")]}":
                if depth == 0:
                    return j
                depth -= 1
            elif depth == 0 and (t.text == ";" or t.kind == "nl" or (commas and t.text == ",")
                                 or (t.kind == "name" and t.text in STOP_WORDS)
                                 or (not commas and t.kind == "op" and t.text in ("||", "&&"))):
                return j  # (a call's arguments without parentheses end at `||` too)
            j += 1
        return j

    def _path(self, kind: str, v: Value) -> None:
        if v.known and kind == "read" and URL_SCHEME.match(v.text):
            self.out.url(v)
        elif v.known and kind == "read" and self.lang in ("ruby", "perl") and \
                v.text.startswith("|"):
            self.out.command(Value(v.text[1:], v.obfuscated))
        else:
            self.out.path(kind, v)

    def _evaluate(self, v: Value, *, literal: bool) -> None:
        out = self.out
        if v.known and literal and self.depth >= F.MAX_DEPTH:
            out.too_complex()
            return
        if v.known and literal:
            if v.obfuscated:
                out.flag(F.EVALUATES)
            self.analyze_nested(self.lang, v.text, out, self.depth + 1)
            return
        if v.obfuscated:
            out.flag(F.BUILDS_NAME)
        out.flag(F.EVALUATES)
        out.executes_computed = True
        out.unknown = True

    # ---- statement forms of awk and AppleScript -------------------------------------------

    def _statement_start(self, i: int) -> int:
        j = self._statement_start_from(i)
        self.spend(i - j)
        return j

    def _statement_start_from(self, i: int) -> int:
        toks, depth, j = self.toks, 0, i - 1
        while j >= 0:
            t = toks[j]
            if t.kind == "op" and t.text in ")]}":
                depth += 1
            elif t.kind == "op" and t.text in "([{":
                if depth == 0:
                    return j + 1
                depth -= 1
            elif depth == 0 and (t.text in (";", "&&", "||") or t.kind == "nl"):
                return j + 1
            j -= 1
        return 0

    def _awk_op(self, i: int) -> None:
        toks = self.toks
        t = toks[i]
        if t.text not in ("|", "|&", ">", ">>", "<"):
            return
        if t.text in ("|", "|&") and i + 1 < len(toks) and toks[i + 1].text == "getline":
            start = self._statement_start(i)
            self.out.command(self.fold(toks[start:i]))
            return
        start = self._statement_start(i)
        printing = start < len(toks) and toks[start].text in _AWK_PRINT
        if t.text in ("|", "|&") and printing:
            target = self.fold(toks[i + 1:self._statement_end(i + 1, commas=False)])
            if not target.text.startswith("/inet"):  # a gawk network socket, not a command
                self.out.command(target)
        elif t.text in (">", ">>") and printing:
            self._path("write", self.fold(toks[i + 1:self._statement_end(i + 1,
                                                                          commas=False)]))
        elif t.text == "<" and i and (toks[i - 1].text == "getline" or (
                i > 1 and toks[i - 2].text == "getline")):
            self._path("read", self.fold(toks[i + 1:i + 2]))

    def _applescript(self, i: int) -> bool:
        toks = self.toks
        words = [t.text.lower() for t in toks[i:i + 3]]
        if words[:3] == ["do", "shell", "script"] or words[:2] == ["do", "script"]:
            k = i + (3 if words[1] == "shell" else 2)
            self.out.command(self._as_expr(k))
            return True
        if words[:2] == ["run", "script"]:
            self._evaluate(self._as_expr(i + 2), literal=True)
            return True
        if words[:1] == ["write"] or words[:2] == ["open", "for"]:
            end = self._statement_end(i, commas=False)
            stmt = toks[i:end]
            if words[0] == "write" or any(t.text == "write" for t in stmt[1:]):
                for k, t in enumerate(stmt):
                    if t.text in ("file", "alias") and k + 1 < len(stmt) and \
                            stmt[k + 1].kind == "str":
                        self._path("write", self.pieces(stmt[k + 1]))
            return False
        if words[:1] == ["delete"]:
            end = self._statement_end(i, commas=False)
            for t in toks[i:end]:
                if t.kind == "str":
                    self._path("delete", self.pieces(t))
        return False

    def _as_expr(self, k: int) -> Value:
        """An AppleScript expression: terms joined by `&`, `quoted form of`, `POSIX path of`."""
        end = self._statement_end(k, commas=False)
        expr = self.toks[k:end]
        for n, t in enumerate(expr):
            if t.kind == "name" and t.text.lower() in _AS_CLAUSES:
                expr = expr[:n]  # `with administrator privileges`, `without altering…`
                break
        values = []
        for term in self.split(expr, ("&",)):
            quoted = False
            while term:
                words = [t.text.lower() for t in term]
                if words[:3] == ["quoted", "form", "of"]:
                    quoted, term = True, term[3:]
                elif words[:3] == ["posix", "path", "of"]:
                    term = term[3:]
                elif term[0].text == "(" and self.close_of(term, 0) == len(term) - 1:
                    term = term[1:-1]
                else:
                    break
            words = [t.text.lower() for t in term]
            if words[:4] == ["path", "to", "home", "folder"]:
                v = Value("~/")
            elif words[:2] == ["system", "attribute"] and len(term) > 2:
                v = self.env(self.fold(term[2:]))
            else:
                v = self.fold(term) if term else UNKNOWN_VALUE
            values.append(quote(v) if quoted else v)
        return F.concat(values) if values else UNKNOWN_VALUE
