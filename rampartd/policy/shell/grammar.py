"""The shell grammar: a recursive-descent parser over one command string.

Handles lists (`;`, `&`, newlines, `&&`, `||`), pipelines, subshells and `{ }` groups, quoting
(single, double, `$'…'`), escapes, `$(…)`, backticks, `<(…)`, `${…}`, variables set earlier on
the line, heredocs and here-strings, comments and the reserved words of `if`/`while`/`for`.
Each simple command goes to Emitter.emit (rampartd.policy.shell.command).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from rampartd.policy.shell import launchers as L
from rampartd.policy.shell.command import Emitter, Out, ShellSyntaxError, Stage, Word, has_glob
from rampartd.policy.shell.expand import Expander

MAX_DEPTH = 12

_PLAIN = re.compile(r"[^ \t\n'\"\\$`;&|()<>]+")
_FD_REDIRECT = re.compile(r"[0-9]+(?=[<>])")
_REDIRECT_OPS = ("&>>", "<<<", "<<-", "<<", "<>", "<&", ">>", ">&", ">|", "&>", "<", ">")
_TIMED = frozenset({"time", "-p"})  # `time ( … )` times a subshell
_FUNCTION = re.compile(r"\(\s*\)\s*")  # the `()` of `NAME() BODY` and the blanks after it
_MOVES_ARGS = re.compile(r"\b(shift|set)\b")  # commands that change `$1`, `$@`…


@dataclass(slots=True)
class Heredoc:
    """A heredoc whose body comes after the current line."""

    delim: str
    strip_tabs: bool
    quoted: bool
    stage: Stage


class Parser(Expander, Emitter):
    """Recursive-descent parser over one string; nested scripts get their own parser."""

    def __init__(self, s: str, out: Out, depth: int, prefix: tuple[str, ...],
                 variables: dict[str, str | None],
                 positional: tuple[str, ...] | None = None) -> None:
        if depth > MAX_DEPTH:
            raise ShellSyntaxError("commands are nested too deeply")
        out.charge(len(s))
        self.s = s
        self.i = 0
        self.n = len(s)
        self.out = out
        self.depth = depth
        self.prefix = prefix
        self.vars = variables
        self.positional = positional  # `$1`, `$@`… when known (a function's call)
        self.heredocs: list[Heredoc] = []

    # ---- structure ------------------------------------------------------------------------

    def script(self) -> str:
        text = self.parse_list(None)
        if self.depth == 0:
            # A function never called by name may still run (`trap f EXIT`, `export -f f`):
            # its body counts as run at the line's end.
            while pending := [n for n, b in self.out.functions.items() if b not in self.out.called]:
                for name in pending:  # (a body may define more functions)
                    self.call(name)
        return text

    def call(self, name: str, args: list[Word] | None = None) -> None:
        """A function's body run here, its `$1`, `$@`… the arguments when they are known and
        the body does not move them (`shift`, `set`). Recursion is reported: it may never end."""
        if name in self.out.calling:
            self.out.problems.append(f"the function {name} calls itself (it may never end)")
            return
        body = self.out.functions[name]
        known = args is not None and not any(w.dynamic or w.glob or w.split for w in args) \
            and not _MOVES_ARGS.search(body)
        self.out.called.add(body)
        self.out.calling.add(name)
        Parser(body, self.out, self.depth + 1, self.prefix, dict(self.vars),
               tuple(w.text for w in args or ()) if known else None).script()
        self.out.calling.discard(name)

    def child(self, text: str) -> Parser:
        """A parser over another text that shares this one's output."""
        return Parser(text, self.out, self.depth + 1, (), dict(self.vars), self.positional)

    def sub(self, text: str, prefix: tuple[str, ...] | None = None) -> str:
        child = Parser(text, self.out, self.depth + 1, self.prefix if prefix is None else prefix,
                       dict(self.vars), self.positional)
        return child.script()

    def blanks(self) -> None:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c in " \t\r":
                self.i += 1
            elif c == "\\" and self.i + 1 < n and s[self.i + 1] == "\n":
                self.i += 2
            else:
                return

    def blanks_and_newlines(self) -> None:
        while True:
            self.blanks()
            if self.i < self.n and self.s[self.i] == "\n":
                self.newline()
            elif self.i < self.n and self.s[self.i] == "#":
                self.comment()
            else:
                return

    def comment(self) -> None:
        j = self.s.find("\n", self.i)
        self.i = self.n if j < 0 else j

    def newline(self) -> None:
        self.i += 1
        pending, self.heredocs = self.heredocs, []
        for doc in pending:
            lines: list[str] = []
            while self.i < self.n:
                j = self.s.find("\n", self.i)
                line = self.s[self.i:] if j < 0 else self.s[self.i:j]
                self.i = self.n if j < 0 else j + 1
                if doc.strip_tabs:
                    line = line.lstrip("\t")
                if line == doc.delim:
                    break
                lines.append(line)
            body = "\n".join(lines)
            self.feed(doc.stage, body)
            if doc.stage.shell_stdin:
                self.sub(body, doc.stage.prefix)
            elif not doc.quoted:
                self.scan_expansions(body)

    def parse_list(self, end: str | None, *, clause: bool = False) -> str:
        """Commands up to end (consumed); a case clause's up to `;;`, `;&`, `;;&` or `esac`."""
        parts: list[str] = []
        while True:
            self.blanks_and_newlines()
            if self.i >= self.n:
                if end is not None or clause:
                    raise ShellSyntaxError(f"missing '{end or 'esac'}'")
                break
            c = self.s[self.i]
            if end is not None and c == end:
                self.i += 1
                break
            if clause and (self.at_word("esac") or self.clause_end()):
                break
            if c in ";&|)":
                raise ShellSyntaxError(f"unexpected '{c}'")
            parts.append(self.and_or())
            self.blanks()
            if self.i >= self.n:
                continue
            c = self.s[self.i]
            if c == ";":
                if clause and self.clause_end():
                    break
                if self.s.startswith(";;", self.i):
                    raise ShellSyntaxError("';;' outside a case statement")
                self.i += 1
                parts.append(";")
            elif c == "&":
                self.i += 1
                parts.append("&")
            elif c == "\n":
                self.newline()
                parts.append(";")
            elif c == "#":
                self.comment()
            elif not (end is not None and c == end):
                raise ShellSyntaxError(f"unexpected '{c}'")
        return " ".join(parts)

    def and_or(self) -> str:
        parts = [self.pipeline()]
        while True:
            self.blanks()
            op = self.s[self.i:self.i + 2]
            if op not in ("&&", "||"):
                return " ".join(parts)
            self.i += 2
            self.blanks_and_newlines()
            parts += [op, self.pipeline()]

    def pipeline(self) -> str:
        stages: list[Stage] = []
        while True:
            stages.append(self.command())
            self.blanks()
            if self.i < self.n and self.s[self.i] == "|" and not self.s.startswith("||", self.i):
                self.i += 1
                if self.i < self.n and self.s[self.i] == "&":
                    self.i += 1
                self.blanks_and_newlines()
                continue
            break
        return self.end_pipeline(stages)

    def end_pipeline(self, stages: list[Stage]) -> str:
        """Record a multi-stage pipeline and feed `echo … | sh` payloads to the shell."""
        texts = [st.text for st in stages if st.text]
        if len(stages) > 1:
            self.out.pipelines.append(" | ".join(texts))
            for before, after in itertools.pairwise(stages):
                self.feed(after, before.echo, piped=True)
                if after.shell_stdin and before.echo is not None:
                    self.sub(before.echo, after.prefix)
        return " | ".join(texts)

    def feed(self, stage: Stage, text: str | None, *, piped: bool = False) -> None:
        """Note on a stage's command what its stdin is (for the effects of `… | python3 -`)."""
        if stage.comp < 0:
            return
        comp = self.out.components[stage.comp]
        self.out.components[stage.comp] = comp._replace(piped=piped or comp.piped, stdin=text)

    def command(self) -> Stage:
        self.blanks()
        if self.i < self.n and self.s[self.i] == "(":
            return self.subshell()
        if self.i >= self.n:
            raise ShellSyntaxError("expected a command at the end")
        if self.s[self.i] in ";&|)":
            raise ShellSyntaxError(f"expected a command before '{self.s[self.i]}'")
        words: list[Word] = []
        redirs: list[str] = []
        stage = Stage()
        herestring: list[str] = []
        heredocs: list[Heredoc] = []
        while True:
            self.blanks()
            if self.i >= self.n:
                break
            c = self.s[self.i]
            nxt = self.s[self.i + 1] if self.i + 1 < self.n else ""
            if c in "<>" and nxt == "(":
                words.append(self.word())
            elif c in "<>" or (c == "&" and nxt == ">"):
                self.redirect("", redirs, herestring, heredocs, stage)
            elif c.isdigit() and (m := _FD_REDIRECT.match(self.s, self.i)):
                self.i = m.end()
                self.redirect(m.group(), redirs, herestring, heredocs, stage)
            elif c in "\n;&|)":
                break
            elif c == "(":
                m = _FUNCTION.match(self.s, self.i)
                if m and len(words) == 1 and not redirs and L.ASSIGNMENT.match(words[0].raw + "="):
                    self.i = m.end()
                    return self.function(words[0].text)
                if redirs or any(w.text not in _TIMED for w in words):
                    raise ShellSyntaxError(
                        "'(' after a word (an array or a function's odd name) is not supported")
                return self.subshell()  # after `then`, `do`, `!` (skipped) or `time`
            elif c == "#":
                self.comment()
            else:
                w = self.word()
                if not words and not w.quoted and not w.dynamic:
                    if w.text in L.RESERVED_SKIP:
                        continue
                    if w.text in L.RESERVED_LOOP:
                        self.skip_loop_header()
                        return stage
                    if w.text == "case":
                        return self.case()
                    if w.text == "function":
                        self.blanks()
                        name = self.word().text  # then `()` if written, then the body
                        m = _FUNCTION.match(self.s, self.i)
                        self.i = m.end() if m else self.i
                        return self.function(name)
                    if w.text in L.RESERVED_UNSUPPORTED:
                        raise ShellSyntaxError(f"'{w.text}' is not supported")
                words.append(w)
        self.emit(words, redirs, stage, self.prefix)
        if words and words[0].text in self.out.functions:
            self.call(words[0].text, words[1:])  # its body runs here, from where `cd` went
        if herestring:
            self.feed(stage, herestring[-1])
        if herestring and stage.shell_stdin:
            self.sub(herestring[-1], stage.prefix)
        self.heredocs.extend(heredocs)
        return stage

    def case(self) -> Stage:
        """`case WORD in PATTERN) LIST ;; … esac`: every clause's commands count as run."""
        self.blanks()
        self.word()  # the subject (its substitutions are parsed as it is read)
        self.blanks_and_newlines()
        if not self.at_word("in"):
            raise ShellSyntaxError("expected 'in' after 'case WORD'")
        self.i += 2
        clauses: list[str] = []
        while True:
            self.blanks_and_newlines()
            while self.i < self.n and self.s[self.i] == "#":
                self.comment()
                self.blanks_and_newlines()
            if self.at_word("esac"):
                self.i += 4
                break
            if self.i >= self.n:
                raise ShellSyntaxError("missing 'esac'")
            if self.s[self.i] == "(":
                self.i += 1
            while True:  # PATTERN [| PATTERN]… )
                self.blanks()
                start = self.i
                self.word()
                self.blanks()
                c = self.s[self.i] if self.i < self.n else ""
                self.i += 1
                if self.i - 1 == start or c not in "|)":
                    raise ShellSyntaxError("unexpected token in a case pattern")
                if c == ")":
                    break
            clauses.append(self.parse_list(None, clause=True))
            if self.clause_end():
                self.i += next(len(t) for t in (";;&", ";;", ";&") if self.s.startswith(t, self.i))
        return self.compound_tail(Stage(text=f"case {' ;; '.join(clauses)} esac"))

    def at_word(self, word: str) -> bool:
        """True if the reserved word starts here (followed by a blank or an operator)."""
        end = self.i + len(word)
        return self.s.startswith(word, self.i) and (end >= self.n or self.s[end] in " \t\n;&|)<>")

    def clause_end(self) -> bool:
        return self.s.startswith((";;", ";&"), self.i)

    def function(self, name: str) -> Stage:
        """`NAME() BODY`: the body is read (for its end) but counts as run where NAME is
        called, from where the line has moved to by then, or else at the line's end."""
        self.blanks_and_newlines()
        probe = Parser(self.s, Out(), self.depth + 1, (), dict(self.vars))  # output unused
        probe.i = start = self.i
        brace = self.at_word("{")
        if brace:
            probe.i += 1
            probe.parse_list("}")
            self.out.functions[name] = self.s[start + 1:probe.i - 1]
        else:
            probe.command()
            self.out.functions[name] = self.s[start:probe.i]
        self.i = probe.i
        return self.compound_tail(Stage(text=f"{name}()")) if brace else Stage(text=f"{name}()")

    def subshell(self) -> Stage:
        """`( LIST )` and the redirections after it."""
        self.i += 1
        return self.compound_tail(Stage(text=f"( {self.parse_list(')')} )"))

    def compound_tail(self, stage: Stage) -> Stage:
        """The redirections after a compound command (`( … ) > out`, `esac > out`): their
        files count as for `{ LIST; } > out`."""
        redirs = self.command_tail()
        if redirs:
            self.assign([], redirs, stage)
        return stage

    def command_tail(self) -> list[str]:
        """Redirections after a subshell: `( … ) > out`."""
        sink: list[str] = []
        while True:
            self.blanks()
            if self.i < self.n and (self.s[self.i] in "<>" or self.s[self.i].isdigit()):
                m = _FD_REDIRECT.match(self.s, self.i)
                if self.s[self.i].isdigit() and not m:
                    raise ShellSyntaxError("unexpected word after ')'")
                fd = m.group() if m else ""
                self.i += len(fd)
                self.redirect(fd, sink, [], [], Stage())
            else:
                return sink

    def skip_loop_header(self) -> None:
        """`for NAME in WORDS` up to the separator; the words may hold substitutions. NAME
        then stands for all the words at once (what the loop body does to each of them)."""
        words: list[Word] = []
        while True:
            self.blanks()
            if self.i >= self.n or self.s[self.i] in "\n;&|)":
                break
            start = self.i
            words.append(self.word())
            if self.i == start:  # `<`, `>` or `(` here: bash refuses it too, and so do we
                raise ShellSyntaxError("unexpected token in a for-loop header")
        if len(words) >= 3 and words[1].text == "in" and L.ASSIGNMENT.match(words[0].text + "="):
            values = words[2:]
            known = not any(w.dynamic for w in values)
            self.vars[words[0].text] = " ".join(w.text for w in values) if known else None

    def redirect(self, fd: str, redirs: list[str], herestring: list[str],
                 heredocs: list[Heredoc], stage: Stage) -> None:
        op = next(o for o in _REDIRECT_OPS if self.s.startswith(o, self.i))
        self.i += len(op)
        self.blanks()
        at = self.s[self.i:self.i + 2]
        if not at or (at[0] in "\n;&|()<>" and at not in ("<(", ">(")):
            raise ShellSyntaxError(f"'{op}' without a target")
        target = self.word()
        if op in ("<<", "<<-"):
            heredocs.append(Heredoc(target.text, op == "<<-", target.quoted, stage))
            redirs.append(f"{fd}{op} {target.text}")
            return
        if op == "<<<":
            herestring.append(target.text)
        redirs.append(f"{fd}{op} {target.text}")

    # ---- words ----------------------------------------------------------------------------

    def word(self) -> Word:
        s, n = self.s, self.n
        start = self.i
        buf: list[str] = []
        w = Word("")
        while self.i < n:
            m = _PLAIN.match(s, self.i)
            if m:
                chunk = m.group()
                buf.append(chunk)
                if not w.glob and has_glob(chunk):
                    w.glob = True
                self.i = m.end()
                continue
            c = s[self.i]
            if c in "<>" and self.i + 1 < n and s[self.i + 1] == "(":
                self.i += 2
                buf.append(f"{c}( {self.parse_list(')')} )")
                w.dynamic = True
            elif c in " \t\n;&|()<>":
                break
            elif c == "'":
                j = s.find("'", self.i + 1)
                if j < 0:
                    raise ShellSyntaxError("unterminated single quote")
                buf.append(s[self.i + 1:j])
                w.quoted = True
                self.i = j + 1
            elif c == '"':
                self.i += 1
                w.quoted = True
                w.dynamic |= self.dquote(buf, w)
            elif c == "\\":
                if self.i + 1 < n and s[self.i + 1] != "\n":
                    buf.append(s[self.i + 1])
                    w.quoted = True
                self.i = min(self.i + 2, n)
            elif c == "$":
                w.dynamic |= self.dollar(buf, False, w)
            else:  # backtick
                self.backtick(buf)
                w.dynamic = True
        w.text = "".join(buf)
        w.raw = s[start:self.i]
        return w
