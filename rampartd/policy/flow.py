"""Where data goes within one command line: fetched content that ends up run as code, and
local data that ends up in a request. Pure, no I/O.

The parts of a line are linked by what carries data between them: a pipe (`a | b`), a
process substitution (`b <(a)`, `a > >(b)`, `tee >(b)`), a command substitution (`b "$(a)"`,
`b <<< "$(a)"`). What a part's output carries reaches every part it is linked to, through
any number of parts in between (`curl … | tee x | base64 -d | sh`).

- **Fetched code**: content from a part that fetches from a host other than this machine (a
  fetcher, a socket, a DNS lookup, a command run over ssh, inline code that fetches)
  reaching a part that runs what arrives - a shell or interpreter reading its program from
  stdin or from a process substitution, `source /dev/stdin`, `eval`/`sh -c` of a command
  substitution, `make -f -`, `awk` calling `system`, inline code that `exec`s its stdin, a
  shell or interpreter started by `xargs` - marks that part's `code` effect (or a new one)
  with flow "fetched".
- **Upload**: a part that sends a named file (`curl -T f`, `-d @f`, `-F k=@f`, `wget
  --post-file f`, `http … @f`, `nc host port < f`), or sends its stdin (`curl -d @-`/`-T -`,
  `http`/`xh`, `nc`/`ncat`/`socat`/`telnet`/`openssl`) fed with local data, or carries local
  data in a substitution (`curl -d "$(cat f)"`, `dig $(whoami).host`), marks its network
  effects that leave this machine with flow "upload". Local data is what a part reads from
  files and the output of a program that is not fed on stdin (`env`, `git diff`, `gpg
  --export-secret-keys`), except plain computation (`date`, `echo` of literal words); a
  filter fed on stdin (`base64`, `gzip`, `tee`) carries what it is given.

Files written on the line and then run (`curl -o f … && sh f`, `git clone URL d && make -C
d`, `scp HOST:f . && sh f`) are followed by the effects model itself
(rampartd.policy.effects), which marks that code "fetched" too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol, Self, TypeVar

from rampartd.policy.inline import inline_code, reads_stdin_program
from rampartd.policy.inline.argv import STDIN_FILES, family
from rampartd.policy.matchers import FETCHERS
from rampartd.policy.shell import launchers as L
from rampartd.policy.shell.command import Component
from rampartd.policy.shell.roles import PROGRAMS, option_values
from rampartd.policy.urls import is_loopback


class FlowEffect(Protocol):
    """What the flow reads of an effect (rampartd.policy.effects.Effect, which imports this
    module, has it)."""

    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def unknown(self) -> bool: ...
    @property
    def source(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def flow(self) -> str: ...
    @property
    def _replace(self) -> Callable[..., Self]: ...


Effect = TypeVar("Effect", bound=FlowEffect)

# Flow markers an effect can carry, by effect kind (`effect: [code:fetched]` in a rule).
FLOWS = {"code": ("fetched",), "network": ("upload",), "delete": ("workdir",)}

NET, DATA = 1, 2  # what a part's output carries: fetched content, local data
_OPENERS = ("$( ", "<( ", ">( ")
# Programs whose output is what they fetched or received (besides inline code that fetches).
_RECEIVERS = frozenset({*FETCHERS, "wget", "lwp-request", "GET", "fetch", "lynx", "links",
                        "w3m", "nc", "ncat", "netcat", "nc.traditional", "nc.openbsd", "socat",
                        "telnet", "openssl", "cryptcat", "pwncat", "dig", "host", "nslookup",
                        "drill", "tftp", "ftp"})
# Programs that send what they read on stdin.
_SOCKETS = frozenset({"nc", "ncat", "netcat", "nc.traditional", "nc.openbsd", "socat", "telnet",
                      "openssl", "cryptcat", "pwncat"})
HTTPIE = frozenset({"http", "https", "xh", "xhs", "httpie"})  # httpie and its kin
# Programs whose output is what a command printed on another machine (`ssh HOST CMD`).
_REMOTE_SHELLS = frozenset({"ssh", "autossh"})
_SENDERS = frozenset({"curl", "wget", *HTTPIE, *_SOCKETS})
# Programs whose own output tells nothing about this machine.
_HARMLESS = frozenset({"echo", "printf", "date", "seq", "true", "false", "yes", "uuidgen",
                       "sleep", "jot", "expr", "mktemp"})
_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/tty",
                      *STDIN_FILES})
_CURL_DATA = frozenset({"-d", "--data", "--data-ascii", "--data-binary", "--data-urlencode",
                        "--json", "-F", "--form"})
_CURL_UPLOAD = frozenset({"-T", "--upload-file"})
_WGET_FILES = frozenset({"--post-file", "--body-file"})
_CODE_OPTIONS = frozenset({"-c", "-e", "-E", "-r", "-p", "--eval", "--print", "--command"})
_RUNS_INPUT = re.compile(r"\b(?:exec|eval|compile|Function|runInThisContext|instance_eval)\s*"
                         r"\(?[^\n]{0,80}?(?:stdin|STDIN|readFileSync\(\s*0|/dev/stdin|ARGF"
                         r"|\$<|<STDIN>|\bgets\b|input\(\))")
_AWK_RUNS = re.compile(r"\bsystem\s*\(|\|\s*\"|\|&")


class _Part:
    """One component with its links: (from index, channel, argv position or -1)."""

    __slots__ = ("comp", "links", "owner")

    def __init__(self, comp: Component) -> None:
        self.comp = comp
        self.links: list[tuple[int, str, int]] = []
        self.owner = -1  # the component whose substitution holds this one


def flow_effects(components: Sequence[Component], effects: Sequence[Effect]
                 ) -> list[tuple[Effect | None, Effect]]:
    """What the line's data flow shows (see the module docstring), as (effect, marked):
    an effect with its flow marker set, or (None, a new effect). [] for one part that sends
    nothing (the common case costs one length and one set test)."""
    if len(components) < 2 and not (components and components[0].program in _SENDERS):
        return []
    if not any(leaves_machine(e) for e in effects):
        return []  # both markers need a contact with another machine somewhere on the line
    parts = [_Part(c) for c in components]
    for j, part in enumerate(parts):
        _link_substitutions(parts, j)
        if part.comp.piped:
            k = j - 1
            while k >= 0 and parts[k].owner != -1:
                k -= 1
            if k >= 0:
                part.links.append((k, "stdin", -1))
    by_source: dict[str, list[Effect]] = {}
    for e in effects:
        by_source.setdefault(e.source, []).append(e)
    carries = _carried(parts, by_source)
    out: list[tuple[Effect | None, Effect]] = []
    for part in parts:
        comp = part.comp
        mine = by_source.get(comp.text, [])
        arriving = {(ch, at): 0 for _, ch, at in part.links}
        for k, ch, at in part.links:
            arriving[ch, at] |= carries[k]
        if any(bits & NET and _runs(comp, ch, at) for (ch, at), bits in arriving.items()):
            code = [e for e in mine if e.kind == "code" and not e.flow]
            if code:
                out += [(e, e._replace(flow="fetched")) for e in code]
            else:
                out += [(None, e._replace(kind="code", target=_language(comp), unknown=True,
                                          flow="fetched"))
                        for e in mine if e.kind == "exec" and e.target == comp.program][:1]
        if any(leaves_machine(e) for e in mine) and _uploads(comp, mine, arriving):
            out += [(e, e._replace(flow="upload")) for e in mine
                    if leaves_machine(e) and not e.flow]
    return out


def _language(comp: Component) -> str:
    """What a part that runs fetched code runs it as: its shell, `sh` for `source`, the
    interpreter's family (`python`), `make`."""
    program = comp.program
    if program in ("source", ".", "eval"):
        return "sh"
    lang = family(program.lower())
    return program if lang in (None, "shell") else lang


