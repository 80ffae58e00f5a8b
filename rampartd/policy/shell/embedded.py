"""Commands hidden in a program's options, configuration or environment (a table, data).

`git -c core.pager='sh -c …' log`, `tar --to-command=CMD`, `rsync -e CMD`, `ssh -o
ProxyCommand=CMD`, `vim -c '!CMD'`, `GIT_PAGER=CMD git log`: the program itself runs a shell
command line taken from a value. `embedded_commands` finds those command lines so the parser
can treat them as commands the line runs. Extending it means adding a row, not a code path.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from rampartd.policy.shell.launchers import LAUNCHER_VALUE_OPTIONS, takes_next
from rampartd.policy.shell.printed import without_shaped
from rampartd.policy.shell.roles import option_values
from rampartd.policy.urls import is_loopback

# How a value holds a command line:
#   command     the value is a shell command line (or a program: a one-word command line)
#   bang        only a value starting with `!` (after an optional `:`) runs `!`'s rest
#   checkpoint  tar's `exec=CMD` (other actions run nothing)
#   ssh-option  `Key=Value` where Key is one of SSH_COMMAND_OPTIONS
#   git-config  `key=value` where key is one of GIT_COMMAND_KEYS (or an alias with `!`)
#   lessopen    an input preprocessor: `|CMD`, `||CMD`, `-|CMD` or a plain command


def _each(names: tuple[str, ...], table: Mapping[str, str]) -> dict[str, Mapping[str, str]]:
    return {name: MappingProxyType(dict(table)) for name in names}


OPTIONS: Mapping[str, Mapping[str, str]] = {
    "git": {"-c": "git-config"},
    **_each(("tar", "gtar", "bsdtar"), {
        "--to-command": "command", "--checkpoint-action": "checkpoint", "-I": "command",
        "--use-compress-program": "command", "--info-script": "command", "-F": "command",
        "--new-volume-script": "command", "--rsh-command": "command"}),
    "rsync": {"-e": "command", "--rsh": "command", "--rsync-path": "command"},
    **_each(("scp", "sftp"), {"-S": "command", "-o": "ssh-option"}),
    **_each(("ssh", "autossh"), {"-o": "ssh-option"}),
    **_each(("vim", "vi", "nvim", "view", "vimdiff", "gvim", "ex", "rvim"),
                    {"-c": "bang", "--cmd": "bang", "+": "bang"}),
    "man": {"-P": "command", "--pager": "command"},
    "flock": {"-c": "command", "--command": "command"},
    **_each(("ncat", "nc", "netcat"), {"-e": "command", "--exec": "command",
                                              "-c": "command", "--sh-exec": "command"}),
    "zip": {"-TT": "command", "--unzip-command": "command"},
    "tcpdump": {"-z": "command"},
    "gdb": {"-ex": "bang", "--eval-command": "bang"},
    **_each(("npx", "pnpx"), {"-c": "command", "--call": "command"}),
    "npm": {"-c": "command", "--call": "command"},  # `npm exec --call CMD`
    "script": {"-c": "command", "--command": "command"},
    "nix-shell": {"--run": "command", "--command": "command"},
    "runuser": {"-c": "command", "--command": "command"},
    "sg": {"-c": "command"},
    "entr": {"-s": "command"},
    "nodemon": {"-x": "command", "--exec": "command"},
    "parallel": {},  # `parallel ::: CMD…` (see _parallel)
    "tmux": {},  # `tmux new -d CMD`, `tmux run-shell CMD`, `tmux send-keys CMD Enter` (_tmux)
    "trap": {},  # `trap CMD SIGNAL…`: CMD runs later in this shell (see _later)
    "alias": {},  # `alias NAME=CMD`: CMD runs where NAME is used (see _later)
}
def _letters(letters: str) -> frozenset[str]:
    """`-a`, `-b`… for the letters given (tmux's one-letter options)."""
    return frozenset("-" + c for c in letters)


# tmux commands that run a shell command (their last words), with their options that take a
# value; send-keys types its words into a shell, if-shell runs its first word.
_TMUX_COMMANDS: Mapping[str, frozenset[str]] = {
    **dict.fromkeys(("new-session", "new"), _letters("ceFfnstxy")),
    **dict.fromkeys(("new-window", "neww"), _letters("ceFnt")),
    **dict.fromkeys(("split-window", "splitw"), _letters("ceFlpt")),
    **dict.fromkeys(("respawn-pane", "respawnp", "respawn-window", "respawnw"), _letters("cet")),
    **dict.fromkeys(("run-shell", "run"), _letters("dt")),
    **dict.fromkeys(("display-popup", "popup"), _letters("bcdehsStTwxy")),
    **dict.fromkeys(("send-keys", "send"), _letters("Nt")),
    **dict.fromkeys(("if-shell", "if"), _letters("t")),
}
_TMUX_GLOBAL_VALUES = frozenset({"-L", "-S", "-f", "-T", "-c"})
# send-keys words that name a key rather than type text
_TMUX_KEY = re.compile(r"(Enter|Escape|Space|Tab|BSpace|[CMS]-\S+|KP\S*|F[0-9]+|Up|Down|Left"
                       r"|Right|Home|End)\Z")
# Options that take a separate value but run nothing (so the value is not read as an option).
_GIT_VALUE_OPTIONS = frozenset({"-C", "--git-dir", "--work-tree", "--namespace",
                                "--exec-path", "--config-env"})
# git subcommands that run a command line: option → kind, or "rest" (the remaining words are
# a command line, as `git submodule foreach` runs them) / "argv" (`git bisect run CMD ARGS`).
GIT_SUBCOMMANDS: Mapping[str, Mapping[str, str]] = {
    "rebase": {"-x": "command", "--exec": "command"},
    "submodule foreach": {"": "rest"},
    "bisect run": {"": "argv"},
    "filter-branch": {f"--{name}-filter": "command" for name in (
        "env", "tree", "index", "parent", "msg", "commit", "tag-name")},
    "difftool": {"-x": "command", "--extcmd": "command"},
    "config": {"": "git-config-pair"},
    "config set": {"": "git-config-pair"},
}
# git words after which a command may follow: the subcommands above, and those taking a URL
# (an `ext::` URL runs a command).
GIT_TRIGGERS = frozenset({*(name.split()[0] for name in GIT_SUBCOMMANDS), "clone", "fetch",
                          "pull", "push", "ls-remote", "remote", "archive"})
# Variables whose value programs run as a command (pagers, editors, ssh, askpass helpers).
ENV_COMMANDS: Mapping[str, str] = {
    **dict.fromkeys(("GIT_PAGER", "PAGER", "MANPAGER", "GIT_EDITOR", "EDITOR", "VISUAL",
                     "GIT_SEQUENCE_EDITOR", "GIT_SSH_COMMAND", "GIT_SSH", "GIT_ASKPASS",
                     "SSH_ASKPASS", "SUDO_ASKPASS", "GIT_EXTERNAL_DIFF", "GIT_PROXY_COMMAND",
                     "RSYNC_RSH", "BROWSER", "SYSTEMD_PAGER", "SYSTEMD_EDITOR", "KUBE_EDITOR",
                     "FCEDIT", "SVN_EDITOR", "HGEDITOR"), "command"),
    "LESSOPEN": "lessopen", "LESSCLOSE": "command",
}
SSH_COMMAND_OPTIONS = frozenset({"proxycommand", "localcommand", "knownhostscommand"})
GIT_COMMAND_KEYS = frozenset({"core.pager", "core.editor", "core.sshcommand", "core.fsmonitor",
                              "sequence.editor", "diff.external", "gpg.program",
                              "gpg.ssh.program", "gpg.x509.program", "core.askpass",
                              "credential.helper", "uploadpack.packobjectshook"})
EMBEDDERS = frozenset({*OPTIONS})


class Embedded(NamedTuple):
    """A command line a program would run, and whether it is only known at run time."""

    text: str
    dynamic: bool = False


def decode(kind: str, value: str) -> str | None:
    """The command line a value of this kind runs (None: it runs none)."""
    if kind == "command":
        return value or None
    if kind == "bang":
        body = value.lstrip(":").lstrip()
        if body.startswith("!"):
            return body[1:].strip() or None
        if body.startswith(("sh ", "shell ", "call system(", "!")):
            return body.split(" ", 1)[1] if " " in body else None
        return None
    if kind == "checkpoint":
        return value[5:] if value.startswith("exec=") else None
    if kind == "ssh-option":
        key, sep, rest = value.replace("=", " ", 1).partition(" ")
        return rest.strip() or None if sep and key.lower() in SSH_COMMAND_OPTIONS else None
    if kind == "git-config":
        key, sep, rest = value.partition("=")
        return _git_config(key, rest) if sep else None
    if kind == "lessopen":
        return value.lstrip("-|").strip() or None
    return None


def _git_config(key: str, value: str) -> str | None:
    key = key.lower()
    if key.startswith("alias.") or key == "credential.helper":
        # an alias or helper starting with `!` is a shell command; others are git's own
        return value[1:].strip() or None if value.startswith("!") else None
    if key in GIT_COMMAND_KEYS or key.startswith(("pager.", "difftool.", "mergetool.")) \
            or key.endswith((".cmd", ".command", ".textconv", ".clean", ".smudge", ".process")):
        return value or None
    return None


def _option_value(t: str, nxt: str | None, table: Mapping[str, str]
                  ) -> tuple[str, str, bool] | None:
    """(kind, value, used the next word) if the word t is a table option, else None."""
    if t.startswith("--"):
        name, eq, value = t.partition("=")
        if name not in table:
            return None
        if eq:
            return table[name], value, False
        return (table[name], nxt, True) if nxt is not None else None
    if t in table:
        return (table[t], nxt, True) if nxt is not None else None
    if "+" in table and t.startswith("+") and len(t) > 1:
        return table["+"], t[1:], False
    for name, kind in table.items():
        if len(name) == 2 and name != "+" and t.startswith(name) and len(t) > 2:
            return kind, t[2:], False  # `-ofile`: the value attached
    return None


def embedded_commands(program: str, args: Sequence[str], dynamic: frozenset[int] = frozenset(),
                      assigns: Sequence[str] = ()) -> list[Embedded]:
    """The command lines a program would run from its options or environment.

    args: the program's arguments; dynamic: indexes in args only known at run time;
    assigns: `NAME=value` assignments in front of the program (UNKNOWN-free when known).
    """
    found: list[Embedded] = []
    for assign in assigns:
        name, _, value = assign.partition("=")
        kind = ENV_COMMANDS.get(name)
        if kind is not None:
            if "\x00" in value:
                found.append(Embedded(value, True))
            elif (text := decode(kind, value)) is not None:
                found.append(Embedded(text))
    table = OPTIONS.get(program)
    if table is None:
        return found
    if program in ("ssh", "autossh"):
        found += _ssh_here(program, args, dynamic)
    if program == "parallel":
        return found + _parallel(args, dynamic)
    if program == "tmux":
        return found + _tmux(args, dynamic)
    if program in ("trap", "alias"):
        return found + _later(program, args, dynamic)
    if program == "git" and "-c" not in args and GIT_TRIGGERS.isdisjoint(args):
        return found  # `git status`: the common case, without the full scan
    j = 0
    while j < len(args):
        t = args[j]
        if t == "--":
            break
        nxt = args[j + 1] if j + 1 < len(args) else None
        if program == "git" and t in _GIT_VALUE_OPTIONS:
            j += 2
            continue
        hit = _option_value(t, nxt, table) if t.startswith(("-", "+")) else None
        if hit is not None:
            kind, value, used = hit
            k = j + 1 if used else j
            if k in dynamic:
                found.append(Embedded(value, True))
            elif (text := decode(kind, value)) is not None:
                found.append(Embedded(text))
            j += 2 if used else 1
            continue
        if program == "git" and not t.startswith("-"):
            found += _git_subcommand(args[j:], j, dynamic)
            break
        j += 1
    return found


def _ssh_here(program: str, args: Sequence[str], dynamic: frozenset[int]) -> list[Embedded]:
    """`ssh localhost CMD` (any loopback spelling): the remote command runs on this machine,
    in the home directory a login shell starts in."""
    values = option_values([program, *args])
    for k, a in enumerate(args):
        if k + 1 in values or (a.startswith("-") and len(a) > 1):
            continue
        host = a.removeprefix("ssh://").split("/", 1)[0].rpartition("@")[2]
        if k in dynamic or not is_loopback(host) or k + 1 >= len(args):
            return []
        rest = range(k + 1, len(args))
        return [Embedded("cd ~ && " + " ".join(args[j] for j in rest),
                         any(j in dynamic for j in rest))]
    return []


def _parallel(args: Sequence[str], dynamic: frozenset[int]) -> list[Embedded]:
    """`parallel [OPTIONS] ::: CMD…`: with no command before `:::`, each argument is one."""
    values = LAUNCHER_VALUE_OPTIONS["parallel"]
    j = 0
    while j < len(args) and args[j].startswith("-") and args[j] != "-":
        j += 2 if args[j] in values else 1
    if args[j:j + 1] != [":::"]:
        return []
    return [Embedded(a, k in dynamic) for k, a in enumerate(args[j + 1:], j + 1)
            if a not in (":::", "::::", ":::+")]


def _later(program: str, args: Sequence[str], dynamic: frozenset[int]) -> list[Embedded]:
    """A trap's action or an alias's value: a command line the shell runs later. Only a part
    of unknown shape makes it unknown (`trap "rm -rf $d" EXIT` after `d=$(mktemp -d)` is
    read)."""
    if program == "alias":
        found = [(k, value) for k, a in enumerate(args)
                 for name, eq, value in [a.partition("=")] if eq and value]
    else:
        k = 1 if args[:1] == ["--"] else 0
        if len(args) < k + 2 or args[k] in ("-", "-p", "-l", "-P"):
            return []  # listing traps, or resetting them
        found = [(k, args[k])]
    return [Embedded(text, k in dynamic and "$" in without_shaped(text)) for k, text in found]


def _tmux(args: Sequence[str], dynamic: frozenset[int]) -> list[Embedded]:
    """The shell commands a tmux command line runs: `-c CMD`, then each command's own."""
    found: list[Embedded] = []
    j = 0
    while j < len(args) and args[j].startswith("-"):
        if args[j] == "-c" and j + 1 < len(args):
            found.append(Embedded(args[j + 1], j + 1 in dynamic))
        j += 2 if args[j] in _TMUX_GLOBAL_VALUES else 1
    values = _TMUX_COMMANDS.get(args[j]) if j < len(args) else None
    if values is None:
        return found
    name, j = args[j], j + 1
    while j < len(args) and args[j].startswith("-") and args[j] != "-":
        j += 2 if takes_next(args[j], values) else 1
    words = [k for k in range(j, len(args))
             if not (name in ("send-keys", "send") and _TMUX_KEY.match(args[k]))]
    if name in ("if-shell", "if"):
        words = words[:1]
    if words:
        found.append(Embedded(" ".join(args[k] for k in words),
                              any(k in dynamic for k in words)))
    return found


def _git_subcommand(args: Sequence[str], offset: int, dynamic: frozenset[int]
                    ) -> list[Embedded]:
    """Commands a git subcommand runs (`rebase --exec`, `submodule foreach`, `ext::` URLs…)."""
    found: list[Embedded] = []
    for k, word in enumerate(args):
        if word.startswith("ext::"):
            # git's ext transport runs the rest: `% ` is a blank and `%%` a percent sign
            text = word[5:].replace("%%", "\x01").replace("% ", " ").replace("\x01", "%")
            found.append(Embedded(text, offset + k in dynamic))
    name = args[0]
    table = GIT_SUBCOMMANDS.get(name)
    rest_at = 1
    if len(args) > 1 and f"{name} {args[1]}" in GIT_SUBCOMMANDS:
        table = GIT_SUBCOMMANDS[f"{name} {args[1]}"]
        rest_at = 2
    if table is None:
        return found
    words = list(args[rest_at:])
    mode = table.get("")
    if mode in ("rest", "argv"):
        while words and words[0].startswith("-") and mode == "rest":
            words.pop(0)  # `foreach --recursive`
        dyn = any(offset + rest_at + k in dynamic for k in range(len(args) - rest_at))
        if words:
            found.append(Embedded(" ".join(words) if mode == "rest" else shlex.join(words),
                                  dyn))
        return found
    if mode == "git-config-pair":
        operands = [(k, w) for k, w in enumerate(words) if not w.startswith("-")]
        # `git config [-f FILE] KEY VALUE`: a file option's value is no key
        skip = {k + 1 for k, w in enumerate(words) if w in ("-f", "--file", "--blob",
                                                            "--type", "--default")}
        operands = [(k, w) for k, w in operands if k not in skip]
        if len(operands) >= 2:
            (_, key), (k, value) = operands[0], operands[1]
            if offset + rest_at + k in dynamic:
                if _git_config(key, "!x") is not None:
                    found.append(Embedded(value, True))
            elif (setting := _git_config(key, value)) is not None:
                found.append(Embedded(setting))
        return found
    for k, word in enumerate(words):
        nxt = words[k + 1] if k + 1 < len(words) else None
        hit = _option_value(word, nxt, table) if word.startswith("-") else None
        if hit is not None:
            kind, value, used = hit
            at = offset + rest_at + k + (1 if used else 0)
            if at in dynamic:
                found.append(Embedded(value, True))
            elif (option := decode(kind, value)) is not None:
                found.append(Embedded(option))
    return found
