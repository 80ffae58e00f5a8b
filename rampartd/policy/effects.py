"""What a call does, whichever tool or spelling asks for it: its effects. Pure, no I/O.

Every call yields a set of effects, each a kind and a target:

    read / write / delete / chmod (path)   files, from file tools' path arguments and from
                                           shell commands (argument roles, redirections)
    exec (program)                         every program a shell command runs
    network (URL, host)                    fetch URLs, URLs and hosts in commands
    signal (process selector)              kill / pkill / killall / fuser -k targets
    env (NAME=value)                       assignments and exports (`LD_PRELOAD=x cmd`)
    code (language)                        code only known at run time or doing risky things

A target that cannot be known before the command runs (`$X`, `$(…)`, `xargs` input) holds
UNKNOWN where the unknown part is and has `unknown` set; a target with glob characters has
`wild` set. Paths are normalised like the file tools' paths: `~`, `~user`, `//`, `.`, `..`,
relative to the call's cwd, and `cd DIR` earlier in the command line moves what follows.

An effect's `flow` says what the line's data flow shows about it (rampartd.policy.flow):
"fetched" on a `code` effect for code that came from the network, "upload" on a `network`
effect that sends file contents or command output.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from rampartd.policy.flow import HTTPIE, flow_effects, leaves_machine
from rampartd.policy.inline import analyze, unread
from rampartd.policy.inline.argv import STDIN_FILES, family, program_input
from rampartd.policy.inline.findings import FETCHES_AND_EXECUTES
from rampartd.policy.matchers import FETCHERS, normalize_path, posix_basename
from rampartd.policy.overlap import UNKNOWN
from rampartd.policy.shell import launchers as L
from rampartd.policy.shell.command import (
    DYNAMIC,
    Component,
    ParsedCommand,
    assigned,
    fold_dynamic,
    has_glob,
)
from rampartd.policy.shell.parse import parse_command
from rampartd.policy.shell.pids import OWN_JOBS, selectors
from rampartd.policy.shell.printed import stand_in, without_shaped
from rampartd.policy.shell.roles import (
    FILE_KINDS,
    GIT_CLONE_VALUES,
    PROGRAMS,
    SPECIAL,
    option_values,
    roles,
)
from rampartd.policy.shell.sed import scan_sed, sed_scripts
from rampartd.policy.shell.socat import socat_addresses
from rampartd.policy.urls import parse_url
from rampartd.toolnames import URL_KEYS

KINDS = ("read", "write", "delete", "chmod", "exec", "network", "signal", "env", "code")
MAX_INLINE_DEPTH = 3
MAX_EFFECTS = 2048
_UNLISTED = "(more effects than rampartd lists)"

# Programs that delete the paths they are given (find and git clean delete what they find
# below theirs: `find . -name '*.pyc' -delete` leaves `.` in place).
_REMOVERS = frozenset({"rm", "rmdir", "unlink", "shred", "srm", "trash", "trash-put", "rimraf",
                       "del-cli"})
# Tool arguments that name files, by tool class: every one of them yields an effect.
PATH_KEYS = ("file_path", "path", "notebook_path", "absolute_path", "filepath", "filename",
             "file", "target_file", "target", "dir_path", "directory", "source",
             "destination", "old_path", "new_path", "cwd_path")
PATH_LIST_KEYS = ("paths", "file_paths", "files", "targets", "target_directories")


def _key_form(key: str) -> str:
    """An argument name as hosts vary it: `file_path`, `filePath`, `FilePath`, `file-path`."""
    return key.lower().replace("_", "").replace("-", "")


_PATH_LIST_KEYS = frozenset(map(_key_form, PATH_LIST_KEYS))
# each form's first position (`file_path` and `filepath` share one form)
_PATH_KEY_ORDER = {form: n for n, form in reversed(list(enumerate(
    map(_key_form, (*PATH_KEYS, *PATH_LIST_KEYS)))))}


def names_files(params: Mapping[str, Any]) -> bool:
    """True if a tool's arguments name a file (a path argument, by any host's spelling)."""
    return any(_key_form(k) in _PATH_KEY_ORDER for k in params)


CLASS_KINDS: Mapping[str, tuple[str, ...]] = {
    "read": ("read",), "write": ("write",), "edit": ("read", "write"), "grep": ("read",),
    "glob": ("read",), "delete": ("delete",),
}
_PATCH_PATH = re.compile(r"^(?:\*\*\* (?:Add|Update|Delete) File: |\*\*\* Move to: |\+\+\+ b/"
                         r"|--- a/)(.+?)\s*$", re.MULTILINE)
# A path word that may need no normalising: no `~user`, glob, `$`, quote or blank.
_SIMPLE_PATH = re.compile(r"(?:~/)?[A-Za-z0-9_+,@%=:./-]+\Z")
_KNOWN_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[/\\]+[^/\\?#]+(?=[/\\?#])")
_PWD = re.compile(r"\$\( pwd \)|\$\{PWD\}")
_URLISH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[/\\]")
_PROMPT_URL = re.compile(r"(?i)\b(?:https?|ftp|file)://[^\s\"'<>`]+")
# an httpie request item: a header, a query or body field, a file to send (which the argument
# roles read), by a literal name
_REQUEST_ITEM = re.compile(r"[A-Za-z0-9_.\[\]-]+(:=@|:=|==|=@|@|:|=)")
# Package runners (npx, pnpm dlx, bunx…) read `owner/repo` and `github:owner/repo` as a
# repository to fetch (a scoped `@scope/pkg` or a `./path` is not one).
_PACKAGE_RUNNERS = frozenset({"npx", "pnpx", "bunx", "pnpm", "yarn", "npm"})
_GIT_SHORTHAND = re.compile(
    r"(?:(github|gitlab|bitbucket|gist):)?([A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+)(?:#\S*)?\Z")
_SHORTHAND_HOSTS = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org",
                    "gist": "gist.github.com"}
_REMOTE = re.compile(r"(?:[^/@:\s]+@)?([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):")
_INTERPRETERS = frozenset({"python", "python2", "python3", "perl", "ruby", "node", "php", "lua",
                           "Rscript", "R", "bun", "deno", "osascript", "pwsh", "powershell",
                           "tclsh", "awk", "gawk", "mawk", "nawk"})
_SHELL_RUNNERS = frozenset({*L.SHELLS, "csh", "tcsh", "pwsh"})
_READ_VALUES = frozenset({"-d", "-p", "-n", "-N", "-u", "-t", "-i", "-a"})  # read's options
_CODE_RUNNERS = frozenset({*_SHELL_RUNNERS, "source", "."})
# Fetcher options whose value says where the request goes (all other values are data).
_URL_OPTIONS = {"--url": "url", "-x": "url", "--proxy": "url", "--preproxy": "url",
                "--doh-url": "url", "--resolve": "resolve", "--connect-to": "connect"}
_RESOLVE = re.compile(r"\+?[^:]*:(?P<port>[0-9]*):(?P<addr>.+)\Z")
_CONNECT_TO = re.compile(r"[^:]*:[0-9]*:(?P<addr>\[[^\]]*\]|[^:]*):(?P<port>[0-9]*)\Z")
_SIGNALLERS = frozenset({"kill", "pkill", "killall", "fuser", "skill", "killall5"})
# Programs that attach to a running process to trace, debug, dump, enter or re-tune it: the
# process is theirs to stop, read and change, so the pids they take are signal targets, as
# kill's are. program → (options whose value is a pid, which operands are pids: "all" of
# them, gdb's "second" (`gdb PROG PID`) or "" none, whether one-letter options cluster).
_ATTACHERS: dict[str, tuple[frozenset[str], str, bool]] = {
    "gdb": (frozenset({"-p", "-pid", "--pid"}), "second", False),
    "strace": (frozenset({"-p"}), "", True),
    "ltrace": (frozenset({"-p"}), "", True),
    "lldb": (frozenset({"-p", "--attach-pid"}), "", False),
    "gcore": (frozenset(), "all", False),
    "py-spy": (frozenset({"-p", "--pid"}), "", False),
    "perf": (frozenset({"-p", "--pid"}), "", False),
    "eu-stack": (frozenset({"-p", "--pid"}), "", False),
    "pstack": (frozenset(), "all", False),
    "reptyr": (frozenset(), "all", False),
    "pyrasite": (frozenset(), "all", False),
    "pyrasite-shell": (frozenset(), "all", False),
    "nsenter": (frozenset({"-t", "--target"}), "", True),
    "criu": (frozenset({"-t", "--tree"}), "", False),
    "prlimit": (frozenset({"-p", "--pid"}), "", False),
    "renice": (frozenset({"-p", "--pid"}), "", False),
    "gdbserver": (frozenset({"--attach"}), "", False),
}
_GDB_ATTACH = re.compile(r"\s*attach\s+(\S+)")  # `gdb -ex 'attach PID'`
_SIGNAL_VALUES = {
    "kill": frozenset({"-s", "-n"}),
    "pkill": frozenset({"-u", "-U", "-g", "-G", "-s", "-t", "-P", "-F", "--signal", "--session",
                        "--parent", "--uid", "--euid", "--group", "--pgroup", "--pidfile",
                        "--ns", "--nslist"}),
    "killall": frozenset({"-u", "-s", "--signal", "-o", "-y", "--user", "--older-than",
                          "--younger-than", "-n"}),
    "fuser": frozenset({"-n", "--namespace"}),
    "skill": frozenset({"-u", "-t", "-p", "-c"}),
}


class Effect(NamedTuple):
    """One thing a call does: a kind, a target and where it came from."""

    kind: str
    target: str
    unknown: bool = False    # part of the target is only known at run time
    wild: bool = False       # the target is a glob (it may name several paths)
    recursive: bool = False  # a whole tree: the target and everything below it
    source: str = ""         # the command part or the argument that produced it
    host: str = ""           # network effects: the canonical host
    flow: str = ""           # what the line's data flow shows (rampartd.policy.flow.FLOWS)

    def shown(self) -> str:
        """The target as a person reads it (`…` where a part is only known at run time)."""
        text = self.target.replace(UNKNOWN, "…")
        return f"{text}/**" if self.recursive else text


# The defaults of the fields after `host` (none today), for effects built by Builder.record.
_EFFECT_TAIL = Effect("", "")[7:]


def _key(effect: Effect) -> tuple[str, str, bool, str]:
    """What makes two effects the same one."""
    return effect.kind, effect.target, effect.recursive, effect.flow


def _holds_dir(e: Effect, cwd: str) -> bool:
    """Could a delete's target be cwd or one of its ancestors? A glob (`rm -rf ../proj*`) is
    tried on each of them, segment by segment."""
    if not e.wild:
        return cwd == e.target or cwd.startswith(e.target.rstrip("/") + "/")
    parts = cwd.strip("/").split("/")
    globs = e.target.strip("/").split("/")
    return len(globs) <= len(parts) and all(
        fnmatch.fnmatchcase(name, glob) for name, glob in zip(parts, globs, strict=False))


def _produced(word: str) -> list[str] | None:
    """The selectors a word that is only a pid lookup's output stands for (shell.pids)."""
    if word == "$!":
        return [OWN_JOBS]  # the last job this shell started
    if not (word.startswith("$( ") and word.endswith(" )")):
        return None
    inner = word[3:-2]
    return None if any(c in inner for c in "$|;&<>`()") else selectors(inner.split())


