"""The call-pattern scan of non-Python code (and of Python that does not parse): every call
whose name is in the language's table becomes commands, file effects, URLs or risky reasons.
"""

from __future__ import annotations

from rampartd.policy.inline import findings as F
from rampartd.policy.inline.actions import Actions
from rampartd.policy.inline.findings import UNKNOWN_VALUE, Analyze, Collector, Value
from rampartd.policy.inline.fold import module_name
from rampartd.policy.inline.lexer import Token, ambiguous
from rampartd.policy.inline.tables import (
    FETCH_MODULES,
    NATIVE_MODULES,
    PARENLESS,
    SOCKET_MODULES,
)

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


class Scanner(Actions):
    """One pass over one language's tokens."""

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

def scan(lang: str, code: str, out: Collector, depth: int, budget: list[int],
         analyze: Analyze) -> None:
    """Scan code of lang into out (both readings where a `/` is ambiguous)."""
    Scanner(lang, code, out, depth, budget, analyze).run()
    if ambiguous(code, lang):
        Scanner(lang, code, out, depth, budget, analyze, alternate=True).run()
