"""What a call in the scanned code does, from its language's table: the actions (run, read,
write, open, url, eval, call…) applied to the call's folded arguments.
"""

from __future__ import annotations

from rampartd.policy.inline import findings as F
from rampartd.policy.inline.findings import UNKNOWN_VALUE, Analyze, Collector, Value
from rampartd.policy.inline.lexer import Token
from rampartd.policy.inline.statements import URL_SCHEME, Statements
from rampartd.policy.inline.tables import TABLES, Action


class Actions(Statements):
    """The table of one language's calls, and what each of their actions does."""

    def __init__(self, lang: str, code: str, out: Collector, depth: int, budget: list[int],
                 analyze: Analyze, *, alternate: bool = False) -> None:
        super().__init__(lang, code, out, depth, budget, analyze, alternate=alternate)
        self.table, self.tails = TABLES.get(lang, TABLES["python"])

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
        elif kind == "source":  # code read from a file (or a URL) and run
            for v in self._values(sel) or [UNKNOWN_VALUE]:
                if v.known and URL_SCHEME.match(v.text):
                    out.url(v)
                    out.executes_computed = True
                else:
                    self._path("read", v)
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
        elif kind == "call":
            self._call_named(style, pos, named)

    def _call_named(self, style: str, pos: list[list[Token]],
                    named: dict[str, list[Token]]) -> None:
        """A function called through its name as a string or symbol."""
        if not pos:
            return
        first = pos[0]
        if len(first) == 1 and first[0].kind == "name" and first[0].text.startswith(":"):
            fn = Value(first[0].text[1:])  # a Ruby symbol
        else:
            fn = self.fold(first)
        self._dispatch_named(fn, pos[1:], named, style)

    def _dispatch_named(self, fn: Value, rest: list[list[Token]],
                        named: dict[str, list[Token]], style: str = "") -> None:
        out = self.out
        if fn.obfuscated:
            out.flag(F.BUILDS_NAME)
        if not fn.known:
            out.flag(F.EVALUATES)
            out.unknown = True
            return
        actions = self.table.get(fn.text) or self.tails.get(fn.text.rsplit(".", 1)[-1])
        if actions is None:
            return
        if style in ("array", "each") and rest:
            items = self.elements(rest[0])
            if items is None:
                out.unknown = True
                return
            groups = [[item] for item in items] if style == "each" else [items]
        else:
            groups = [rest]
        for group in groups:
            for action in actions:
                self._act(action, group, named)

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
        if self.lang == "perl" and sel[0] and sel[0][0].text == "{":
            close = self.close_of(sel[0], 0)  # `system { PROGRAM } LIST`: LIST is the argv
            sel = [sel[0][close + 1:], *sel[1:]]
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