def _tilde(word: str, home: str, cwd: str | None) -> str:
    """`~user/x` → that user's home (a sibling of ours, /root for root); `~+` → cwd."""
    if not word.startswith("~") or word.startswith(("~/",)) or word == "~":
        return word
    name, sep, rest = word[1:].partition("/")
    if name == "+":
        base = cwd or UNKNOWN
    elif name == "-":
        base = UNKNOWN
    elif name == "root":
        base = "/root"
    elif re.fullmatch(r"[A-Za-z0-9._-]+", name):
        # other users live next to us, or in the system's place for homes (root's is /root)
        parent = home.rstrip("/").rsplit("/", 1)[0]
        if parent in ("", "/", "/var", "/srv"):
            parent = "/Users" if home.startswith("/Users/") else "/home"
        base = f"{parent}/{name}"
    else:
        return word
    return base + (sep + rest if sep else "")


class Builder:
    """Collects the effects of one call; `add` keeps them unique and bounded."""

    def __init__(self, home: str, cwd: str | None) -> None:
        self.home = home
        self._home = home.rstrip("/")  # what `~/x` expands to is `{_home}/x`
        self.cwd = cwd
        self.workdir = cwd  # where the call starts (`cd` moves cwd, not this)
        self.out: list[Effect] = []
        self._seen: set[tuple[str, str, bool, str]] = set()
        self.links: dict[str, str] = {}  # symlinks made on the line: link path → target word
        # where mktemp creates (None: the line sets TMPDIR); a name judged, no file made
        self.tmpdir: str | None = "/tmp"  # noqa: S108
        self.fresh: set[str] = set()  # the paths mktemp made on the line (globs)

    def add(self, effect: Effect) -> None:
        """Record one effect (duplicates dropped; past MAX_EFFECTS see _overflow)."""
        key = _key(effect)
        if key in self._seen:
            return
        if len(self.out) >= MAX_EFFECTS:
            self._overflow()
            return
        self._seen.add(key)
        self.out.append(effect)

    def _overflow(self) -> None:
        """Past MAX_EFFECTS, what else the call does is not listed: one effect of every kind
        with a target only known at run time stands for it, so a deny or ask can still hold
        (as ask) and no allow covers the call."""
        if len(self.out) == MAX_EFFECTS:
            self.out += [Effect(kind, UNKNOWN, True, source=_UNLISTED) for kind in KINDS]

    def mark(self, old: Effect | None, marked: Effect) -> None:
        """Put an effect with its flow marker in place of the same one without (or add it)."""
        if old is not None and old in self.out:
            self.out[self.out.index(old)] = marked
            self._seen.add(_key(marked))
        else:
            self.add(marked)

    def mark_workdir(self, *, by_tool: bool = False) -> None:
        """Mark `delete:workdir` the deletions of the directory the call starts in or of one
        above it (`rm -rf ../project`, `cd .. && rm -rf project`, `rm -rf "$(pwd)"`, a delete
        tool given either: by_tool)."""
        cwd = self.workdir
        if not cwd or UNKNOWN in cwd:
            return
        for e in list(self.out):
            if e.kind == "delete" and not (e.unknown or e.flow) and _holds_dir(e, cwd) \
                    and (by_tool or e.source.partition(" ")[0] in _REMOVERS):
                self.mark(e, e._replace(flow="workdir"))

    def record(self, kind: str, target: str, unknown: bool, wild: bool, recursive: bool,
               source: str, host: str = "") -> None:
        """add(Effect(kind, target, …)) for the frequent effects, built by tuple.__new__ (the
        NamedTuple constructor costs twice as much)."""
        fields = (kind, target, unknown, wild, recursive, source, host, *_EFFECT_TAIL)
        self.add(tuple.__new__(Effect, fields))

    def path(self, word: str, *, dynamic: bool = False, cwd: str | None = None
             ) -> tuple[str, bool, bool]:
        """(normalised target, unknown, wild) of a path as the shell would see it."""
        cwd = self.cwd if cwd is None else cwd
        if not dynamic and _SIMPLE_PATH.match(word) and (cwd is None or UNKNOWN not in cwd):
            # the common case: plain names, no glob, `$`, `.` or `..` segment, doubled slash
            tilde = word.startswith("~/")
            rest = word[2:] if tilde else word
            segments = f"/{rest}/" if "." in rest else ""  # `/./` or `/../` in it: a dot segment
            if "//" not in rest and "/./" not in segments and "/../" not in segments:
                if tilde:
                    return f"{self._home}/{rest.rstrip('/')}", False, False
                if word[0] == "/":
                    return word.rstrip("/") or "/", False, False
                if cwd is None:
                    return word.rstrip("/"), False, False
                return f"{cwd.rstrip('/')}/{word.rstrip('/')}", False, False
        if dynamic and cwd is not None and UNKNOWN not in cwd and _PWD.search(word):
            word = _PWD.sub(lambda _: cwd or "", word)  # `$(pwd)`, `$PWD`: where we are
            dynamic = bool(DYNAMIC.search(word))
        if "$( " in word:  # (also where a caller matches words against paths it recorded)
            word, made = stand_in(word, self.tmpdir)  # `$(date +%F)`, `$(mktemp -d)`
            dynamic = bool(DYNAMIC.search(word))
            self.fresh.update(normalize_path(_tilde(f, self.home, cwd), cwd=cwd, home=self.home)
                              for f in made)
        text = fold_dynamic(word) if dynamic else word
        text = _tilde(text, self.home, cwd)
        unknown = UNKNOWN in text or (cwd is not None and UNKNOWN in cwd)
        if UNKNOWN in text and ".." in text.split("/"):
            return UNKNOWN, True, False  # `$X/../y` can be anywhere
        if not text.startswith(("/", "~", UNKNOWN)) and cwd is None \
                and ".." in text.split("/"):
            # above an unknown working directory: anywhere, ending in what follows the `..`s
            tail = normalize_path(text, cwd=None, home=self.home).split("/")
            while tail and tail[0] == "..":
                tail.pop(0)
            return "/".join([UNKNOWN, *tail]), True, has_glob(text)
        base = None if text.startswith(UNKNOWN) else cwd
        target = normalize_path(text, cwd=base, home=self.home) if text.strip() else "."
        if self.fresh and ".." in text.split("/") and self._climbs(text, base, target):
            return UNKNOWN, True, False  # out of a fresh temporary folder: its parent is unknown
        return target, unknown, has_glob(target) or False

    def _climbs(self, text: str, cwd: str | None, target: str) -> bool:
        """True if the path text passes through a fresh folder and ends outside it."""
        if text.startswith(("~/", "/")) or cwd is None:
            joined = self._home + text[1:] if text[0] == "~" else text
        else:
            joined = f"{cwd.rstrip('/')}/{text}"
        return any(joined.startswith(f + "/") and target != f and not target.startswith(f + "/")
                   for f in self.fresh)

    def file(self, kinds: Iterable[str], word: str, source: str, *, dynamic: bool = False,
             recursive: bool = False, cwd: str | None = None) -> None:
        """File effects of the given kinds on one path word (`-` is stdin or stdout)."""
        if word == "-" or (dynamic and word.startswith(("<( ", ">( ")) and word.endswith(" )")):
            return  # stdin/stdout, or a pipe to a command whose effects are its own
        target, unknown, wild = self.path(word, dynamic=dynamic, cwd=cwd)
        for kind in kinds:
            if kind in FILE_KINDS:
                self.record(kind, target, unknown, wild, recursive, source)
        if not self.links:
            return
        for link, to in list(self.links.items()):
            if target == link or target.startswith(link + "/"):
                # through a symlink made earlier on the line: the link's target is reached
                del self.links[link]  # (a link to itself cannot loop)
                self.file(kinds, to + target[len(link):], source, recursive=recursive)
                self.links[link] = to

    def url(self, text: str, source: str, *, default_scheme: str = "",
            dynamic: bool = False) -> None:
        """A network effect for a URL or host text (unknown when it is built at run time)."""
        if dynamic:
            # The host is known only when literal text names it before the first unknown part.
            head = fold_dynamic(text).split(UNKNOWN, 1)[0]
            m = _KNOWN_HOST.match(head)
            end = parse_url(m.group(0), default_scheme) if m else None
            if end is None or not end.host:
                self.add(Effect("network", UNKNOWN, True, False, False, source))
            else:
                self.record("network", end.url, False, False, False, source, end.host)
            return
        end = parse_url(text, default_scheme)
        if end is not None and end.scheme == "file" and not end.host:
            self.file(("read",), end.path or "/", source)  # `file:///etc/shadow` is that file
        elif end is not None and end.host:
            self.record("network", end.url, False, False, False, source, end.host)

    def env(self, assign: str, source: str) -> None:
        """An `env` effect for `NAME=value` (command.assigned: `${PWD}` is where we are)."""
        if "${PWD}" in assign:
            assign = _PWD.sub(lambda _: self.cwd or UNKNOWN, assign)
        self.add(Effect("env", assign, UNKNOWN in assign, False, False, source))

    def code(self, language: str, source: str, *, unknown: bool = False, flow: str = "") -> None:
        """A `code` effect: code whose meaning is only known at run time, or a risky one."""
        self.add(Effect("code", language, unknown, False, False, source, flow=flow))


