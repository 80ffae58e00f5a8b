"""The call-pattern scan of non-Python code (and of Python that does not parse): every call
whose name is in the language's table becomes commands, file effects, URLs or risky reasons.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rampartd.policy.inline import findings as F
from rampartd.policy.inline.findings import UNKNOWN_VALUE, Collector, Value
from rampartd.policy.inline.fold import Folder, module_name, quote
from rampartd.policy.inline.lexer import Token, tokenize
from rampartd.policy.inline.tables import (
    FETCH_MODULES,
    NATIVE_MODULES,
    PARENLESS,
    SOCKET_MODULES,
    TABLES,
    Action,
)

Analyze = Callable[[str, str, Collector, int], None]

_URL_SCHEME = re.compile(r"(?i)(?:https?|ftps?)://")
_STOP_WORDS = frozenset({"or", "and", "if", "unless", "while", "until", "then", "do", "foreach",
                         "for", "rescue", "||", "&&", "or die"})
_DECLARE = frozenset({"const", "let", "var", "my", "our", "local", "state"})
_MODULE_STATEMENTS = frozenset({"require", "use", "import", "library", "require_once",
                                "load", "dofile"})
_AWK_PRINT = frozenset({"print", "printf"})


class Scanner(Folder):
    """One pass over one language's tokens."""

    def __init__(self, lang: str, code: str, out: Collector, depth: int, budget: list[int],
                 analyze: Analyze) -> None:
        super().__init__(lang, budget, depth)
        self.out = out
        self.analyze_nested = analyze
        self.toks, truncated = tokenize(code, lang)
        if truncated:
            out.too_complex()
        self.table, self.tails = TABLES.get(lang, TABLES["python"])

    # ---- assignments and imports --------------------------------------------------------

    def _statement_end(self, i: int, *, commas: bool = True) -> int:
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
                                 or (t.kind == "name" and t.text in _STOP_WORDS)):
                return j
            j += 1
        return j

    def prepass(self) -> None:
        """Variables assigned once, and names bound by imports and destructuring."""
        toks, depth = self.toks, 0
        for i, t in enumerate(toks):
            if not self.spend():
                self.out.too_complex()
                return
            if t.kind == "op" and t.text in "([":
                depth += 1
            elif t.kind == "op" and t.text in ")]":
                depth = max(0, depth - 1)
            if t.kind != "name" or i + 1 >= len(toks):
                continue
            nxt = toks[i + 1]
            prev = toks[i - 1] if i else None
            if t.text == "import" and self.lang == "node":
                self._import(i)
            elif t.text in _DECLARE and nxt.text == "{" and self.lang == "node":
                self._destructure(i + 1)
            elif t.text == "set" and self.lang == "applescript" and i + 2 < len(toks) and \
                    toks[i + 2].text == "to":
                self._assign(toks[i + 1].text, i + 3)
            elif nxt.kind == "op" and nxt.text in ("=", "<-", ":=") and depth == 0 and \
                    not (prev is not None and prev.kind == "op" and prev.text in self.seps):
                self._assign(t.text, i + 2)

    def _assign(self, name: str, start: int) -> None:
        end = self._statement_end(start)
        value = self.toks[start:end]
        if name in self.vars and self.vars[name] != value:
            self.vars[name] = None  # assigned more than once: not one known value
        else:
            self.vars[name] = value
        if value and value[0].kind == "name" and all(
                t.kind == "name" or (t.kind == "op" and t.text in self.seps) for t in value):
            parts, _ = self.chain(value, 0)
            self.aliases[name] = self.canon(parts)
        elif self.lang == "node" and value and value[0].text == "require":
            parts, k = self.chain(value, 0)
            if k == len(value):
                self.aliases[name] = ".".join(parts)

    def _destructure(self, i: int) -> None:
        close = self.close_of(self.toks, i)
        if close + 2 >= len(self.toks) or self.toks[close + 1].text != "=":
            return
        rhs = self.toks[close + 2:self._statement_end(close + 2)]
        if not rhs or rhs[0].kind != "name":
            return
        parts, _ = self.chain(rhs, 0)
        module = self.canon(parts)
        inner = self.toks[i + 1:close]
        for part in self.split(inner, (",",)):
            names = [t.text for t in part if t.kind == "name"]
            if names:
                self.aliases[names[-1]] = f"{module}.{names[0]}"

    def _import(self, i: int) -> None:
        end = min(len(self.toks), i + 64)
        j = next((k for k in range(i, end) if self.toks[k].text == "from"), None)
        if j is None or j + 1 >= len(self.toks) or self.toks[j + 1].kind != "str":
            if i + 1 < len(self.toks) and self.toks[i + 1].kind == "str":
                self._module(module_name(self.pieces(self.toks[i + 1]).text))
            return
        module = module_name(self.pieces(self.toks[j + 1]).text)
        self._module(module)
        clause = self.toks[i + 1:j]
        if clause and clause[0].text == "{":
            for part in self.split(clause[1:self.close_of(clause, 0)], (",",)):
                names = [t.text for t in part if t.kind == "name"]
                if names:
                    self.aliases[names[-1]] = f"{module}.{names[0]}"
        elif clause:
            self.aliases[clause[-1].text] = module

    def _module(self, module: str) -> None:
        if module in NATIVE_MODULES:
            self.out.flag(F.NATIVE)
        if module in SOCKET_MODULES:
            self.out.flag(F.SOCKET)
            self.out.fetches = True
        if module in FETCH_MODULES:
            self.out.fetches = True

    # ---- the main pass -------------------------------------------------------------------

    def run(self) -> None:
        """Scan every token once."""
        self.prepass()
        toks = self.toks
        for i, t in enumerate(toks):
            if not self.spend():
                self.out.too_complex()
                return
            if t.kind == "cmd":
                self.out.command(self.pieces(t))
            elif t.kind == "str":
                if self._in_concatenation(i):
                    continue  # a piece of a longer string: the sinks fold the whole
                v = self.pieces(t)
                if v.known:
                    self._literal(v.text)
            elif t.kind == "words":
                for _, w in t.pieces:
                    self._literal(w)
            elif t.kind == "name":
                prev = toks[i - 1] if i else None
                if prev is not None and prev.kind == "op" and prev.text in self.seps:
                    continue
                self._name(i)
            elif t.kind == "op" and self.lang == "awk":
                self._awk_op(i)
            elif t.kind == "op" and t.text == "$" and self.lang == "node" and \
                    i + 1 < len(toks) and toks[i + 1].kind == "str":
                self.out.command(self.pieces(toks[i + 1]))  # zx and Bun shell templates

    def _in_concatenation(self, i: int) -> bool:
        toks = self.toks
        for j in (i - 1, i + 1):
            if 0 <= j < len(toks):
                t = toks[j]
                if t.kind == "op" and t.text in self.concat_ops:
                    return True
                if self.lang == "awk" and (t.kind in ("str", "name", "num") or (
                        t.text in (")", "]") and j < i) or (t.text in ("(", "$") and j > i)):
                    return True
        return False

    def _literal(self, text: str) -> None:
        if self.lang == "awk" and text.startswith("/inet"):
            parts = text.split("/")
            self.out.flag(F.SOCKET)
            self.out.fetches = True
            if len(parts) >= 6:
                self.out.url(Value(f"{parts[2]}://{parts[4]}:{parts[5]}"))
            return
        self.out.literal(text)

    def _name(self, i: int) -> None:
        toks = self.toks
        parts, j = self.chain(toks, i)
        name = self.canon(parts)
        if self.lang == "node" and toks[i].text in ("require", "import") and \
                parts[0] != toks[i].text:
            self._module(parts[0])  # require('m') / import('m'): chain() named the module
        if self.lang == "applescript" and self._applescript(i):
            return
        if name in _MODULE_STATEMENTS and j < len(toks):
            end = self._statement_end(j)
            arg = toks[j:end]
            if arg and arg[0].text == "(":
                arg = arg[1:self.close_of(arg, 0)]
            if arg and arg[0].kind in ("str", "name"):
                mod = self.fold(arg) if arg[0].kind == "str" else Value(
                    "::".join(p for p in self.chain(arg, 0)[0]))
                if mod.known:
                    self._module(mod.text if self.lang != "node" else module_name(mod.text))
                elif arg[0].kind == "str" or mod.obfuscated:
                    self._evaluate(mod, literal=False)
        actions = self.table.get(name) or self.tails.get(name.rsplit(".", 1)[-1])
        if actions is None:
            return
        if any(a[0] == "eval" for a in actions) and self.lang == "node" and \
                (j >= len(toks) or toks[j].text != "("):
            self._evaluate(UNKNOWN_VALUE, literal=False)  # eval passed as a function
            return
        if j < len(toks) and toks[j].text == "(":
            close = self.close_of(toks, j)
            arg_toks = toks[j + 1:close]
        elif self.lang in PARENLESS and j < len(toks) and (
                toks[j].kind in ("str", "name", "cmd", "words", "num") or
                (toks[j].text == "{" and self.lang == "lua")):
            arg_toks = toks[j:self._statement_end(j, commas=False)]
        else:
            return
        if arg_toks and arg_toks[0].text == "{" and name in ("eval", "do"):
            return  # a block, scanned as code in place
        pos, named = self.args(arg_toks)
        for action in actions:
            self._act(action, pos, named)

    # ---- actions -------------------------------------------------------------------------

    @staticmethod
    def _select(where: str, pos: list[list[Token]], named: dict[str, list[Token]]) \
            -> list[list[Token]]:
        index, _, key = where.partition("|")
        if key and key in named:
            return [named[key]]
        if index == "*":
            return pos
        if index.endswith("*"):
            return pos[int(index[:-1]):]
        if index == "-1":
            return pos[-1:]
        if index and index.isdigit() and int(index) < len(pos):
            return [pos[int(index)]]
        return []

    def _values(self, slices: list[list[Token]]) -> list[Value]:
        out: list[Value] = []
        for s in slices:
            words = self.words(s)
            out.extend(words if words is not None else [self.fold(s)])
        return out

    def _act(self, action: Action, pos: list[list[Token]], named: dict[str, list[Token]]) -> None:
        kind, where, style = action
        out = self.out
        sel = self._select(where, pos, named)
        if kind == "run":
            self._run(style, pos[int(where):] if where.isdigit() else sel, named)
        elif kind == "cmd":
            for s in sel or [[]]:
                words = self.words(s) if s else None
                if words is not None:
                    out.argv(list(words))
                else:
                    out.command(self.fold(s) if s else None)
        elif kind in ("read", "write", "delete", "chmod"):
            if not sel:
                out.unknown = True
            for v in self._values(sel):
                self._path(kind, v)
        elif kind in ("copy", "move"):
            src, dst = self._select("0", pos, named), self._select("1", pos, named)
            for v in self._values(src):
                self._path("read", v)
                if kind == "move":
                    self._path("delete", v)
            for v in self._values(dst) or [UNKNOWN_VALUE]:
                self._path("write", v)
        elif kind == "open":
            self._open(style, pos, named)
        elif kind in ("url", "urlwrite"):
            for v in self._values(sel[:1]):
                out.url(v)
            if kind == "urlwrite":
                dest = self._select("1|destfile", pos, named) or self._select("1|file", pos, named)
                for v in self._values(dest) or [UNKNOWN_VALUE]:
                    self._path("write", v)
        elif kind == "eval":
            for s in sel or [[]]:
                if s and s[0].kind == "name" and s[0].text == "parse":
                    continue  # eval(parse(text = …)): the parse call carries the code
                self._evaluate(self.fold(s) if s else UNKNOWN_VALUE, literal=True)
        elif kind == "native":
            out.flag(F.NATIVE)
        elif kind == "socket":
            out.flag(F.SOCKET)
            out.fetches = True
            if sel and sel[0] and sel[0][0].kind == "str":
                v = self.fold(sel[0])
                if v.known:
                    out.url(v)
        elif kind == "fetch":
            out.fetches = True

    def _path(self, kind: str, v: Value) -> None:
        if v.known and kind == "read" and _URL_SCHEME.match(v.text):
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

    def _object_key(self, toks: list[Token], key: str) -> list[Token] | None:
        if not toks or toks[0].text != "{":
            return None
        for part in self.split(toks[1:self.close_of(toks, 0)], (",",)):
            if len(part) > 2 and part[0].text == key and part[1].text == ":":
                return part[2:]
        return None

    def _run(self, style: str, sel: list[list[Token]], named: dict[str, list[Token]]) -> None:
        out = self.out
        if not sel:
            out.unknown = True
            return
        if style == "deno":
            args = self._object_key(sel[1], "args") if len(sel) > 1 else None
            words = self.words(args) if args else []
            out.argv([self.fold(sel[0]), *(words or [UNKNOWN_VALUE] if args else [])])
            return
        if style == "denorun":
            cmd = self._object_key(sel[0], "cmd")
            words = self.words(cmd) if cmd else None
            out.argv(list(words) if words is not None else [UNKNOWN_VALUE])
            return
        if style == "r2":
            args = named.get("args") or (sel[1] if len(sel) > 1 else None)
            words = self._values([args]) if args else []
            out.command(Value(" ".join(v.text for v in [self.fold(sel[0]), *words]),
                              any(v.obfuscated for v in words)))
            return
        words = self.words(sel[0])
        if words is not None:
            out.argv(list(words))
            return
        rest = [s for s in sel[1:] if s and s[0].text != "{"]
        if sel[0] and sel[0][0].text == "{" and rest:  # an environment hash first (Ruby)
            sel, rest = rest, rest[1:]
        if rest:
            second = self.words(rest[0])
            if second is not None:
                out.argv([self.fold(sel[0]), *second])
                return
            out.argv([self.fold(s) for s in [sel[0], *rest]])
            return
        out.command(self.fold(sel[0]))

    def _open(self, style: str, pos: list[list[Token]], named: dict[str, list[Token]]) -> None:
        out = self.out
        if style == "perl":
            args = pos[1:]
            if len(args) >= 2:
                mode = self.fold(args[0]).text.strip()
                if "|" in mode:
                    self._run("", args[1:], named)
                elif mode.startswith("<") or mode == "":
                    self._path("read", self.fold(args[1]))
                else:
                    self._path("write", self.fold(args[1]))
                return
            spec = self.fold(args[0]) if args else UNKNOWN_VALUE
            text = spec.text.strip()
            if text.startswith("|") or text.endswith("|"):
                out.command(Value(text.strip("|"), spec.obfuscated))
            elif text.startswith((">", "+")):
                self._path("write", Value(text.lstrip("+<>").strip(), spec.obfuscated))
            else:
                self._path("read", Value(text.lstrip("<").strip(), spec.obfuscated))
            return
        target = self.fold(pos[0]) if pos else UNKNOWN_VALUE
        if style == "ruby" and target.known and target.text.startswith("|"):
            out.command(Value(target.text[1:], target.obfuscated))
            return
        mode_toks = named.get("mode") or named.get("open") or (pos[1] if len(pos) > 1 else None)
        if style == "deno":
            text = " ".join(t.text for t in mode_toks) if mode_toks else ""
            writes = any(w in text for w in ("write", "append", "create", "truncate"))
            self._path("write" if writes else "read", target)
            return
        mode = self.fold(mode_toks).text if mode_toks else "r"
        if style == "r" and not mode_toks:
            mode = "r"
        if mode in ("r", "rb", "rt", "rs", "") or (mode.startswith("r") and "+" not in mode):
            self._path("read", target)
        else:
            if "+" in mode:
                self._path("read", target)
            self._path("write", target)

    # ---- statement forms of awk and AppleScript -------------------------------------------

    def _statement_start(self, i: int) -> int:
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
            self._evaluate(self._as_expr(i + 2), literal=False)
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
        values = []
        for term in self.split(self.toks[k:end], ("&",)):
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


def scan(lang: str, code: str, out: Collector, depth: int, budget: list[int],
         analyze: Analyze) -> None:
    """Scan code of lang into out."""
    Scanner(lang, code, out, depth, budget, analyze).run()