def leaves_machine(e: FlowEffect) -> bool:
    """True for a network effect that may leave this machine (not loopback)."""
    return e.kind == "network" and (e.unknown or not is_loopback(e.host))


def _link_substitutions(parts: list[_Part], j: int) -> None:
    """Claim the parts inside j's substitutions (emitted just before j) and link them."""
    comp = parts[j].comp
    words = [(k, w) for k, w in enumerate(comp.argv) if "( " in w]
    redirs = [r for r in comp.redirs if "( " in r]
    if not words and not redirs:
        return
    k = j - 1
    while k >= 0:
        inner = parts[k]
        if inner.owner != -1:
            k -= 1
            continue
        place = _place(inner.comp.text, words, redirs)
        if place is None:
            return
        inner.owner = j
        opener, at, op = place
        if opener == ">( ":
            inner.links.append((j, "stdin", -1))  # j writes into it
        elif at == -1:
            parts[j].links.append((k, "stdin" if op in ("<", "<<<", "<>") else "file", -1))
        else:
            parts[j].links.append((k, "file" if opener == "<( " else "arg", at))
        k -= 1


def _place(text: str, words: list[tuple[int, str]], redirs: list[str]
           ) -> tuple[str, int, str] | None:
    """(opener, argv position or -1, redirection operator) of the substitution holding text."""
    for at, word in reversed(words):
        opener = _opener(word, text)
        if opener is not None:
            return opener, at, ""
    for redir in reversed(redirs):
        op, _, target = redir.partition(" ")
        opener = _opener(target, text)
        if opener is not None:
            return opener, -1, op.lstrip("0123456789&")
    return None