def tool_effects(b: Builder, tool_class: str, params: Mapping[str, Any], *,
                 whole_dirs: bool = False) -> None:
    """The effects of a non-shell tool call, from its path and URL arguments (whole_dirs: a
    reader that reads a directory it is given whole)."""
    if tool_class in ("fetch", "read"):
        # (a fetch of a `file:` URL is a read of its path: toolnames.call_class)
        for key, value in params.items():
            if key.lower() not in URL_KEYS:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item:
                    b.url(item, f"params.{key}", default_scheme="https")
        prompt = params.get("prompt") if tool_class == "fetch" and not any(
            k.lower() in URL_KEYS for k in params) else None
        if isinstance(prompt, str) and "://" in prompt:
            # Gemini CLI's web_fetch takes the URLs inside its prompt (a prompt beside a url
            # only tells the host what to look for)
            for link in _PROMPT_URL.findall(prompt):
                b.url(link, "params.prompt")
        if tool_class == "fetch":
            return
    kinds = CLASS_KINDS.get(tool_class, ("read", "write"))
    recursive = tool_class == "grep"  # a search reads all below its path
    trees = {"path"}  # the arguments `recursive` is for (a search's, every folder it names)
    found: list[tuple[str, str]] = []
    # Tool globs with `**`: the search tools descend into hidden directories too, so from the
    # home or above (`~/**/credentials`) `**` may be any directories, ~/.aws and ~/.ssh too,
    # as a search of the home without a glob reads them (in a project it stays a wildcard).
    any_depth: set[str] = set()
    # The path arguments present, in PATH_KEYS order, then the lists (calls have few keys).
    forms = {k: form for k in params if (form := _key_form(k)) in _PATH_KEY_ORDER}
    if recursive:
        trees.update(k for k in forms if forms[k] in _PATH_LIST_KEYS)
    for key in sorted(forms, key=lambda k: _PATH_KEY_ORDER[forms[k]]):
        value = params[key]
        if forms[key] in _PATH_LIST_KEYS:
            if isinstance(value, list):
                found += [(key, v) for v in value if isinstance(v, str) and v]
        elif isinstance(value, str) and value:
            found.append((key, value))
    if tool_class in ("grep", "glob"):
        base = params.get("path") if isinstance(params.get("path"), str) else None
        base = base or "."
        if not any(k == "path" for k, _ in found):
            found.append(("path", base))
        for key in ("pattern", "glob", "include") if tool_class == "glob" else ("glob",
                                                                               "include"):
            value = params.get(key)
            if isinstance(value, str) and value:
                found = [(k, v) for k, v in found if k != "path"]
                joined = value if value.startswith(("/", "~")) else \
                    f"{base.rstrip('/')}/{value if '/' in value else '**/' + value}"
                found.append((key, joined))
                recursive = False
                if "**" in joined.split("/"):
                    any_depth.add(key)
    if tool_class == "read" and whole_dirs:
        # Gemini CLI's read_many_files reads a directory it is given whole, and what its
        # `include` globs select below each path
        recursive, trees = True, set(forms)
        value = params.get("include")
        patterns = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        bases = [v for _, v in found] or ["."]
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern:
                continue
            for base in bases:
                joined = pattern if pattern.startswith(("/", "~")) else \
                    f"{base.rstrip('/')}/{pattern}"
                found.append(("include", joined))
                if "**" in joined.split("/"):
                    any_depth.add("include")
    if tool_class == "edit":
        for key, value in params.items():
            if isinstance(value, str) and ("*** " in value or "+++ " in value):
                found += [(key, m.group(1)) for m in _PATCH_PATH.finditer(value)
                          if m.group(1) != "/dev/null"]
    for key, value in found:
        if key in any_depth:
            target, unknown, _ = b.path(value)
            top = target.split("/**", 1)[0]
            if top == "" or b._home == top or b._home.startswith(top + "/"):
                for kind in kinds:
                    b.record(kind, target.replace("**", UNKNOWN), unknown, True, False,
                             f"params.{key}")
                continue
        # a deletion removes all below each path (a delete tool may take a directory)
        b.file(kinds, value, f"params.{key}",
               recursive=(recursive and key in trees) or tool_class == "delete")
    url = params.get("url")
    if isinstance(url, str) and url and tool_class != "read":  # (a read's: read above)
        b.url(url, "params.url")


# File servers publish a directory tree to whoever connects: they read all of it. program →
# the options whose value is that directory; their operands are taken for directories too
# (a port or a listen address read as one is a harmless extra tree; a home never missed).
_FILE_SERVERS: dict[str, frozenset[str]] = {
    "http-server": frozenset(), "serve": frozenset(), "live-server": frozenset(),
    "miniserve": frozenset(), "darkhttpd": frozenset(), "updog": frozenset({"-d", "--directory"}),
    "webfsd": frozenset({"-r"}), "httpd": frozenset({"-h"}), "static-web-server":
    frozenset({"-d", "--root"}), "simple-http-server": frozenset(),
}
# Their options that take a port or an address (that value is no directory).
_SERVER_VALUES = frozenset({"-p", "--port", "-a", "--address", "-b", "--bind", "-l", "--listen",
                            "-i", "--interfaces"})
