"""What the shell parser strips and unwraps: launchers, shells and other command runners.

A launcher runs the rest of its arguments as a command (`sudo -u root rm x` runs `rm x`);
these helpers find where the real command starts. They work on argument texts only, so the
parser can keep its own word objects alongside.
"""

from __future__ import annotations

import re
from collections.abc import Container

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
    "flock": frozenset({"-w", "--wait", "--timeout", "-E", "--conflict-exit-code"}),
    "strace": frozenset({"-o", "-e", "-p", "-s", "-u", "-E", "-P", "-a", "-b", "-I", "-X",
                         "-O", "-S", "--output", "--trace", "--attach", "--user", "--env"}),
    "ltrace": frozenset({"-o", "-e", "-p", "-s", "-u", "-n", "-a", "-l", "-F", "-x", "-A",
                         "-D", "--output", "--library"}),
    "chronic": frozenset(),
    "entr": frozenset(),  # `ls | entr CMD`: runs CMD whenever a listed file changes
    "screen": frozenset({"-S", "-c", "-e", "-h", "-p", "-T", "-t", "-s", "-X", "-Logfile"}),
    "chrt": frozenset({"-T", "-P", "-D", "--sched-runtime", "--sched-period",
                       "--sched-deadline"}),
    "taskset": frozenset(),
    "firejail": frozenset(),
    "unshare": frozenset({"-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd"}),
    "systemd-run": frozenset({"-u", "--unit", "-p", "--property", "-E", "--setenv", "-M",
                              "--machine", "-H", "--host", "--description", "--slice",
                              "--on-calendar", "--on-active", "--on-boot", "--on-startup",
                              "--on-unit-active", "--on-unit-inactive", "--timer-property",
                              "--uid", "--gid", "--nice", "--working-directory"}),
    "parallel": frozenset({"-j", "--jobs", "-S", "--sshlogin", "--joblog", "-a", "--arg-file",
                           "--delay", "--timeout", "--results", "--tmpdir", "-I", "--colsep",
                           "-d", "--delimiter", "-n", "--max-args"}),
    # wrappers that run their command under another identity, environment or supervisor
    "sshpass": frozenset({"-p", "-f", "-d", "-P"}),
    "caffeinate": frozenset({"-t", "-w"}),
    "ssh-agent": frozenset({"-a", "-E", "-P", "-t"}),
    "dbus-launch": frozenset(),
    "dbus-run-session": frozenset({"--config-file"}),
    "xvfb-run": frozenset({"-n", "--server-num", "-s", "--server-args", "-f", "--auth-file",
                           "-e", "--error-file", "-p", "--xauth-protocol"}),
    "valgrind": frozenset(),
    "catchsegv": frozenset(),
    "runuser": frozenset({"-u", "--user", "-g", "--group", "-G", "--supp-group",
                          "-w", "--whitelist-environment"}),
    "setpriv": frozenset({"--reuid", "--regid", "--groups", "--inh-caps", "--ambient-caps",
                          "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label",
                          "--apparmor-profile"}),
    "faketime": frozenset(),
    "fakeroot": frozenset({"-l", "--lib", "--faked", "-s", "-i"}),
    "proot": frozenset({"-r", "--rootfs", "-b", "--bind", "-m", "--mount", "-w", "--pwd",
                        "--cwd", "-q", "--qemu", "-k", "--kernel-release"}),
    "torify": frozenset(),
    "tsocks": frozenset(),
    "chpst": frozenset({"-u", "-U", "-b", "-e", "-/", "-n", "-l", "-L", "-m", "-d", "-o",
                        "-p", "-f", "-c"}),
    "eatmydata": frozenset(),
    "with-contenv": frozenset(),
    "tini": frozenset({"-p", "-e"}),
    "dumb-init": frozenset({"-r", "--rewrite"}),
    "gosu": frozenset(),
    "su-exec": frozenset(),
    "flatpak-spawn": frozenset(),
    "distrobox-host-exec": frozenset(),
    "daemonize": frozenset({"-c", "-e", "-E", "-o", "-p", "-l", "-u"}),
    "toybox": frozenset(),
    "rlwrap": frozenset({"-f", "-H", "-C", "-S", "-P", "-l", "-s"}),
    "numactl": frozenset({"-N", "-m", "-C", "-p", "-i", "--cpunodebind", "--membind",
                          "--physcpubind", "--preferred", "--interleave"}),
    "cgexec": frozenset({"-g"}),
    "prlimit": frozenset({"-p", "--pid"}),
    "trickle": frozenset({"-d", "-u", "-w", "-t", "-l", "-n"}),
    "lockf": frozenset({"-t"}),
    "gtimeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "env-cmd": frozenset({"-f", "--file", "-e", "--environments", "-r", "--rc-file"}),
    "cross-env": frozenset(),
    "dotenv": frozenset({"-e", "-v", "-c"}),
    "npx": frozenset({"-p", "--package", "-w", "--workspace"}),
    "pnpx": frozenset({"-p", "--package"}),
    "bunx": frozenset({"-p", "--package"}),
}
# Launchers that take positional arguments before the command (`timeout 5 cmd`).
LAUNCHER_POSITIONALS: dict[str, int] = {"timeout": 1, "chroot": 1, "flock": 1, "chrt": 1,
                                        "taskset": 1, "gtimeout": 1, "lockf": 1, "faketime": 1,
                                        "gosu": 1, "su-exec": 1}