def _opener(word: str, text: str) -> str | None:
    """The kind of substitution in word whose body holds text (None: none does)."""
    at = word.rfind(text)
    if at < 0:
        return None
    best = max(_OPENERS, key=lambda o: word.rfind(o, 0, at))
    return best if word.rfind(best, 0, at) >= 0 else None


def _carried(parts: list[_Part], by_source: dict[str, list[Effect]]) -> list[int]:
    """What each part's output carries, to a fixed point (`>(…)` links point backwards)."""
    carries = [_own(p, by_source.get(p.comp.text, [])) for p in parts]
    changed = True
    rounds = 0
    while changed and rounds <= len(parts):
        changed = False
        rounds += 1
        for j, part in enumerate(parts):
            bits = carries[j]
            for k, _, _ in part.links:
                bits |= carries[k]
            if bits != carries[j]:
                carries[j] = bits
                changed = True
    return carries


def _own(part: _Part, mine: list[Effect]) -> int:
    """What a part's output carries by itself: fetched content, local data.

    Local data is what a part reads from files, and the output of any program that is not
    fed on stdin (`env`, `git diff`, `gpg --export-secret-keys`) unless it is only
    computation (`date`, `echo` of literal words); a part fed on stdin without reading files
    (`base64`, `gzip`, `tee`) carries only what it is given.
    """
    comp = part.comp
    program = comp.program
    bits = 0
    if any(leaves_machine(e) for e in mine) and (
            program in _RECEIVERS or family(program.lower()) not in (None, "shell")
            or (program in _REMOTE_SHELLS and _runs_remote(comp.argv))):
        bits |= NET
    if any(e.kind == "read" and e.target not in _DEVICES for e in mine):
        return bits | DATA
    if comp.stdin is not None:
        return bits | DATA if "$" in comp.stdin else bits  # a heredoc: what it expands
    fed = comp.piped or any(ch == "stdin" for _, ch, _ in part.links) or any(
        r.lstrip("0123456789").startswith("<") for r in comp.redirs)
    if fed or bits & NET or (program in _HARMLESS and not comp.unknown):
        return bits
    return bits | DATA


def _runs_remote(argv: Sequence[str]) -> bool:
    """True if an ssh line runs a command on the host: a word after the host, and no `-N`
    (a tunnel: `ssh -N -L 8080:db:80 host` prints nothing of the other machine)."""
    values = option_values(argv)
    letters = PROGRAMS[argv[0]].value_letters
    host = False
    for k, a in enumerate(argv[1:], 1):
        if k in values:
            continue
        if a.startswith("-") and len(a) > 1:
            # flags up to the first letter that takes a value (`-fNL PORT:H:P`, not `-oN…`)
            for c in a[1:]:
                if c == "N":
                    return False
                if c in letters or not c.isalpha():
                    break
            continue
        if host:
            return True
        host = True
    return False