# Interpreters' built-in file servers: (program family, the words that start one, options).
_BUILT_IN_SERVERS: tuple[tuple[str, tuple[str, ...], frozenset[str]], ...] = (
    ("python", ("-m", "http.server"), frozenset({"-d", "--directory"})),
    ("python", ("-m", "SimpleHTTPServer"), frozenset()),
    ("php", ("-S",), frozenset({"-t"})),
    ("ruby", ("-run", "-e", "httpd"), frozenset()),
    ("ruby", ("-run", "-ehttpd"), frozenset()),
)


def _served_dirs(program: str, argv: Sequence[str]) -> list[tuple[int, str]] | None:
    """(argv index, directory) of what a file server publishes ([]: the working directory),
    or None when the command serves no files."""
    options = _FILE_SERVERS.get(program)
    args_at = 1
    family = ""
    if options is None:
        family = _family(program) or ""
        if not family:
            return None  # (most programs: neither a file server nor an interpreter)
        for language, words, opts in _BUILT_IN_SERVERS:
            n = len(words)
            if family == language and tuple(argv[1:1 + n]) == words:
                options, args_at = opts, 1 + n
                break
        if options is None:
            return None
    named: list[tuple[int, str]] = []
    for k in range(args_at, len(argv)):
        name, eq, value = argv[k].partition("=")
        if name not in options:
            continue
        if eq:
            named.append((k, value))
        elif k + 1 < len(argv):
            named.append((k + 1, argv[k + 1]))
    if named or family in ("python", "php"):
        return named  # (their operands are a port or a router script, not directories)
    return [(k, argv[k]) for k in range(args_at, len(argv)) if not argv[k].startswith("-")
            and argv[k - 1] not in _SERVER_VALUES]


def _attached_pids(program: str, argv: Sequence[str], dynamic: set[int]
                   ) -> list[tuple[int, str]]:
    """(argv index, pid text) of the processes an attaching program (_ATTACHERS) takes:
    `-p PID`, `-pPID`, `--pid=PID`, a cluster ending in the letter (`strace -fp PID`), pid
    operands (numbers, or words only known at run time), gdb's `-ex 'attach PID'`. A
    gdbserver `--attach COMM PID` names it last."""
    options, operands, cluster = _ATTACHERS[program]
    out: list[tuple[int, str]] = []
    plain: list[int] = []
    k = 1
    while k < len(argv):
        t = argv[k]
        name, eq, value = t.partition("=")
        if name in options:
            if eq:
                out.append((k, value))
            elif k + 1 < len(argv):
                k += 1
                out.append((k, argv[-1] if program == "gdbserver" else argv[k]))
        elif program == "gdb" and t.lstrip("-") in ("ex", "eval-command") and k + 1 < len(argv):
            k += 1
            m = _GDB_ATTACH.match(argv[k])
            if m is not None:
                out.append((k, m.group(1)))
        elif cluster and (at := L.cluster_value(t, options)):
            if at < len(t) - 1:
                out.append((k, t[at + 1:]))
            elif k + 1 < len(argv):
                k += 1
                out.append((k, argv[k]))
        elif not t.startswith("-"):
            plain.append(k)
        k += 1
    if operands == "second":
        plain = plain[1:2]  # `gdb PROG PID` (or PROG CORE, a file: not a number)
    return out + [(k, argv[k]) for k in plain if operands and (argv[k].isdigit() or k in dynamic)]


def _signal_targets(program: str, args: Sequence[str]) -> list[int] | None:
    """argv indexes of the processes a signalling command targets (None: it signals none)."""
    values = _SIGNAL_VALUES.get(program, frozenset())
    if program == "fuser" and not any(a == "-k" or (a.startswith("-") and not a.startswith("--")
                                                    and "k" in a[1:]) for a in args):
        return None
    if program == "kill" and any(a in ("-l", "-L", "--list", "--table") for a in args):
        return None
    out: list[int] = []
    j = 0
    rest = False
    while j < len(args):
        t = args[j]
        if rest or not t.startswith("-") or t == "-":
            out.append(j + 1)
        elif t == "--":
            rest = True
        elif t in values:
            j += 1
        elif program == "kill" and j == len(args) - 1 and not out:
            out.append(j + 1)  # a lone `kill -1`: read it as the target, the cautious way
        j += 1
    return out