# Options after which a launcher runs a command line of its own, not its arguments
# (`flock FILE -c CMD`, `npx -c CMD`: the embedded-command table reads those).
LAUNCHER_OWN_COMMAND: dict[str, frozenset[str]] = {
    "flock": frozenset({"-c", "--command"}), "npx": frozenset({"-c", "--call"}),
    "taskset": frozenset({"-p", "--pid"}), "chrt": frozenset({"-p", "--pid"}),
    "entr": frozenset({"-s"}),
}
# Programs whose subcommand runs the rest as a command (`npm exec -- cmd`, `uv run cmd`), with
# the subcommand's options that take a value.
_RUNNER_VALUES = frozenset({"-p", "--package", "-c", "--call", "-w", "--workspace", "--with",
                            "--python", "--project", "--directory", "--env-file", "--group",
                            "--extra", "-n", "--name", "--prefix"})
LAUNCHER_SUBCOMMANDS: dict[str, frozenset[str]] = {
    "npm": frozenset({"exec", "x"}), "pnpm": frozenset({"dlx", "exec"}),
    "yarn": frozenset({"dlx", "exec"}), "bun": frozenset({"x"}), "uv": frozenset({"run"}),
    "poetry": frozenset({"run"}), "pipenv": frozenset({"run"}), "pdm": frozenset({"run"}),
    "conda": frozenset({"run"}), "hatch": frozenset({"run"}),
    "bundle": frozenset({"exec"}), "mise": frozenset({"exec", "x"}), "asdf": frozenset({"exec"}),
    "devbox": frozenset({"run"}), "op": frozenset({"run"}), "doppler": frozenset({"run"}),
    "dotenvx": frozenset({"run"}), "infisical": frozenset({"run"}), "teller": frozenset({"run"}),
    "toolbox": frozenset({"run"}), "pixi": frozenset({"run"}), "rye": frozenset({"run"}),
}


def runs_subcommand(words: list[str]) -> bool:
    """True for `npm exec …`-style command lines (a launcher by its first two words)."""
    subs = LAUNCHER_SUBCOMMANDS.get(words[0])
    return subs is not None and len(words) > 1 and words[1] in subs

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "rbash", "fish"})
# Interpreters' inline-code flags: their code is not shell, but policies look at it as text.
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
RESERVED_SKIP = frozenset({"{", "}", "then", "do", "else", "fi", "done", "if", "elif", "while",
                           "until", "!"})
RESERVED_LOOP = frozenset({"for", "select"})
RESERVED_UNSUPPORTED = frozenset({"esac", "coproc", "in"})
_ECHO_FLAGS = re.compile(r"-[neE]+")
_BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")


def cluster_value(word: str, options: Container[str]) -> int:
    """In a cluster of one-letter options (`-iu`, `-fp`, `-nes/a/b/`), the index of the first
    letter whose `-X` is in options: as getopt reads it, that letter takes the rest of the
    word as its value or, when it ends the cluster, the next word. 0: no such cluster."""
    if len(word) < 3 or word[0] != "-" or word[1] == "-":
        return 0
    return next((k for k in range(1, len(word)) if "-" + word[k] in options), 0)


def takes_next(word: str, options: Container[str]) -> bool:
    """Does an option word take the next word as its value: `-o`, or a cluster whose value
    letter ends it (`-fo`, `-iu`)?"""
    return word in options or 0 < cluster_value(word, options) == len(word) - 1


def launcher_end(name: str, args: list[str]) -> int | None:
    """Index in args where the launched command starts (len(args) if none; None: not a launcher).

    args are the launcher's arguments (without the launcher itself).
    """
    value_opts = LAUNCHER_VALUE_OPTIONS.get(name)
    j = 0
    if value_opts is None:
        if not args or name not in LAUNCHER_SUBCOMMANDS or args[0] not in \
                LAUNCHER_SUBCOMMANDS[name]:
            return None
        value_opts, j = _RUNNER_VALUES, 1  # `npm exec`: the command follows the subcommand
    if name == "command" and args and args[0] in ("-v", "-V"):
        return None  # `command -v x` only looks x up
    own = LAUNCHER_OWN_COMMAND.get(name)
    if own is not None and any(a in own or a.split("=", 1)[0] in own for a in args):
        return None
    while j < len(args):
        t = args[j]
        if t == "--":
            j += 1
            break
        if t.startswith("-") and len(t) > 1:
            # (`env -iu NAME cmd`: the cluster's value letter takes the next word)
            j += 2 if takes_next(t, value_opts) else 1
            continue
        if ASSIGNMENT.match(t):
            # env and sudo take VAR=value; for the others it would be the program's name,
            # which cannot run - skipping it reads the rest as the command, the cautious way.
            j += 1
            continue
        break
    if name == "parallel" and args[j:j + 1] == [":::"]:
        return None  # `parallel ::: CMD…`: the arguments are the commands (embedded.py)
    j += LAUNCHER_POSITIONALS.get(name, 0)
    while j < len(args) and ASSIGNMENT.match(args[j]):
        j += 1
    return min(j, len(args))


def xargs_replace(args: list[str]) -> str | None:
    """The replace string of `xargs -I STR` / `-i` / `--replace[=STR]` (None if not used)."""
    for j, t in enumerate(args):
        if t == "-I" and j + 1 < len(args):
            return args[j + 1] or None
        if t.startswith("-I") and len(t) > 2:
            return t[2:]
        if t in ("-i", "--replace"):
            return "{}"
        if t.startswith(("-i", "--replace=")):
            return t.split("=", 1)[1] if t.startswith("--") else t[2:]
    return None


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