def _runs(comp: Component, channel: str, at: int) -> bool:
    """True if what arrives on channel (stdin, file or arg at argv position) is run as code."""
    argv = comp.argv
    program = comp.program
    lang = family(program.lower())
    if "xargs" in comp.launchers and (lang is not None or program in ("eval", "source", ".")):
        return channel == "stdin" or at > 0
    if channel == "stdin":
        if program in ("source", "."):
            return len(argv) > 1 and argv[1] in STDIN_FILES
        if program in ("make", "gmake", "bmake"):
            return any(a in STDIN_FILES and argv[k - 1] in ("-f", "--file", "--makefile")
                       for k, a in enumerate(argv[1:], 1)) or "-f-" in argv
        if reads_stdin_program(argv) is not None:
            return True
        inline = inline_code(argv)
        if inline is None:
            return False
        pattern = _AWK_RUNS if inline[0] == "awk" else _RUNS_INPUT
        return pattern.search(inline[1]) is not None
    if at <= 0:
        return False
    if program == "eval":
        return True
    if program in ("source", "."):
        return at == 1
    if program in ("make", "gmake", "bmake"):
        return argv[at - 1] in ("-f", "--file", "--makefile")
    if lang is None:
        return False
    if channel == "arg":
        if lang == "shell":
            mode, j = L.shell_script_index(list(argv[1:]))
            return mode == "c" and j + 1 == at
        return argv[at - 1] in _CODE_OPTIONS
    # a file: the script operand, the first word that is no option
    first = next((k for k, a in enumerate(argv[1:], 1) if not a.startswith("-")
                  or a.startswith("<( ")), None)
    return first == at


def _uploads(comp: Component, mine: list[Effect], arriving: dict[tuple[str, int], int]) -> bool:
    """True if a part with network effects sends local data (see the module docstring)."""
    if any(bits & DATA for (ch, _), bits in arriving.items() if ch in ("arg", "file")):
        return True  # `curl -d "$(cat f)"`, `dig $(whoami).host`, `-d @<(env)`
    if "xargs" in comp.launchers and arriving.get(("stdin", -1), 0) & DATA:
        return True  # `cat f | xargs -I{} curl https://host/{}`: the input is in the request
    sends = _sends(comp)
    if not sends:
        return False
    if "file" in sends or any(e.kind == "read" and e.target not in _DEVICES for e in mine):
        return True  # `curl -T f`, `-d @f`, `nc host 443 < f`
    stdin = arriving.get(("stdin", -1))
    if stdin is not None:
        return bool(stdin & DATA)
    if comp.stdin is not None:
        return "$" in comp.stdin  # a heredoc or here-string: sensitive when it expands
    return "stdin" in sends  # `curl -d @-` reading a stdin nobody shows


def _sends(comp: Component) -> set[str]:
    """What a part sends besides its arguments: "file" (a named file), "stdin" (asked for
    by name: `-d @-`), "pipe" (whatever it is fed: sockets, `http`)."""
    program = comp.program
    argv = comp.argv
    if program in _SOCKETS:
        return {"pipe"}
    out: set[str] = set()
    if program == "curl":
        for k in range(1, len(argv)):
            name = _curl_file(argv, k)
            if name is not None:
                out.add("stdin" if name in STDIN_FILES else "file")
            value = _value(argv, k, _CURL_UPLOAD)
            if value is not None:
                out.add("stdin" if value in ("-", ".") else "file")
    elif program == "wget":
        if any(_value(argv, k, _WGET_FILES) is not None for k in range(1, len(argv))):
            out.add("file")
    elif program in HTTPIE:
        if any(a.startswith("@") or "=@" in a for a in argv[1:]):
            out.add("file")
        if "--ignore-stdin" not in argv:
            out.add("pipe")
    return out


def _curl_file(argv: Sequence[str], k: int) -> str | None:
    """The file a curl data option at argv[k] sends (`-d @f`, `-F k=@f`, `-F k=<f`,
    `--data-urlencode k@f`), else None (`-d user@example.com` is data)."""
    value = _value(argv, k, _CURL_DATA)
    if value is None:
        return None
    if value.startswith("@"):
        return value[1:]
    option = argv[k].partition("=")[0] if argv[k].startswith("--") else argv[k][:2]
    if option in ("-F", "--form"):
        m = re.match(r"[^=]*=[@<]([^;]*)", value)
        return m.group(1) if m else None
    if option == "--data-urlencode" and "@" in value and "=" not in value.split("@", 1)[0]:
        return value.split("@", 1)[1]
    return None


def _value(argv: Sequence[str], k: int, options: frozenset[str]) -> str | None:
    """The value of one of options at argv[k] (`-d x`, `-dx`, `--data=x`), else None."""
    a = argv[k]
    if a in options:
        return argv[k + 1] if k + 1 < len(argv) else None
    if a.startswith("--"):
        name, eq, value = a.partition("=")
        return value if eq and name in options else None
    if len(a) > 2 and a[:2] in options:
        return a[2:]
    return None