class ShellEffects:
    """Effects of a parsed command line, component by component, following `cd`."""

    def __init__(self, b: Builder) -> None:
        self.b = b
        self.depth = 0  # inline code running commands that run inline code…
        self.fetched: set[str] = set()  # files a fetcher wrote earlier on the line
        self.prev: Component | None = None  # the component before (a pipe's producer)
        self.stages: list[Component] = []  # the pipeline so far, this component last
        self.trees: set[int] = set()  # argv positions that stand for a whole tree (xargs)
        # `find src … | while read f`: the variables holding what a lister printed → its globs
        self.listed: dict[str, str] = {}
        # Files written earlier on the line → their content when it is known (`echo … > f`,
        # a heredoc into f), and directories filled from the network (`git clone URL d`).
        self.written: dict[str, str | None] = {}
        self.fetched_dirs: set[str] = set()
        # what runs later, where the shell is then: trap actions (script, source, the working
        # directory when set) run again at the line's end; aliases (name → value) where used
        self.at_exit: list[tuple[str, str, str | None]] = []
        self.alias_values: dict[str, str] = {}

    def run(self, parsed: ParsedCommand) -> None:
        """Add the effects of every component of a parsed command."""
        b = self.b
        if "TMPDIR" in parsed.source:
            b.tmpdir = None
        for assign in parsed.assigns:
            b.env(assign, assign)
        for comp in parsed.components:
            if self.trees:
                self.trees = set()
            if comp.piped:
                self.stages.append(comp)
            else:
                self.stages = [comp]
            self.component(comp)
            self.prev = comp
        for old, marked in flow_effects(parsed.components, b.out):
            b.mark(old, marked)

    def component(self, comp: Component) -> None:
        """Add one simple command's effects."""
        b = self.b
        src = comp.text
        argv = list(comp.argv)
        dynamic = set(comp.unknown) if comp.unknown else set()
        for assign in comp.assigns:
            b.env(assign, src)
        if comp.redirs:
            self.redirects(comp)
        if not argv:
            return
        program = argv[0]
        for launcher in comp.launchers:
            b.record("exec", launcher, False, False, False, src)
        b.record("exec", program, comp.dynamic, False, False, src)
        if comp.dynamic:
            return
        if program == "read":
            self.read_listed(comp, argv)
            return
        if self.listed and dynamic:
            self.use_listed(argv, dynamic)
        if comp.path and _URLISH.match(comp.path):
            # `npx https://x/p.tgz`: a program fetched and run in one go
            b.url(comp.path, src)
            b.code(program, f"{src} (runs a program from the network)", unknown=True,
                   flow="fetched")
        elif comp.path and _PACKAGE_RUNNERS.intersection(comp.launchers) and (
                m := _GIT_SHORTHAND.match(comp.path)) is not None:
            # `npx owner/repo`, `npx github:owner/repo`: a repository fetched and run
            b.url(f"https://{_SHORTHAND_HOSTS[m.group(1) or 'github']}/{m.group(2)}", src)
            b.code(program, f"{src} (runs a program from a git repository)", unknown=True,
                   flow="fetched")
        elif comp.path:
            # `~/Downloads/setup.sh`, `cd /dev/shm && ./x`: the file run, where it lies
            b.record("exec", b.path(comp.path)[0], False, False, False, src)
        if not dynamic and not comp.launchers and ":" not in src and not self.written \
                and not self.fetched_dirs and not self.alias_values:
            if program in _ROLES_ONLY:
                self.roles(argv, dynamic, src)  # `cat f`, `rm -rf d`: argument roles only
                return
            if program == "git" and not _GIT_ROLE_WORDS.intersection(argv):
                return  # `git status`: it only runs
            if program not in _HANDLED and _family(program) is None and not self.fetched \
                    and not (program in _FILLERS and ("download" in argv or "pack" in argv)):
                return  # `npm test`: a program with no argument roles, nothing to unwrap
        if "xargs" in comp.launchers and not _xargs_replaces(comp):
            # (with -I the input replaces words, marked run-time-only by the parser)
            extra = comp.stdin.split() if comp.stdin is not None else [UNKNOWN]
            if comp.stdin is None and comp.piped and self.prev is not None \
                    and not _stdin_file(comp) and not _deletes_operands(argv):
                # read, count, compile what a lister printed: bounded by where it looked;
                # deleting by a list nobody has seen stays unknown (asks)
                listed = self.listing()
                if listed is not None:
                    extra = listed
                    self.trees = set(range(len(argv), len(argv) + len(listed)))
            if program in _SIGNALLERS and comp.stdin is None and comp.piped \
                    and self.prev is not None and not self.prev.launchers:
                extra = selectors(self.prev.argv) or extra  # lsof -ti:3000 | xargs kill
            for word in extra:
                if word == UNKNOWN:
                    dynamic.add(len(argv))
                argv.append(word)
        if program in ("cd", "pushd"):
            self.cd(argv, dynamic)
            return
        if program in ("export", "declare", "typeset", "setenv", "local", "readonly"):
            for k, word in enumerate(argv[1:], 1):
                if "=" in word and not word.startswith("-"):
                    name, _, value = word.partition("=")
                    text = assigned(name, value) if k in dynamic else word
                    b.env(text, src)
        if program == "alias":
            self.aliases(argv, src)
        elif program in self.alias_values:
            # from here, wherever `cd` went (an alias is not expanded inside its own value)
            value = self.alias_values.pop(program)
            self.script(value, src)
            self.alias_values[program] = value
        if program == "trap":
            self.trap(argv, dynamic, src)
        if program in _SIGNALLERS:
            targets = [(k, argv[k]) for k in _signal_targets(program, argv[1:]) or ()]
        else:
            targets = _attached_pids(program, argv, dynamic) if program in _ATTACHERS else []
        for k, target in targets:
            produced = _produced(target) if k in dynamic else None
            if produced is not None:  # kill $(lsof -t -i:3000): what that lookup selects
                for selector in produced:
                    b.add(Effect("signal", selector, source=src))
                continue
            b.add(Effect("signal", fold_dynamic(target) if k in dynamic else target,
                         k in dynamic, source=src))
        self.roles(argv, dynamic, src)
        if program == "socat":
            for at, kinds, text in socat_addresses(argv, dynamic):
                if kinds == ("network",):
                    b.url(text, src, dynamic=at in dynamic)
                else:
                    b.file(kinds, text, src, dynamic=at in dynamic)
        if program == "find":
            self.find_exec(argv, dynamic, src)
        if program in _SEDS:
            self.sed(argv, dynamic, src)
        served = _served_dirs(program, argv)
        if served is not None:
            for k, word in served or [(-1, ".")]:  # none named: the working directory
                b.file(("read",), word, src, dynamic=k in dynamic, recursive=True)
        if ":" in src or program in FETCHERS or program == "wget":
            self.urls(program, argv, dynamic, src)
            if program in FETCHERS or program == "wget":
                self.downloads(argv, src)
        if program in ("scp", "rsync"):
            self.copies_in(argv, src)
        self.runs_downloaded(program, argv, src)
        self.fills_from_network(comp, program, argv)
        if program == "tee":
            for t in roles(argv):
                self.wrote(self.b.path(argv[t.at])[0], comp.stdin, append="-a" in argv)
                if self.from_fetcher(comp):
                    self.fetched.add(self.b.path(argv[t.at])[0])
        if program == "ln" and len(argv) >= 3:
            self.link(argv)
        if self.written or self.fetched_dirs:
            self.runs_written(comp, program, argv, dynamic, src)
        if program in _MAKES:
            self.makefile(comp, argv, src)
        if program in _CODE_RUNNERS or _family(program) is not None:
            self.runs_code(comp, program, argv, dynamic, src)
        elif program in unread.LANGUAGES:
            self.unread_code(comp, program, argv, src)

    def unread_code(self, comp: Component, program: str, argv: list[str], src: str) -> None:
        """Inline code, or a program fed on stdin, in a language not read here."""
        stdin = comp.stdin if comp.stdin is not None else UNKNOWN if comp.piped else None
        self.unread_found(program, unread.scan(program, argv[1:], stdin), src)

    def unread_found(self, program: str, found: unread.Found, src: str) -> None:
        """The effects of what unread.scan found in such code."""
        for word in found.paths:
            self.b.file(("read",), word, src)
        if found.runs:
            self.b.code(program, f"{src} (code in a language not read here)", unknown=True)
            for line in found.commands:
                self.script(line, src)

    def listing(self) -> list[str] | None:
        """Globs bounding the names piped into this component: a lister's, also through
        filters that print some of its lines (`ls -t logs | head -1`)."""
        for producer in reversed(self.stages[:-1]):
            if not _selects_lines(producer):
                return _listed_under(producer)
            if not producer.piped:
                return None  # a filter reading no lister (`head names.txt`)
        return None

    def read_listed(self, comp: Component, argv: list[str]) -> None:
        """`… | while read f`: f holds a name the producer printed (bounded when it is a lister
        whose output lies under one tree, as for `… | xargs`)."""
        listed = self.listing() if comp.piped and self.prev is not None else None
        names: list[str] = []
        j = 1
        while j < len(argv):
            if argv[j] in _READ_VALUES:
                j += 2
                continue
            if not argv[j].startswith("-"):
                names.append(argv[j])
            j += 1
        for name in names:
            if listed is not None and len(listed) == 1:
                self.listed[name] = listed[0]
            else:
                self.listed.pop(name, None)

    def use_listed(self, argv: list[str], dynamic: set[int]) -> None:
        """Words that are only such a variable stand for what the lister printed, where the
        program only reads them (deleting by a list nobody has seen stays unknown)."""
        changed = {t.at for t in roles(argv) if not set(t.kinds) <= {"read"}}
        for k in sorted(dynamic - changed):
            name = argv[k][2:-1] if argv[k].startswith("${") and argv[k].endswith("}") else ""
            glob = self.listed.get(name)
            if glob is not None:
                argv[k] = glob
                dynamic.discard(k)
                self.trees.add(k)

    def wrote(self, target: str, content: str | None, *, append: bool = False) -> None:
        """Remember a file written on the line (content None: not known before it runs)."""
        if append and target in self.written:
            before = self.written[target]
            content = None if before is None or content is None else before + content
        self.written[target] = content

    def fills_from_network(self, comp: Component, program: str, argv: list[str]) -> None:
        """`git clone URL [d]`, and unpacking a download (`curl … | tar x`, `unzip got.zip`):
        what lands there came from the network."""
        if program not in _FILLERS:
            return
        args = [a for a in argv[1:] if not a.startswith("-")]
        if program in ("npm", "pnpm", "yarn"):
            if args[:1] == ["pack"] and len(args) >= 2:  # `npm pack NAME` downloads NAME
                where = next((argv[k + 1] for k, a in enumerate(argv[:-1])
                              if a == "--pack-destination"), ".")
                self.fetched_dirs.add(self.b.path(where)[0])
            return
        folder = _DOWNLOAD_FOLDER.get(program)
        if folder and (args[:1] == ["download"] or args[1:2] == ["download"]):
            # `pip download`, `gh release download`, `gh run download`: into a folder or here
            where = "."
            for k, a in enumerate(argv):
                if a in folder and k + 1 < len(argv):
                    where = argv[k + 1]
                elif a.startswith(f"{folder[1]}="):
                    where = a.split("=", 1)[1]
            self.fetched_dirs.add(self.b.path(where)[0])
            return
        if program == "git" and "clone" in argv:
            # operands of `git clone`, skipping option values (`--depth 1`, `-b main`)
            args = [a for k, a in enumerate(argv[1:], 1) if not a.startswith("-")
                    and argv[k - 1] not in GIT_CLONE_VALUES]
        if program == "git" and args[:1] == ["clone"] and len(args) >= 2:
            name = args[2] if len(args) >= 3 else \
                args[1].rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
            if name:
                self.fetched_dirs.add(self.b.path(name)[0])
            return
        if program not in ("tar", "bsdtar", "gtar", "unzip", "7z", "bsdunzip"):
            return
        if not self.from_fetcher(comp) and not any(self.b.path(a)[0] in self.fetched for a in args):
            return
        for e in self.b.out:
            if e.source == comp.text and e.kind == "write" and e.recursive:
                self.fetched_dirs.add(e.target)
        if program != "tar" and not any(e.source == comp.text and e.kind == "write"
                                        for e in self.b.out):
            self.fetched_dirs.add(self.b.cwd or UNKNOWN)  # unzip into here

    def from_fetcher(self, comp: Component) -> bool:
        """True if the component reads a fetcher's output from a pipe (`curl … | tar x`)."""
        return comp.piped and self.prev is not None and bool(self.prev.argv) and (
            self.prev.argv[0] in FETCHERS or self.prev.argv[0] == "wget")

    def in_fetched_dir(self, target: str) -> bool:
        """True if a path is in a directory filled from the network earlier on the line."""
        return any(target == d or target.startswith(d.rstrip("/") + "/")
                   for d in self.fetched_dirs)

    def link(self, argv: list[str]) -> None:
        """`ln -s TARGET NAME`: paths through NAME reach TARGET (for the rest of the line)."""
        operands = [a for a in argv[1:] if not a.startswith("-")]
        if len(operands) != 2 or has_glob(operands[1]):
            return
        name, unknown, _ = self.b.path(operands[1], dynamic="$" in operands[1])
        if unknown:
            return  # where the link is is unknown, and so is every path through it
        symbolic = _flag(argv[1:], "s", "--symbolic")
        where = name.rsplit("/", 1)[0] or "/" if symbolic else None  # relative to the link
        to, unknown, wild = self.b.path(operands[0], cwd=where, dynamic="$" in operands[0])
        self.b.links[name] = UNKNOWN if unknown or wild else to  # a link to anything

    def runs_written(self, comp: Component, program: str, argv: list[str], dynamic: set[int],
                     src: str) -> None:
        """Running a file written or fetched earlier on the line: its known content is
        checked like a script given here; unknown content is code nobody has seen."""
        scripts: list[tuple[str, str]] = []  # (path word, language)
        if comp.path:
            scripts.append((comp.path, "shell"))
        language = "shell" if program in _CODE_RUNNERS else _family(program) or (
            program if program in unread.LANGUAGES else None)
        if language is not None:
            if program in _SHELL_RUNNERS:
                mode, j = L.shell_script_index(argv[1:])
                if mode == "file":
                    scripts.append((argv[j + 1], language))
            else:
                word = next((a for k, a in enumerate(argv[1:], 1)
                             if not a.startswith("-") and k not in dynamic), None)
                if word is not None:
                    scripts.append((word, language))
        for word, lang in scripts:
            target = self.b.path(word)[0]
            if target in self.written:
                content = self.written[target]
                if content is None:
                    self.b.code(lang, f"{src} (runs a file written on the same line)",
                                unknown=True)
                elif lang == "shell":
                    self.script(content, src)
                elif lang in unread.LANGUAGES:  # `echo 'exec …' > x.tcl && tclsh x.tcl`
                    self.unread_found(lang, unread.scan(lang, [], content), src)
                else:
                    self.inline(lang, content, src)
            elif self.in_fetched_dir(target):
                self.b.code(lang, f"{src} (runs a file it downloaded)", unknown=True,
                            flow="fetched")

    def makefile(self, comp: Component, argv: list[str], src: str) -> None:
        """`make -f -`: the makefile comes from stdin, and its recipes are shell commands;
        `make` in a directory cloned or unpacked on the line runs the recipes it fetched."""
        where = next((argv[k + 1] for k, a in enumerate(argv[:-1]) if a in ("-C",
                                                                              "--directory")),
                     self.b.cwd or UNKNOWN)
        if self.fetched_dirs and self.in_fetched_dir(self.b.path(where)[0]):
            self.b.code("make", f"{src} (runs a makefile it downloaded)", unknown=True,
                        flow="fetched")
        reads_stdin = False
        for k, a in enumerate(argv[1:], 1):
            value = argv[k + 1] if a in ("-f", "--file", "--makefile") and k + 1 < len(argv) \
                else a.split("=", 1)[1] if a.startswith(("--file=", "--makefile=")) \
                else a[2:] if a.startswith("-f") and len(a) > 2 else None
            reads_stdin |= value in STDIN_FILES
        if not reads_stdin or _stdin_file(comp):
            return
        if comp.stdin is None:
            self.b.code("make", f"{src} (a makefile read from a pipe)", unknown=True)
            return
        recipes = []
        for line in comp.stdin.split("\n"):
            rule = line.partition(":")[2]
            if line.startswith("\t"):
                recipes.append(line.lstrip("\t").lstrip("@-+ "))
            elif ";" in rule and not rule.startswith("="):
                recipes.append(rule.partition(";")[2].lstrip("@-+ "))  # `all: ; CMD`
        if "$" in comp.stdin.replace("$$", ""):
            self.b.code("make", f"{src} (a makefile with variables)", unknown=True)
        for line in recipes:
            self.script(line.replace("$$", "$"), src)

    def script(self, content: str, src: str) -> None:
        """A shell script whose text is known: its commands count as run here."""
        parsed = parse_command(content)
        if parsed.problem is not None or self.depth >= MAX_INLINE_DEPTH:
            self.b.code("sh", f"{src} (a script that cannot be checked)", unknown=True)
            return
        self.depth += 1
        self.run(parsed)
        self.depth -= 1

    def downloads(self, argv: list[str], src: str) -> None:
        """Remember what a fetcher wrote (`-o f`, `-O`, the remote name) for `… && sh f`."""
        for e in self.b.out:
            if e.source == src and e.kind == "write":
                self.fetched.add(e.target)
        if argv[0] == "aria2c":  # `-o NAME` is inside `-d DIR`
            values = {a: argv[k + 1] for k, a in enumerate(argv[:-1]) if a in ("-d", "--dir",
                                                                              "-o", "--out")}
            where = values.get("-d") or values.get("--dir")
            name = values.get("-o") or values.get("--out")
            if where and name:
                self.fetched.add(self.b.path(f"{where.rstrip('/')}/{name}")[0])
        if any(a in ("-O", "--remote-name", "--remote-name-all") or (
                a.startswith("-") and not a.startswith("--") and "O" in a[1:])
               for a in argv[1:]) or argv[0] in ("wget", "aria2c"):
            for e in self.b.out:
                if e.source == src and e.kind == "network" and e.target != UNKNOWN:
                    name = e.target.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
                    if name and "." in name:
                        self.fetched.add(self.b.path(name)[0])

    def copies_in(self, argv: list[str], src: str) -> None:
        """`scp HOST:f dest`, `rsync -a HOST:d/ dest`: what lands in dest came from another
        machine, so running it later on the line runs fetched code."""
        mine = [e for e in self.b.out if e.source == src]
        if not any(leaves_machine(e) for e in mine):
            return
        # the names the remote files keep in a destination directory (`scp HOST:i.sh .`)
        names = [posix_basename(w[m.end():]) for w in argv[1:]
                 if (m := _REMOTE.match(w)) and w[m.end():].strip("/")]
        for e in mine:
            if e.kind != "write":
                continue
            self.fetched.add(e.target)
            self.fetched.update(self.b.path(f"{e.target.rstrip('/')}/{name}")[0]
                                for name in names)
            if e.recursive:
                self.fetched_dirs.add(e.target)

    def runs_downloaded(self, program: str, argv: list[str], src: str) -> None:
        """Running or installing a file fetched earlier on the line runs code nobody has
        seen: `code`."""
        if not self.fetched and not self.fetched_dirs:
            return
        names = {posix_basename(f) for f in self.fetched}
        ran = program in names and program not in _HANDLED
        if not ran and (program in _CODE_RUNNERS or _family(program) is not None):
            # the script, the first word that is no option: `python3 x.py got.json` runs x.py
            script = next((a for a in argv[1:] if not a.startswith("-")), None)
            ran = script is not None and self.b.path(script)[0] in self.fetched
        if not ran and program in _INSTALLERS:
            # a downloaded file, or a package file `pip download`, `npm pack NAME` or an
            # unpack put there
            ran = any(not a.startswith("-") and (self.b.path(a)[0] in self.fetched or (
                a.endswith(_PACKAGE_FILES) and self.in_fetched_dir(self.b.path(a)[0])))
                for a in argv[1:])
        if ran:
            self.b.code(program, f"{src} (runs a file it downloaded)", unknown=True,
                        flow="fetched")

    def roles(self, argv: list[str], dynamic: set[int], src: str) -> None:
        """The file and host effects of a command's arguments (the argument-role table)."""
        b = self.b
        for at, kinds, recursive, value in roles(argv):
            if at == -1:
                b.file(kinds, ".", src, recursive=recursive)
                continue
            if at >= len(argv):
                continue
            word = value if value is not None else argv[at]
            unknown = at in dynamic
            if ("host" in kinds or "network" in kinds) and self.remote(
                    word, unknown, src, "network" in kinds):
                continue
            if at in self.trees and word.endswith("/**"):
                # everything a lister printed below DIR: judged like the tree DIR (`grep -r`)
                b.file(kinds, word[:-3] or "/", src, recursive=True)
                continue
            b.file(kinds, word, src, dynamic=unknown, recursive=recursive)

    def redirects(self, comp: Component) -> None:
        """`> f`, `>> f`, `&> f` write f; `< f` reads it; fd duplications name no file."""
        for redir in comp.redirs:
            op, _, target = redir.partition(" ")
            op = op.lstrip("0123456789")
            if op in ("<<", "<<-", "<<<") or not target:
                continue
            if op in (">&", "<&") and (target.isdigit() or target == "-"):
                continue
            if target.startswith(("<( ", ">( ")):
                continue  # a pipe to a command that is a component of its own
            dynamic = "$" in target or "`" in target
            kinds = ("read",) if op == "<" else ("read", "write") if op == "<>" else ("write",)
            self.b.file(kinds, target, comp.text, dynamic=dynamic)
            if "write" in kinds and not dynamic:
                self.wrote(self.b.path(target)[0], _output(comp) if op.endswith(">") or
                           op.endswith(">>") else None, append=op.endswith(">>"))

    def cd(self, argv: list[str], dynamic: set[int]) -> None:
        """`cd DIR` moves the working directory of what follows on the line."""
        args = [(k, a) for k, a in enumerate(argv[1:], 1) if not a.startswith("-") or a == "-"]
        if not args:
            self.b.cwd = self.b.home
            return
        k, word = args[0]
        if word == "-":
            self.b.cwd = UNKNOWN
            return
        target, _, _ = self.b.path(word, dynamic=k in dynamic)
        self.b.cwd = target

    def sed(self, argv: list[str], dynamic: set[int], src: str) -> None:
        """A sed script's own files (`r`, `w`, `s///w`) and commands (`e CMD`; `e` alone and
        `s///e` run the edited text, which is only known at run time)."""
        words = [fold_dynamic(a) if k in dynamic else a for k, a in enumerate(argv)]
        for script in sed_scripts(words[1:]) or ():
            found = scan_sed(script)
            for name in found.reads:
                self.b.file(("read",), name, src, dynamic=UNKNOWN in name)
            for name in found.writes:
                self.b.file(("write",), name, src, dynamic=UNKNOWN in name)
            for command in found.commands:
                self.script(command, src)
            if found.runs_text:
                self.b.code("sh", f"{src} (sed runs the edited text as a command)", unknown=True)

    def trap(self, argv: list[str], dynamic: set[int], src: str) -> None:
        """`trap 'rm -rf ~' EXIT`: the parser reads the action as a command of the line, where
        it is set; it runs again at the line's end, from where the line has moved to."""
        k = 2 if argv[1:2] == ["--"] else 1
        if len(argv) < k + 2 or argv[k] in ("-", "-p", "-l", "-P"):
            return  # listing traps, or resetting them
        if k in dynamic and DYNAMIC.search(without_shaped(argv[k])):
            self.b.code("sh", f"{src} (a trap action only known at run time)", unknown=True)
        else:
            self.at_exit.append((argv[k], src, self.b.cwd))

    def finish(self) -> None:
        """At the line's end, trap actions run again from where the line has moved to."""
        for content, src, cwd in self.at_exit:
            if self.b.cwd != cwd:
                self.script(content, src)

    def aliases(self, argv: list[str], src: str) -> None:
        """`alias x='rm -rf ~'`: its value runs again where x is used (see component)."""
        for word in argv[1:]:
            name, eq, value = word.partition("=")
            if eq and value:
                self.alias_values[name] = value  # (the parser reads it where it is set)

    def remote(self, word: str, unknown: bool, src: str, host_only: bool) -> bool:
        """A host or `host:path` operand: a network effect. True if the word was remote."""
        if unknown and host_only:
            self.b.add(Effect("network", UNKNOWN, True, False, False, src))
            return True
        if _URLISH.match(word):
            self.b.url(word, src)
            return True
        m = _REMOTE.match(word)
        if m is not None and not word.startswith(("/", ".", "~")):
            self.b.url(m.group(1), src, default_scheme="ssh")
            return True
        if host_only or ("@" in word and not word.startswith(("/", ".", "~"))):
            host = word.rsplit("@", 1)[-1]
            if re.fullmatch(r"[0-9]+", host):
                return True  # a port number
            self.b.url(host, src, default_scheme="ssh")
            return True
        return False

    def urls(self, program: str, argv: list[str], dynamic: set[int], src: str) -> None:
        """URLs among the arguments (any program), and every operand of a fetcher."""
        fetcher = program in FETCHERS or program == "wget"
        values = option_values(argv) if fetcher else {}
        items = False  # httpie/xh after the URL: request items (`Header:v`, `k=v`, `f@path`)
        for k, word in enumerate(argv[1:], 1):
            option = values.get(k)
            if option is not None:
                self.option_url(option, word, k in dynamic, src)
                continue
            if items and _REQUEST_ITEM.match(word):
                continue
            if _URLISH.match(word) or (fetcher and not word.startswith("-")
                                       and k not in dynamic and _hostish(word)):
                self.b.url(word, src, default_scheme="http" if fetcher else "",
                           dynamic=k in dynamic)
                items = program in HTTPIE
            elif fetcher and k in dynamic and not word.startswith("-"):
                self.b.url(word, src, default_scheme="http", dynamic=True)

    def option_url(self, option: str, word: str, dynamic: bool, src: str) -> None:
        """A fetcher option's value: a URL (`--url`, a proxy), where a host is really reached
        (`--resolve HOST:PORT:ADDR`, `--connect-to H:P:H2:P2`), or data (no network effect)."""
        kind = _URL_OPTIONS.get(option)
        if kind is None:
            return
        if dynamic:
            self.b.add(Effect("network", UNKNOWN, True, False, False, src))
            return
        if kind == "url":
            self.b.url(word, src, default_scheme="http")
            return
        # --resolve [+]HOST:PORT:ADDR[,ADDR…]; --connect-to HOST:PORT:HOST2:PORT2 (IPv6 in [])
        m = _RESOLVE.match(word) if kind == "resolve" else _CONNECT_TO.match(word)
        if m is None:
            self.b.add(Effect("network", UNKNOWN, True, False, False, src))  # where, unknown
            return
        port = m.group("port") or "443"
        for addr in m.group("addr").split(","):
            if addr:
                self.b.url(f"{addr}:{port}", src,
                           default_scheme="https" if port == "443" else "http")

    def find_exec(self, argv: list[str], dynamic: set[int], src: str) -> None:
        """`find ROOT -exec PROG … {} +`: PROG's roles applied to the trees find walks."""
        roots = [t for t in roles(argv) if t.recursive]
        for a, b_end in L.find_exec_commands(argv[1:]):
            sub = [posix_basename(w) if n == 0 else w for n, w in enumerate(argv[1 + a:1 + b_end])]
            for t in roles(sub):
                if t.at < len(sub) and "{}" in sub[t.at]:
                    for root in roots:
                        word = "." if root.at == -1 else argv[root.at]
                        self.b.file(t.kinds, word, src, dynamic=root.at in dynamic,
                                    recursive=True)
            if sub and (sub[0] in _SHELL_RUNNERS or sub[0] in _INTERPRETERS):
                self.b.code(sub[0], src, unknown=True)

    def runs_code(self, comp: Component, program: str, argv: list[str], dynamic: set[int],
                  src: str) -> None:
        """Shells and interpreters running a program only known at run time: `code`."""
        args = argv[1:]
        if program in ("source", "."):
            if not args or 1 in dynamic:
                self.b.code("sh", src, unknown=True)
            return
        if program in _SHELL_RUNNERS:
            mode, j = L.shell_script_index(args)
            if (mode == "stdin" and comp.stdin is None and not _stdin_file(comp)) or (
                    mode == "file" and (j + 1) in dynamic):
                self.b.code(program, src, unknown=True)
            return
        script = next((a for a in args if not a.startswith("-")), None) \
            if "<( " in src else None
        if script is not None and script.startswith("<( "):
            # `python3 <(curl …)`: the program is another command's output
            self.b.code(_family(program) or program, src, unknown=True)
            return
        inline, language_in = program_input(argv)
        if inline is not None:
            language, code = inline
            if dynamic:
                self.b.code(language, src, unknown=True)  # code built at run time
            self.inline(language, code, src)
            return
        if language_in is not None and not _stdin_file(comp):
            if comp.stdin is None:
                self.b.code(language_in, src, unknown=True)  # a program read from a pipe
            else:
                self.inline(language_in, comp.stdin, src)  # a heredoc or here-string

    def inline(self, language: str, code: str, src: str) -> None:
        """What inline code does: the commands it runs, the files and URLs it names, risks."""
        found = analyze(language, code)
        b = self.b
        for kind, paths in (("read", found.reads), ("write", found.writes),
                            ("delete", found.deletes), ("chmod", found.chmods)):
            for path in paths:
                target, unknown, wild = b.path(path)
                recursive = kind in ("delete", "chmod")
                b.add(Effect(kind, target, unknown, wild, recursive, src))
        for url in found.urls:
            b.url(url, src, dynamic=UNKNOWN in url)
        for reason in found.risky:
            b.add(Effect("code", language, False, source=f"{src} ({reason})",
                         flow="fetched" if reason == FETCHES_AND_EXECUTES else ""))
        if found.unknown_targets:
            b.add(Effect("code", language, True,
                         source=f"{src} (targets only known at run time)"))
        if self.depth < MAX_INLINE_DEPTH:
            self.depth += 1
            for command in found.commands:
                if UNKNOWN in command:
                    b.add(Effect("code", "sh", True, source=f"{src} (runs a computed command)"))
                    continue
                self.run(parse_command(command))
            self.depth -= 1
        elif found.commands:
            b.add(Effect("code", "sh", True, source=f"{src} (nested too deeply)"))


