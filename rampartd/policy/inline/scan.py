"""The call-pattern scan of non-Python code (and of Python that does not parse): every call
whose name is in the language's table becomes commands, file effects, URLs or risky reasons.
"""

from __future__ import annotations

from collections.abc import Callable

from rampartd.policy.inline import findings as F
from rampartd.policy.inline.findings import UNKNOWN_VALUE, Collector, Value
from rampartd.policy.inline.fold import module_name
from rampartd.policy.inline.lexer import Token, ambiguous
from rampartd.policy.inline.statements import URL_SCHEME as _URL_SCHEME
from rampartd.policy.inline.statements import Statements
from rampartd.policy.inline.tables import (
    FETCH_MODULES,
    NATIVE_MODULES,
    PARENLESS,
    SOCKET_MODULES,
    TABLES,
    Action,
)

Analyze = Callable[[str, str, Collector, int], None]

_DECLARE = frozenset({"const", "let", "var", "my", "our", "local", "state"})
_MODULE_STATEMENTS = {
    "node": frozenset({"require", "import"}), "perl": frozenset({"use", "require", "no"}),
    "ruby": frozenset({"require", "load"}), "lua": frozenset({"require"}),
    "r": frozenset({"library", "require", "requireNamespace", "loadNamespace"}),
    "python": frozenset({"import", "__import__"}), "php": frozenset(),
}


# Objects whose members run code or touch files: a member chosen at run time is unknown.
_DANGEROUS_ROOTS = frozenset({"child_process", "fs", "os", "process", "global", "globalThis",
                              "window", "Deno", "Bun", "io", "subprocess", "shutil", "vm"})


