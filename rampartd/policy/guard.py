"""The built-in guard: the policy that keeps agents from switching rampartd off.

It is compiled at start from the daemon's real runtime - its home, port, pid, systemd unit,
the agent hosts' hook configurations and the rampartd installation - and put ahead of every
user policy. It is not a file in the policy directory, so no edit there can remove it; only
the `guard` setting in config.yaml (a file the guard itself protects) relaxes it.

`Runtime.discover` reads the facts (environment, installation paths); everything else here
is pure: `guard_text` turns a Runtime into one policy document for the ordinary compiler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import posixpath
import re
import shlex
import shutil
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from rampartd.errors import ConfigError
from rampartd.hooks.install import HOST_CONFIGS, hook_executable, installed_commands
from rampartd.policy import guard_signals
from rampartd.policy.loader import RawDoc, parse_yaml


# rampartd.config imports this module to check the `guard` setting, so its Settings is named
# structurally here rather than imported (no import cycle).
class GuardSettings(Protocol):
    """The settings the guard is compiled from (rampartd.config.Settings has them)."""

    @property
    def home(self) -> Path: ...
    @property
    def policy_dir(self) -> Path: ...
    @property
    def port(self) -> int: ...
    @property
    def guard(self) -> str | tuple[str, ...]: ...


GUARD_POLICY = "rampartd-guard"
GUARD_FILE = "<rampartd-guard>"
GUARD_PRIORITY = -(2**31)  # documentation only: the guard is moved ahead of everything
UNIT = "rampartd"

# What each rule id protects, in the words `GET /v1/status` and `rampartd check` show.
RULES: dict[str, str] = {
    "home": "no read of the token, the database (agent tokens) and its WAL, the signing and "
            "link keys or the checkpoints, and no write, delete or chmod of anything in the "
            "rampartd home (config.yaml and the policies included)",
    "policies": "no write to the policy directory, wherever policy_dir points",
    "hooks": "no write to the agent hosts' hook configurations or the systemd unit",
    "installation": "no write to the installed rampartd package or its commands, and no "
                    "pip install/uninstall of rampartd",
    "daemon-port": "no connection to the daemon's own port on any loopback spelling, and no "
                   "listener on it (agents talk to rampartd only through their hook)",
    "signals": "no kill/pkill/killall/fuser -k/loginctl that could reach the daemon, and no "
               "access to its /proc entry (memory, environment, descriptors)",
    "service": "no systemctl stop/disable/mask/kill/restart of the rampartd unit or of the "
               "user's service manager",
    "cli": "no rampartd commands that change state (token, approvals approve/deny/link, "
           "agents, serve, install-service, setup) and no RAMPARTD_* variables that would "
           "point rampartd's commands elsewhere",
}
ON, OFF = "on", "off"
UNSURE_MESSAGE = ("rampartd protects itself: it cannot tell whether this pattern matches its own "
                  "process (guard rule 'signals'), so a person decides")


def parse_relaxations(value: Any) -> str | tuple[str, ...]:
    """The `guard` setting: on (default), off, or a list of rule ids to relax."""
    if isinstance(value, str) and value.strip().lower() in (ON, OFF):
        return value.strip().lower()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"expected on, off or a list of rule ids ({', '.join(RULES)})")
    names: list[str] = []
    for item in items:
        name = str(item).strip()
        if name not in RULES:
            raise ValueError(f"unknown guard rule {name!r}; rules are {', '.join(RULES)}")
        names.append(name)
    return tuple(dict.fromkeys(names))


def relaxed(setting: str | tuple[str, ...]) -> frozenset[str]:
    """The rule ids the setting turns off."""
    if setting == OFF:
        return frozenset(RULES)
    if setting == ON:
        return frozenset()
    return frozenset(setting)


# Files the hosts also read hooks from that `rampartd setup` does not write, and the
# systemd unit. A name without ~ or / is a project file, matched in any directory.
OTHER_HOOK_FILES = ("~/.claude/settings.local.json", ".claude/settings.local.json",
                    "~/.codex/config.toml", ".codex/config.toml",
                    "~/.config/systemd/user/rampartd.service",
                    "~/.config/systemd/user/rampartd.service.d")


def hook_files() -> tuple[str, ...]:
    """Every host's hook configuration, user-level (~/…) and project-level, from the table
    `rampartd setup` writes by (so the two cannot disagree), and OTHER_HOOK_FILES."""
    files: list[str] = []
    for host in HOST_CONFIGS.values():
        for name in host.files:
            files += [f"~/{host.user_dir}/{name}", f"{host.project_dir}/{name}"]
        if host.merge is None:  # hooks are the directory's executables (Cline)
            files += [f"~/{host.user_dir}", host.project_dir]
    return tuple(dict.fromkeys([*files, *OTHER_HOOK_FILES]))


HOOK_FILES = hook_files()
CONSOLE_SCRIPTS = ("rampartd", "rampartd-hook")
# Files next to the package that Python runs at start (an agent could plant code there).
SITE_GLOBS = ("*rampartd*", "*.pth", "sitecustomize.py", "usercustomize.py")


@dataclass(frozen=True)
class Runtime:
    """The facts the guard is compiled from."""

    home: tuple[str, ...]  # the home's absolute spellings (as given, and symlinks resolved)
    policy_dir: tuple[str, ...]
    port: int
    pids: tuple[int, ...]  # the daemon's pid, process group and session when known
    user_home: str
    installation: tuple[str, ...]  # package directory, console scripts (absolute paths)
    site_globs: tuple[str, ...]  # path globs beside the package (site-packages/*.pth …)
    process_names: tuple[str, ...]  # the names pkill and killall compare (its comm)
    cmdlines: tuple[str, ...] = ()  # its command lines as `pkill -f` searches them

    @classmethod
    def discover(cls, home: Path, policy_dir: Path, port: int,
                 pid: int | None = None) -> Runtime:
        """Read the facts from this process and installation (pid: the daemon's, if known)."""
        import rampartd

        package = Path(rampartd.__file__).resolve().parent
        install = {str(package)}
        bindirs = {Path(sys.executable).parent, Path(sys.prefix) / "bin"}
        for script in CONSOLE_SCRIPTS:
            found = shutil.which(script)
            if found:
                install.update((os.path.abspath(found), str(Path(found).resolve())))
            install.update(str(d / script) for d in bindirs)
        hook_exes, hook_homes = _installed_hooks()
        install.update(hook_exes)
        pids: list[int] = []
        if pid is not None:
            pids.append(pid)
            with contextlib.suppress(OSError):  # the process is gone: its pid is enough
                pids += [os.getpgid(pid), os.getsid(pid)]
        facts = _process_facts(pid) if pid is not None else None
        if facts is None:  # not running (yet), or not readable: how `serve` is started
            exe = os.path.abspath(sys.executable)
            tail = f"serve --home {_spellings(home)[0]} --port {port}"
            version = sys.version_info
            facts = ({"rampartd", Path(exe).name, f"python{version.major}",
                      f"python{version.major}.{version.minor}"},
                     [f"{exe} -m rampartd {tail}",
                      f"{exe} {Path(exe).parent / 'rampartd'} {tail}"])
        names, cmdlines = facts
        homes = tuple(dict.fromkeys(h for d in (home, *hook_homes) for h in _spellings(d)))
        return cls(home=homes, policy_dir=_spellings(policy_dir), port=port,
                   pids=tuple(dict.fromkeys(p for p in pids if p > 1)),
                   user_home=os.path.expanduser("~"), installation=tuple(sorted(install)),
                   site_globs=tuple(f"{_glob_escape(d)}/{g}" for d in _site_dirs(package)
                                    for g in SITE_GLOBS),
                   process_names=tuple(sorted({"rampartd", *names})),
                   cmdlines=tuple(cmdlines))


def _installed_hooks() -> tuple[set[str], set[Path]]:
    """The executables and homes (`--home`: the token and address file it reads) of the hook
    commands installed in the user's host configurations."""
    exes: set[str] = set()
    homes: set[Path] = set()
    script, *_ = hook_executable()
    if Path(script).name == "rampartd-hook":
        exes.add(script)
    for host in HOST_CONFIGS:
        try:
            commands = installed_commands(host)
        except (ConfigError, OSError, ValueError):  # unreadable: nothing installed to add
            continue
        for argv in commands:
            try:
                words = shlex.split(argv[2]) if argv[:2] == ["/bin/sh", "-c"] else argv[:1]
            except ValueError:
                continue
            if words and os.path.isabs(words[0]):
                exes.update((words[0], os.path.realpath(words[0])))
            homes.update(Path(v) for k, v in itertools.pairwise(words)
                         if k == "--home")
    return exes, homes


def _process_facts(pid: int) -> tuple[set[str], list[str]] | None:
    """The process's name (comm) and command line, from /proc (None where unreadable)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace")
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    line = " ".join(raw.decode("utf-8", "replace").split("\0")).strip()
    return ({comm.strip()} - {""}), ([line] if line else [])


def _site_dirs(package: Path) -> list[str]:
    """The directories Python loads .pth files from (the package's own, if it is one)."""
    dirs = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    if package.parent.name in ("site-packages", "dist-packages"):
        dirs.add(str(package.parent))
    return sorted(dirs)


def _spellings(path: Path) -> tuple[str, ...]:
    given = os.path.abspath(os.path.expanduser(str(path)))
    return tuple(dict.fromkeys([given, os.path.realpath(given)]))


# ---- building the document (pure) ---------------------------------------------------------

_START = r"(^|[\s'\"=:<>(|;&,@])"  # what may precede a path mentioned in a command
_END = r"($|[\s'\"/)|;&,])"  # what may follow it (a file, or something inside a directory)
_GLOB = r"[*?\[]"


def _glob_escape(path: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", path)


def _tilde_forms(path: str, user_home: str) -> list[str]:
    """path, and ~/… when it is under the user's home (the parser writes $HOME as ~)."""
    forms = [path]
    if user_home != "/" and (path == user_home or path.startswith(user_home + "/")):
        forms.append("~" + path[len(user_home):])
    return forms


def _prefix_glob(segment: str) -> str:
    """A regex for a glob that stops partway through segment (`.ram*`, `.rampart?d`); a
    leading dot stays literal because shell globs never match it."""
    pattern = ""
    for ch in reversed(segment[1:]):
        pattern = f"({re.escape(ch)}{pattern})?"
    head = re.escape(segment[:1]) + pattern
    return head + _GLOB if segment.startswith(".") else f"({head})?{_GLOB}"


def _mention(paths: Iterable[str], user_home: str, *, relative: Iterable[str] = ()) -> str:
    """A regex body for text that names one of paths (or anything under it), or a glob that
    could expand to it; `relative` names are also found after any directory."""
    alts: list[str] = []
    for path in paths:
        for form in _tilde_forms(path, user_home):
            alts.append(_START + re.escape(form) + _END)
            parent, _, last = form.rpartition("/")
            if last:
                alts.append(_START + re.escape(parent + "/") + _prefix_glob(last))
            if last.startswith("."):  # a dot-directory is distinctive even when relative
                relative = [*relative, last]
    for name in relative:
        alts.append(r"(^|[\s'\"=:<>(|;&,@/])" + re.escape(name) + _END)
    return "(" + "|".join(dict.fromkeys(alts)) + ")"


LOOPBACK = (r"(([a-z0-9-]+\.)*localhost\.?|ip6-localhost|ip6-loopback|127(\.[0-9]+){0,3}"
            r"|0x0*7f([.][0-9a-fx]+){0,3}|0x0*7f[0-9a-f]{6}|0+177([.][0-7]+){0,3}"
            r"|21[0-4][0-9]{7}|0+|0+(\.0+){1,3}|\[[0:]*:(0*1)?\]|\[::ffff:[0-9a-f.:]+\])")


# Variables servers and dev tools read their listening port from (named, so a variable whose
# value is only known at run time, PATH=./bin:$PATH, is not taken for one).
_PORT_VARIABLES = ("PORT|HTTP_PORT|HTTPS_PORT|SERVER_PORT|APP_PORT|API_PORT|WEB_PORT|LISTEN_PORT"
                   "|DEV_PORT|FLASK_RUN_PORT|UVICORN_PORT|VITE_PORT|NUXT_PORT|NITRO_PORT"
                   "|JUPYTER_PORT|ASPNETCORE_HTTP_PORTS|ASPNETCORE_URLS")


def port_regexes(port: int) -> list[str]:
    """RE2 regexes for a command or URL that reaches port on a loopback address."""
    num = f"0*{port}"
    return [
        rf"re:(?i)(^|[^0-9a-z.-]){LOOPBACK}:{num}([^0-9]|$)",  # host:port, URLs
        rf"re:(?i)/dev/(tcp|udp)/{LOOPBACK}/{num}([^0-9]|$)",  # bash's /dev/tcp
        rf"re:(?i)(^|\s){LOOPBACK}\s+(-\S+\s+)*{num}([^0-9]|$)",  # nc localhost 9090
        rf"re:(?i)(^|\s)(-p|--port|-P)(=|\s*){num}([^0-9]|$)",  # nc -p / ncat --port
        # a listener on it (answering in the daemon's place): a port setting, nc's port word,
        # a file server's port
        rf"re:(?i)(^|\s)--?[a-z0-9_.-]*port=[\"']?{num}([^0-9]|$)",  # --http-port=, -Dserver.port=
        rf"re:^(nc|ncat|netcat|nc\.openbsd|nc\.traditional)\s+(\S+\s+)*{num}(\s|$)",
        # inline code listening there: `.listen(9090)`, `port: 9090`, `port=9090`
        rf"re:(?i)(\blisten\(\s*|\bport\s*[:=]\s*)[\"']?{num}([^0-9]|$)",
        rf"re:^python[0-9.]*\s+(\S+\s+)*-m\s*(http\.server|SimpleHTTPServer)\s+(\S+\s+)*{num}"
        r"(\s|$)",
        rf"re:(?i)(^|\s):{num}(\s|$).*\|",  # lsof -ti :9090 | xargs kill
        # curl --resolve NAME:PORT:ADDR[,ADDR…]: a name on our port resolved to loopback
        rf"re:(?i)--resolve(=|\s+)\+?[^\s:]*:{num}:([^\s,]*,)*{LOOPBACK}(,|\s|$)",
        # curl --connect-to H1:P1:H2:P2: the connection goes to H2 (empty: H1) on P2 (empty:
        # the URL's port)
        rf"re:(?i)--connect-to(=|\s+)[^\s:]*:[^\s:]*:({LOOPBACK})?:{num}(\s|$)",
        rf"re:(?i)--connect-to(=|\s+)[^\s:]*:[^\s:]*:{LOOPBACK}:(\s.*)?:{num}([^0-9]|$)",
        rf"re:(?i):{num}([^0-9].*)?\s--connect-to(=|\s+)[^\s:]*:[^\s:]*:{LOOPBACK}:(\s|$)",
    ]


def _words(names: Iterable[str]) -> str:
    return "(" + "|".join(re.escape(n) for n in names) + ")"


def signal_regexes(rt: Runtime) -> list[str]:
    """RE2 regexes for commands that could signal the daemon (see guard_signals)."""
    return guard_signals.signal_regexes(rt.process_names, rt.cmdlines, _killall_names(rt),
                                        rt.pids, rt.port, _mention(rt.home, rt.user_home))


def _killall_names(rt: Runtime) -> set[str]:
    """What killall may compare with: the name, and the program and script of each command
    line (killall reads the command line for names longer than the kernel keeps)."""
    names = set(rt.process_names)
    for line in rt.cmdlines:
        words = [w for w in line.split() if not w.startswith("-")][:2]
        names.update(posixpath.basename(w) for w in words)
    return names - {""}


SERVICE_VERBS = ("stop", "disable", "mask", "kill", "restart", "try-restart", "reload-or-restart",
                 "try-reload-or-restart", "edit", "revert", "isolate", "set-property",
                 "link", "preset", "freeze", "clean")


def service_regexes(unit: str) -> list[str]:
    """RE2 regexes for systemctl/service calls that stop the unit or the whole manager."""
    verbs = _words(SERVICE_VERBS)
    return [
        rf"re:^systemctl\s+(\S+\s+)*{verbs}\s+(\S+\s+)*{re.escape(unit)}(\.service)?(\s|$)",
        rf"re:^systemctl\s+(\S+\s+)*{verbs}\s+(\S+\s+)*\S*{_GLOB}",  # rampart*, *.service
        r"re:^systemctl\s+(\S+\s+)*(exit|halt|poweroff|reboot|kexec|emergency|rescue|"
        r"soft-reboot|daemon-reexec|switch-root)(\s|$)",
        rf"re:^service\s+{re.escape(unit)}\s+(stop|restart)",
    ]


CLI_SUBCOMMANDS = (r"token", r"approvals\s+(\S+\s+)*(approve|deny|link)", r"agents", r"serve",
                   r"install-service", r"setup", r"policy\s+reload")


def cli_regexes() -> list[str]:
    """RE2 regexes for rampartd commands that change state, however they are launched."""
    program = (r"(rampartd|python[0-9.]*\s+(-[a-zA-Z]+\s+)*-m\s*rampartd(\.cli)?|"
               r"(uvx|pipx\s+run)\s+(\S+\s+)*rampartd)")
    options = r"(\s+--?[a-z-]+(=\S+|\s+[^-\s]\S*)?)*"  # --home X, --url=Y before the command
    subcommands = "(" + "|".join(CLI_SUBCOMMANDS) + ")"
    return [
        rf"re:^{program}{options}\s+{subcommands}(\s|$)",
        r"re:^python[0-9.]*\s+(\S+\s+)*-c\s*.*rampartd",  # python -c 'import rampartd…'
    ]


def _hook_paths(user_home: str) -> tuple[list[str], list[str]]:
    """(absolute hook files, project-relative ones)."""
    absolute = [os.path.join(user_home, p[2:]) for p in HOOK_FILES if p.startswith("~/")]
    return absolute, [p for p in HOOK_FILES if not p.startswith("~/")]


INTERPRETERS = ("python[0-9.]*", "pypy[0-9.]*", "perl", "ruby", "node", "nodejs", "php", "lua",
                "deno", "bun", "Rscript", "osascript", "pwsh", "tclsh")


def inline_regex(body: str) -> str:
    """A regex for an interpreter whose command line (inline code included) matches body:
    code passed with -c/-e has no file effects of its own, so its text is searched."""
    return rf"re:^({'|'.join(INTERPRETERS)})\s(.*\s)?.*{body}"


def _secrets(home: str) -> list[str]:
    """Path globs of the home's secrets: token, keys, database and WAL, checkpoints, and the
    hidden temporary files they are written through."""
    h = _glob_escape(home)
    return [f"{h}/token", f"{h}/token.*", f"{h}/*.key", f"{h}/rampartd.db*",
            f"{h}/checkpoints.jsonl*", f"{h}/.*"]


def _hook_globs(user_home: str) -> tuple[list[str], list[str]]:
    """(path globs of the hook files, globs of the directories holding them)."""
    home = _glob_escape(user_home)
    files, dirs = [], set()
    for p in HOOK_FILES:
        glob = f"{home}/{p[2:]}" if p.startswith("~/") else f"**/{p}"
        files += [glob, f"{glob}/**"]
        parent = glob.rsplit("/", 1)[0]
        while parent not in ("**", home) and not (user_home + "/").startswith(parent + "/"):
            dirs.add(parent)
            parent = parent.rsplit("/", 1)[0]
    return files, sorted(dirs)


def guard_text(rt: Runtime, relax: frozenset[str] = frozenset()) -> str | None:
    """The guard as one policy document (YAML for the ordinary compiler); None when every
    rule is relaxed.

    Within a policy the first rule that holds decides, and a rule that holds only through a
    target known at run time asks instead of denying; so the textual rules (sure when they
    hold) come first and the effect rules after them.
    """
    text: list[dict[str, Any]] = []
    effects: list[dict[str, Any]] = []

    def add(into: list[dict[str, Any]], rule_id: str, when: dict[str, Any]) -> None:
        if rule_id not in relax:
            into.append({"action": "deny", "message": _message(rule_id), "when": when,
                         "suggestions": [_suggestion(rule_id)]})

    def under(paths: Iterable[str]) -> list[str]:
        return [g for p in paths for g in (_glob_escape(p), f"{_glob_escape(p)}/**")]

    changes = ["write", "delete", "chmod"]
    outside = [d for d in rt.policy_dir
               if not any(d == h or d.startswith(h + "/") for h in rt.home)]
    hooks, project = _hook_paths(rt.user_home)
    hook_files, hook_dirs = _hook_globs(rt.user_home)

    add(text, "home", {"command_matches": [inline_regex(_mention(rt.home, rt.user_home))]})
    if outside:
        add(text, "policies",
            {"command_matches": [inline_regex(_mention(outside, rt.user_home))]})
    add(text, "hooks", {"command_matches": [
        inline_regex(_mention(hooks, rt.user_home, relative=project))]})
    add(text, "installation", {"command_matches": [
        inline_regex(_mention(rt.installation, rt.user_home)),
        r"re:^(pip[0-9.]*|python[0-9.]*\s+(\S+\s+)*-m\s*pip|uv\s+pip|pipx)\s+(\S+\s+)*"
        r"(install|uninstall|remove)\s.*rampartd"]})
    if rt.port > 0:  # 0: not bound yet, so there is no port to protect
        add(text, "daemon-port", {"command_matches": port_regexes(rt.port)})
    add(text, "signals", {"command_matches": signal_regexes(rt) + _inline_signal_regexes(rt)})
    add(text, "service", {"command_matches": service_regexes(UNIT)})
    add(text, "cli", {"command_matches": cli_regexes()})

    add(effects, "home", {"effect": ["read", *changes],
                          "path_matches": [g for h in rt.home for g in _secrets(h)]})
    add(effects, "home", {"effect": changes, "path_matches": under(rt.home)})
    if outside:
        add(effects, "policies", {"effect": changes, "path_matches": under(outside)})
    add(effects, "hooks", {"effect": changes, "path_matches": hook_files})
    add(effects, "hooks", {"effect": ["delete"], "path_matches": hook_dirs})
    add(effects, "installation", {"effect": changes,
                                  "path_matches": under(rt.installation) + list(rt.site_globs)})
    if rt.port > 0:
        add(effects, "daemon-port", {"url_matches": [loopback_url_regex(rt.port)]})
        # PORT=9090 npm start: a server told by its environment to listen there
        listen = rf"re:^({_PORT_VARIABLES})=(.*[^0-9])?0*{rt.port}/?$"
        add(effects, "daemon-port", {"env_matches": [listen]})
    add(effects, "signals", {"signal_matches": signal_target_regexes(rt)})
    add(effects, "signals", {"signal_matches": guard_signals.name_target_regexes(
        rt.process_names), "command_not_matches": [guard_signals.JUDGED]})
    if rt.pids:
        add(effects, "signals", {"path_matches": [f"/proc/{p}" for p in rt.pids]
                                 + [f"/proc/{p}/**" for p in rt.pids]})
    add(effects, "cli", {"env_matches": ["RAMPARTD_*"]})
    if "signals" not in relax:  # last: any deny above decides first
        effects.append({"action": "ask", "message": UNSURE_MESSAGE,
                        "when": {"command_matches": guard_signals.unsure_regexes()}})
    rules = text + effects
    if not rules:
        return None
    doc = {"version": "1", "policies": [{
        "name": GUARD_POLICY, "priority": GUARD_PRIORITY,
        "description": "built in: rampartd protects itself (relax with `guard:` in config.yaml)",
        "rules": rules}]}
    return yaml.safe_dump(doc, sort_keys=False, width=10_000, allow_unicode=True)


def _inline_signal_regexes(rt: Runtime) -> list[str]:
    """Inline code that signals -1 or names the daemon's pid (os.kill, process.kill, kill)."""
    out = [inline_regex(r"kill[a-z_]*\(\s*-\s*1\s*[,)]")]
    if rt.pids:
        out.append(inline_regex(rf"(^|[^0-9])-?({'|'.join(str(p) for p in rt.pids)})([^0-9]|$)"))
    return out


def loopback_url_regex(port: int) -> str:
    """A regex for a canonical URL (the effects model's spelling) on a loopback host:port."""
    hosts = (r"(([a-z0-9-]+\.)*localhost|ip6-localhost|ip6-loopback|127\.[0-9]+\.[0-9]+\.[0-9]+"
             r"|0\.0\.0\.0|\[::1?\]|\[::ffff:127\.[0-9.]+\])")
    return rf"re:^[a-z][a-z0-9+.-]*://([^/@]*@)?{hosts}:{port}(/|$)"


def signal_target_regexes(rt: Runtime) -> list[str]:
    """Signal targets (kill/pkill/killall/fuser -k operands) that would reach the daemon."""
    return guard_signals.target_regexes(rt.process_names, rt.pids, rt.port)


def _message(rule_id: str) -> str:
    return f"rampartd protects itself: {RULES[rule_id]} (guard rule '{rule_id}')"


def _suggestion(rule_id: str) -> str:
    return ("This is rampartd's built-in guard. If a person really wants this, they can run it "
            f"themselves, or relax the rule with `guard: [{rule_id}]` in config.yaml.")


def guard_documents(rt: Runtime, relax: frozenset[str] = frozenset()) -> list[RawDoc]:
    """The guard as parsed documents for compile_documents (none when it is off)."""
    text = guard_text(rt, relax)
    return [] if text is None else [RawDoc(GUARD_FILE, parse_yaml(text, GUARD_FILE))]


def guard_for(settings: GuardSettings, *, pid: int | None = None) -> list[RawDoc]:
    """The guard for a daemon with these settings (settings.port: the port it really has)."""
    runtime = Runtime.discover(settings.home, settings.policy_dir, settings.port, pid=pid)
    return guard_documents(runtime, relaxed(settings.guard))


def guard_for_home(home: Path, port: int, *, policy_dir: Path | None = None,
                   user_home: str | None = None,
                   relax: frozenset[str] = frozenset()) -> list[RawDoc]:
    """The guard a daemon on this home and port would have, built without one running (for
    `rampartd bench`): the process facts are those of `rampartd serve` started from this
    installation. user_home: the agent's home the hook files are under (default: ours); a
    home under our own home is moved under it, as `~/.rampartd` is everyone's default."""
    ours = os.path.expanduser("~")
    runtime = Runtime.discover(home, policy_dir or home / "policies", port)
    if user_home is None or user_home == ours:
        return guard_documents(runtime, relax)

    def moved(paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(user_home + p[len(ours):] if p == ours or p.startswith(
            ours + "/") else p for p in paths))

    runtime = dataclasses.replace(runtime, home=moved(runtime.home),
                                  policy_dir=moved(runtime.policy_dir), user_home=user_home)
    return guard_documents(runtime, relax)


def describe(relax: frozenset[str]) -> dict[str, Any]:
    """What the guard enforces, for status and `check`."""
    return {"policy": GUARD_POLICY,
            "rules": [{"id": k, "denies": v} for k, v in RULES.items() if k not in relax],
            "relaxed": [k for k in RULES if k in relax]}