_FAMILIES: dict[str, str | None] = {}


def _family(program: str) -> str | None:
    """The interpreter family of a program name (memoised: names repeat, the test is regexes)."""
    if program in _FAMILIES:
        return _FAMILIES[program]
    found = family(program.lower())  # `Rscript` is the r family
    if len(_FAMILIES) < 4096:
        _FAMILIES[program] = found
    return found


def _hostish(word: str) -> bool:
    """A fetcher's operand that names a host (`example.com/x`, `10.0.0.1`, `localhost:8080`)."""
    end = parse_url(word, "http")
    return end is not None and bool(end.host) and (
        "." in end.host or ":" in end.host or end.host == "localhost")


# Options that make a lister print more than path names (sizes, modes, arbitrary formats).
_LISTER_FORMATS = frozenset({"-printf", "-fprintf", "-exec", "-execdir", "-ok", "-okdir",
                             "-ls", "-fls", "-l", "-n", "-g", "-o", "--format", "-x",
                             "--exec", "-X", "--exec-batch", "-s", "--stage", "-z"})


def _output(comp: Component) -> str | None:
    """What a command writes to stdout when that is known from its text (`echo x`, `printf`,
    `cat` of a heredoc); None otherwise."""
    if not comp.argv or comp.unknown:
        return None
    if comp.argv[0] in ("echo", "printf"):
        return L.echo_payload(comp.argv[0], list(comp.argv[1:])) + "\n"
    if comp.argv == ("cat",) and comp.stdin is not None:
        return comp.stdin
    return None