class Scanner(Statements):
    """One pass over one language's tokens."""

    def __init__(self, lang: str, code: str, out: Collector, depth: int, budget: list[int],
                 analyze: Analyze, *, alternate: bool = False) -> None:
        super().__init__(lang, code, out, depth, budget, analyze,
                         alternate=alternate)
        self.table, self.tails = TABLES.get(lang, TABLES["python"])

    # ---- assignments and imports --------------------------------------------------------

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
                    self._concatenation_literal(i)
                    continue
                v = self.pieces(t)
                if v.known:
                    self._literal(v.text)
            elif t.kind == "words":
                for _, w in t.pieces:
                    self._literal(w)
            elif t.kind == "name":
                prev = toks[i - 1] if i else None
                if prev is not None and prev.kind == "op" and prev.text in self.seps:
                    if i > 1 and toks[i - 2].text in (")", "]"):
                        self._name(i, on_result=True)  # f(…).execSync(…): by its name alone
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

    def _concatenation_literal(self, i: int) -> None:
        """A string built by concatenating literals (`'https://' + 'pastebin.com'`) counts as
        one literal; its pieces do not."""
        toks = self.toks
        prev = toks[i - 1] if i else None
        if prev is not None and ((prev.kind == "op" and prev.text in self.concat_ops) or (
                self.lang == "awk" and (prev.kind in ("str", "name", "num") or
                                        prev.text in (")", "]")))):
            return  # not the first piece
        v = self.fold(toks[i:self._statement_end(i)])
        if v.known:
            self._literal(v.text)

    def _literal(self, text: str) -> None:
        if self.lang == "awk" and text.startswith("/inet"):
            parts = text.split("/")
            self.out.flag(F.SOCKET)
            self.out.fetches = True
            if len(parts) >= 6:
                self.out.url(Value(f"{parts[2]}://{parts[4]}:{parts[5]}"))
            return
        self.out.literal(text)

    def _name(self, i: int, *, on_result: bool = False) -> None:
        toks = self.toks
        parts, j = self.chain(toks, i)
        name = self.canon(parts)
        if on_result:
            actions = self.tails.get(parts[-1]) if len(parts) == 1 else None
            if actions is not None and j < len(toks) and toks[j].text == "(":
                pos, named = self.args(toks[j + 1:self.close_of(toks, j)])
                for action in actions:
                    self._act(action, pos, named)
            return
        if self.lang == "ruby" and name == "method" and self._ruby_method_call(j):
            return
        if self.lang == "node" and name in ("setTimeout", "setInterval") and \
                j + 1 < len(toks) and toks[j].text == "(" and toks[j + 1].kind == "str":
            code = self.args(toks[j + 1:self.close_of(toks, j)])[0]
            self._evaluate(self.fold(code[0]), literal=True)  # a string is evaluated
            return
        if self.lang in ("node", "lua") and toks[i].text in ("require", "import") and \
                parts[0] != toks[i].text:
            self._module(parts[0])  # require('m') / import('m'): chain() named the module
        if self.lang == "applescript" and self._applescript(i):
            return
        if name in _MODULE_STATEMENTS.get(self.lang, ()) and j < len(toks) and not (
                self.lang == "node" and name == "import" and toks[j].text != "("):
            end = self._statement_end(j)
            arg = toks[j:end]
            if arg and arg[0].text == "(":
                arg = arg[1:self.close_of(arg, 0)]
            if arg and arg[0].kind in ("str", "name"):
                bare = arg[0].kind == "name" and (self.lang in ("perl", "r", "python") and
                                                  not arg[0].text.startswith("$"))
                mod = Value("::".join(self.chain(arg, 0)[0])) if bare else self.fold(arg)
                if not bare and mod.known and not self._written(arg):
                    mod = Value(mod.text, obfuscated=True)  # a module name put together
                if mod.known and mod.text.startswith((".", "/", "~")) and \
                        self.lang in ("node", "lua", "ruby", "perl"):
                    self._path("read", mod)  # a module loaded from a file runs that file
                elif mod.known:
                    if mod.obfuscated:
                        self.out.flag(F.BUILDS_NAME)
                    self._module(mod.text if self.lang != "node" else module_name(mod.text))
                else:
                    self._evaluate(mod, literal=False)  # a module named at run time
        if j < len(toks) and toks[j].text == "[" and self.lang in ("node", "lua", "python"):
            self._computed_member(name, j)
            return
        actions = self.table.get(name) or self.tails.get(name.rsplit(".", 1)[-1])
        if actions is None and len(parts) == 1 and parts[0] in self.vars and j < len(toks) and \
                toks[j].text == "(" and self.lang in ("php", "node", "lua", "python"):
            fn = self.var(parts[0])  # $f = 'system'; $f('id')
            if not self._written(toks[i:i + 1]):
                fn = Value(fn.text, obfuscated=True)  # the name was built, not written
            if fn.known and fn.text in self.table:
                close = self.close_of(toks, j)
                pos, named = self.args(toks[j + 1:close])
                self._dispatch_named(fn, pos, named)
                return
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
                (toks[j].text == "{" and (self.lang == "lua" or name in ("system", "exec")))):
            arg_toks = toks[j:self._statement_end(j, commas=False)]
        else:
            return
        if arg_toks and arg_toks[0].text == "{" and name in ("eval", "do"):
            return  # a block, scanned as code in place
        pos, named = self.args(arg_toks)
        for action in actions:
            self._act(action, pos, named)

    def _written(self, toks: list[Token]) -> bool:
        """True if toks are one string literal, or a variable assigned one."""
        if len(toks) == 1 and toks[0].kind == "str":
            return True
        if len(toks) == 1 and toks[0].kind == "name":
            assigned = self.vars.get(toks[0].text) or []
            return len(assigned) == 1 and assigned[0].kind == "str"
        return False

    def _ruby_method_call(self, j: int) -> bool:
        """`method(:system).call('id')`: the named method, called."""
        toks = self.toks
        if j + 2 >= len(toks) or toks[j].text != "(":
            return False
        close = self.close_of(toks, j)
        if close + 3 >= len(toks) or toks[close + 2].text != "call" or \
                toks[close + 3].text != "(":
            return False
        pos, named = self.args(toks[close + 4:self.close_of(toks, close + 3)])
        self._call_named("", [toks[j + 1:close], *pos], named)
        return True

    def _computed_member(self, name: str, j: int) -> None:
        """`cp['exec' + 'Sync'](…)`, `global[x](…)`: a member named at run time."""
        toks = self.toks
        close = self.close_of(toks, j)
        member = self.fold(toks[j + 1:close])
        full = f"{name}.{member.text}"
        called = close + 1 < len(toks) and toks[close + 1].text == "("
        if member.known:
            actions = self.table.get(self.canon(full.split("."))) or \
                self.tails.get(member.text)
            if actions is not None:
                self.out.flag(F.BUILDS_NAME)
                if called:
                    end = self.close_of(toks, close + 1)
                    pos, named = self.args(toks[close + 2:end])
                    for action in actions:
                        self._act(action, pos, named)
            return
        if called and name.split(".")[0] in _DANGEROUS_ROOTS:
            self.out.flag(F.BUILDS_NAME)
            self.out.flag(F.EVALUATES)
            self.out.unknown = True

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
        elif kind == "source":  # code read from a file (or a URL) and run
            for v in self._values(sel) or [UNKNOWN_VALUE]:
                if v.known and _URL_SCHEME.match(v.text):
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

def scan(lang: str, code: str, out: Collector, depth: int, budget: list[int],
         analyze: Analyze) -> None:
    """Scan code of lang into out (both readings where a `/` is ambiguous)."""
    Scanner(lang, code, out, depth, budget, analyze).run()
    if ambiguous(code, lang):
        Scanner(lang, code, out, depth, budget, analyze, alternate=True).run()
