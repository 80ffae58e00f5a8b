"""What the shell parser strips and unwraps: launchers, shells and other command runners.

A launcher runs the rest of its arguments as a command (`sudo -u root rm x` runs `rm x`);
these helpers find where the real command starts. They work on argument texts only, so the
parser can keep its own word objects alongside.
"""

from __future__ import annotations

import re

# Launcher → options that take a separate value. Everything else starting with `-` is a flag.
LAUNCHER_VALUE_OPTIONS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-h", "-p", "-D", "-r", "-t", "-T", "-U", "--user",
                       "--group", "--close-from", "--host", "--prompt", "--chdir", "--role",
                       "--type", "--command-timeout", "--other-user"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "--unset", "-C", "--chdir"}),
    "nohup": frozenset(),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "--class", "--classdata"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "setsid": frozenset(),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "command": frozenset(),
    "exec": frozenset({"-a"}),
    "builtin": frozenset(),
    "xargs": frozenset({"-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a", "--max-args",
                        "--max-procs", "--delimiter", "--arg-file", "--max-lines"}),
    "busybox": frozenset(),
    "chroot": frozenset({"--userspec", "--groups"}),
    "torsocks": frozenset(),
    "proxychains": frozenset({"-f"}),
    "proxychains4": frozenset({"-f"}),
    "unbuffer": frozenset(),
    "nocorrect": frozenset(),
    "noglob": frozenset(),
}
# Launchers that take positional arguments before the command (`timeout 5 cmd`).
LAUNCHER_POSITIONALS: dict[str, int] = {"timeout": 1, "chroot": 1}

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "rbash", "fish"})
# Interpreters' inline-code flags: their code is not shell, but policies look at it as text.
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
RESERVED_SKIP = frozenset({"{", "}", "then", "do", "else", "fi", "done", "if", "elif", "while",
                           "until", "!"})
RESERVED_LOOP = frozenset({"for", "select"})
RESERVED_UNSUPPORTED = frozenset({"case", "esac", "function", "coproc", "in"})
_ECHO_FLAGS = re.compile(r"-[neE]+")
_BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")


def launcher_end(name: str, args: list[str]) -> int | None:
    """Index in args where the launched command starts (len(args) if none; None: not a launcher).

    args are the launcher's arguments (without the launcher itself).
    """
    value_opts = LAUNCHER_VALUE_OPTIONS.get(name)
    if value_opts is None:
        return None
    if name == "command" and args and args[0] in ("-v", "-V"):
        return None  # `command -v x` only looks x up
    j = 0
    while j < len(args):
        t = args[j]
        if t == "--":
            j += 1
            break
        if t.startswith("-") and len(t) > 1:
            j += 2 if t in value_opts else 1
            continue
        if ASSIGNMENT.match(t):
            # env and sudo take VAR=value; for the others it would be the program's name,
            # which cannot run - skipping it reads the rest as the command, the cautious way.
            j += 1
            continue
        break
    j += LAUNCHER_POSITIONALS.get(name, 0)
    while j < len(args) and ASSIGNMENT.match(args[j]):
        j += 1
    return min(j, len(args))


def env_split_string(args: list[str]) -> tuple[int, str] | None:
    """For `env -S 'cmd args'`: (index of the -S option, the string); None if not used."""
    for j, t in enumerate(args):
        if t in ("-S", "--split-string") and j + 1 < len(args):
            return j, args[j + 1]
        if t.startswith("--split-string="):
            return j, t.split("=", 1)[1]
        if t.startswith("-S") and len(t) > 2:
            return j, t[2:]
        if not t.startswith("-"):
            return None
    return None


def shell_script_index(args: list[str]) -> tuple[str, int]:
    """How a shell is invoked: ("c", i) script at args[i]; ("file", i); ("stdin", -1)."""
    c_flag = False
    j = 0
    while j < len(args):
        t = args[j]
        if t in ("--", "-"):
            j += 1
            break
        if t.startswith("--"):
            j += 2 if t in ("--rcfile", "--init-file") else 1
            continue
        if t[:1] in ("-", "+") and len(t) > 1:
            if t[0] == "-" and "c" in t[1:]:
                c_flag = True
            j += 2 if t[-1] in "oO" else 1
            continue
        break
    if c_flag:
        return ("c", j) if j < len(args) else ("c", -1)
    if j < len(args):
        return "file", j
    return "stdin", -1


def su_script(args: list[str]) -> int | None:
    """Index of the command string of `su -c CMD`, `runuser -c CMD`, `script -qc CMD` (None
    if there is none: su starts a login shell)."""
    for j, t in enumerate(args):
        if (t in ("-c", "--command") or (t[:1] == "-" and t[1:2] != "-" and t.endswith("c"))) \
                and j + 1 < len(args):
            return j + 1
        if t.startswith("--command="):
            return j
    return None


def watch_command_start(args: list[str]) -> int:
    """Index where `watch`'s command starts."""
    j = 0
    while j < len(args):
        t = args[j]
        if t == "--":
            return j + 1
        if t.startswith("-") and len(t) > 1:
            j += 2 if t in ("-n", "--interval", "-q", "--equexit") else 1
            continue
        break
    return j


def find_exec_commands(args: list[str]) -> list[tuple[int, int]]:
    """Spans (start, end) of the commands `find … -exec CMD ;` would run."""
    spans: list[tuple[int, int]] = []
    j = 0
    while j < len(args):
        if args[j] in ("-exec", "-execdir", "-ok", "-okdir"):
            k = j + 1
            while k < len(args) and args[k] not in (";", "+"):
                k += 1
            if k > j + 1:
                spans.append((j + 1, k))
            j = k
        j += 1
    return spans


def echo_payload(program: str, args: list[str]) -> str:
    """The text `echo`/`printf` writes (escape sequences for newlines and tabs decoded)."""
    words = list(args)
    interpret = program == "printf"
    while words and program == "echo" and _ECHO_FLAGS.fullmatch(words[0]):
        interpret = interpret or "e" in words[0]
        words.pop(0)
    text = " ".join(words)
    if interpret:
        text = text.replace("\\n", "\n").replace("\\t", "\t")
    return text


def expand_braces(word: str, limit: int = 64, groups: int = 8) -> list[str]:
    """Bash brace expansion of `{a,b}` groups in an unquoted word (at most `limit` results;
    past the first `groups` groups the braces stay as written)."""
    m = _BRACES.search(word) if groups > 0 else None
    if m is None:
        return [word]
    out: list[str] = []
    for alt in m.group(1).split(","):
        for item in expand_braces(word[: m.start()] + alt + word[m.end():], limit, groups - 1):
            out.append(item)
            if len(out) >= limit:
                return out
    return out