def _xargs_replaces(comp: Component) -> bool:
    """True if the component's xargs puts its input in place of a replace string (`-I {}`)."""
    return any(form.startswith("xargs ") and L.xargs_replace(form.split()[1:]) is not None
               for form in comp.forms[1:])


def _deletes_operands(argv: list[str]) -> bool:
    """True if words appended to argv would be deleted or changed (`xargs rm -f`)."""
    probe = [*argv, "x"]
    return any(t.at == len(argv) and not set(t.kinds) <= {"read"} for t in roles(probe))


def _listed_under(producer: Component) -> list[str] | None:
    """Globs covering every name a lister prints (`find src …` → `src/**`, `git ls-files`
    → `./**`), so `… | xargs cmd` acts on those; None when the output is not bounded."""
    argv = producer.argv
    if not argv or producer.unknown or producer.launchers or any(
            a in _LISTER_FORMATS or (a.startswith("-") and "=" in a and a.split("=")[0]
                                     in _LISTER_FORMATS) for a in argv[1:]):
        return None
    program = argv[0]
    if program == "find":
        roots = [t for t in roles(argv) if t.recursive]
        return [f"{'.' if t.at == -1 else argv[t.at].rstrip('/') or '/'}/**" for t in roots]
    if program == "git" and (argv[1:2] in (("ls-files",), ("ls-tree",))
                             or argv[1:3] == ("diff", "--name-only")):
        return None if any(a.startswith((":", "/", "~", "..")) for a in argv[2:]) else ["./**"]
    operands = [a for a in argv[1:] if not a.startswith("-")]
    if program == "ls":
        if _flag(argv[1:], "a", "--all") or "-f" in argv[1:]:
            return None  # `.` and `..` are printed too, and `..` is the folder above
        # a directory's entries are printed by name and used from here (`./NAME`, hidden
        # ones with -A); a file as given (what `./*` does not cover: a path, a hidden name)
        hidden = _flag(argv[1:], "A", "--almost-all")
        return ["./*", *(["./.*"] if hidden else []),
                *[a for a in operands if "/" in a or a.startswith((".", "~"))]]
    if program in ("fd", "fdfind"):
        dirs = operands[1:]  # fd PATTERN [DIR…]
        return [f"{a.rstrip('/') or '/'}/**" for a in dirs] if dirs else ["./**"]
    return None


# Filters that print some of their input lines whole (a lister's names stay its names).
_SEARCHERS = frozenset({"grep", "egrep", "fgrep", "rg"})  # (their one operand: the pattern)
_LINE_FILTERS = frozenset({"head", "tail", "sort", "uniq", "shuf", "tac", *_SEARCHERS})


def _selects_lines(comp: Component) -> bool:
    """True for a filter fed on stdin that prints some of its input lines unchanged."""
    argv = comp.argv
    if not argv or argv[0] not in _LINE_FILTERS or comp.launchers or comp.unknown:
        return False
    if any(a in ("-o", "-r") or a.startswith(("--only", "--replace")) for a in argv[1:]):
        return False  # parts of lines, or lines rewritten
    operands = [a for a in argv[1:] if not a.startswith("-")]
    return len(operands) <= (1 if argv[0] in _SEARCHERS else 0)  # (more: files it reads)


def _flag(args: Sequence[str], letter: str, name: str) -> bool:
    """True if the option is given: its long name, or its letter in a cluster (`-sf`)."""
    return any(a == name or (a[:1] == "-" and a[1:2] != "-" and letter in a) for a in args)


def _stdin_file(comp: Component) -> bool:
    """True if stdin is redirected from a literal file (`sh < script.sh` runs that file)."""
    for redir in comp.redirs:
        op, _, target = redir.partition(" ")
        if op.lstrip("0") == "<" and "$" not in target and not target.startswith("<("):
            return True
    return False


_SEDS = frozenset({"sed", "gsed"})
# Programs whose effects are their argument roles and nothing else (no URLs, code, targets).
_ROLES_ONLY = frozenset(name for name in PROGRAMS if family(name.lower()) is None) \
    - _CODE_RUNNERS \
    - FETCHERS - {"wget", "find", "alias", "ln", "tee", "unzip", "7z"} - _SIGNALLERS \
    - set(_ATTACHERS) - _SEDS - set(_FILE_SERVERS)
_MAKES = frozenset({"make", "gmake", "bmake"})
# git words that give it file effects (see roles._git); without them git only runs.
_GIT_ROLE_WORDS = frozenset({"-C", "clean", "clone"})
_FILLERS = frozenset({"git", "pip", "pip3", "tar", "bsdtar", "gtar", "unzip", "7z", "bsdunzip",
                      "npm", "pnpm", "yarn", "gh"})
# downloaders' option naming the folder they download into (short, long)
_DOWNLOAD_FOLDER = {"pip": ("-d", "--dest"), "pip3": ("-d", "--dest"), "gh": ("-D", "--dir")}
_PACKAGE_FILES = (".whl", ".tar.gz", ".tgz", ".zip", ".egg", ".deb", ".rpm", ".gem", ".pkg",
                  ".snap", ".flatpak", ".apk")
# Package installers: installing a file downloaded on the same line runs its install code.
_INSTALLERS = frozenset({"pip", "pip3", "pipx", "npm", "pnpm", "yarn", "bun", "gem", "uv",
                         "dpkg", "rpm", "apt", "apt-get", "snap", "flatpak", "installer"})
# Programs whose arguments mean something here; any other program only runs (an exec effect).
_HANDLED = frozenset({*_MAKES, *PROGRAMS, *SPECIAL, *_SIGNALLERS, *_ATTACHERS, *_FILE_SERVERS,
                      *_SEDS, *unread.LANGUAGES,
                      *_CODE_RUNNERS, *FETCHERS, "wget", "cd", "pushd", "export", "declare",
                      "typeset", "setenv", "local", "readonly", "alias", "trap"})


def call_effects(tool_class: str, params: Mapping[str, Any], parsed: ParsedCommand | None, *,
                 cwd: str | None, home: str, whole_dirs: bool = False) -> tuple[Effect, ...]:
    """Every effect of one call (the tool's class decides how its arguments are read)."""
    b = Builder(home, cwd)
    if parsed is not None:
        shell = ShellEffects(b)
        shell.run(parsed)
        shell.finish()
        b.mark_workdir()
    else:
        tool_effects(b, tool_class, params, whole_dirs=whole_dirs)
        if tool_class == "delete":
            b.mark_workdir(by_tool=True)  # delete_file of the project or a folder above it
    return tuple(b.out)
