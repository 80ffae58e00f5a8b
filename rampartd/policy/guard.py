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
import os
import re
import shutil
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from rampartd.policy.loader import RawDoc, parse_yaml

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
    "daemon-port": "no connection to the daemon's own port on any loopback spelling "
                   "(agents talk to rampartd only through their hook)",
    "signals": "no kill/pkill/killall/fuser -k/loginctl that could reach the daemon, and no "
               "access to its /proc entry (memory, environment, descriptors)",
    "service": "no systemctl stop/disable/mask/kill/restart of the rampartd unit or of the "
               "user's service manager",
    "cli": "no rampartd commands that change state (token, approvals approve/deny/link, "
           "agents, serve, install-service, setup) and no RAMPARTD_* variables that would "
           "point rampartd's commands elsewhere",
}
ON, OFF = "on", "off"


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


# Agent hosts' hook configurations and the systemd unit. A name without ~ or / is a
# project file, matched in any directory.
HOOK_FILES = ("~/.claude/settings.json", "~/.claude/settings.local.json",
              ".claude/settings.json", ".claude/settings.local.json", "~/.cursor/hooks.json",
              ".cursor/hooks.json", "~/.gemini/settings.json", ".gemini/settings.json",
              "~/.codex/config.toml", "~/.codex/hooks.json", ".codex/config.toml",
              ".codex/hooks.json", "~/Documents/Cline/Hooks",
              ".clinerules/hooks", "~/.config/systemd/user/rampartd.service",
              "~/.config/systemd/user/rampartd.service.d")
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
    process_names: tuple[str, ...]  # names pkill/killall would see for the daemon

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
        pids: list[int] = []
        if pid is not None:
            pids.append(pid)
            with contextlib.suppress(OSError):  # the process is gone: its pid is enough
                pids += [os.getpgid(pid), os.getsid(pid)]
        names = {"rampartd", *CONSOLE_SCRIPTS, Path(sys.executable).name, "python", "python3"}
        return cls(home=_spellings(home), policy_dir=_spellings(policy_dir), port=port,
                   pids=tuple(dict.fromkeys(p for p in pids if p > 1)),
                   user_home=os.path.expanduser("~"), installation=tuple(sorted(install)),
                   site_globs=tuple(f"{_glob_escape(d)}/{g}" for d in _site_dirs(package)
                                    for g in SITE_GLOBS),
                   process_names=tuple(sorted(names)))


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


def port_regexes(port: int) -> list[str]:
    """RE2 regexes for a command or URL that reaches port on a loopback address."""
    num = f"0*{port}"
    return [
        rf"re:(?i)(^|[^0-9a-z.-]){LOOPBACK}:{num}([^0-9]|$)",  # host:port, URLs
        rf"re:(?i)/dev/(tcp|udp)/{LOOPBACK}/{num}([^0-9]|$)",  # bash's /dev/tcp
        rf"re:(?i)(^|\s){LOOPBACK}\s+(-\S+\s+)*{num}([^0-9]|$)",  # nc localhost 9090
        rf"re:(?i)(^|\s)(-p|--port|-P)\s*{num}([^0-9]|$)",  # nc -p / ncat --port
        rf"re:(?i)(^|\s):{num}(\s|$).*\|",  # lsof -ti :9090 | xargs kill
    ]


def _words(names: Iterable[str]) -> str:
    return "(" + "|".join(re.escape(n) for n in names) + ")"


def _substrings(names: Iterable[str]) -> list[str]:
    out: set[str] = set()
    for name in names:
        for i in range(len(name)):
            for j in range(i + 1, len(name) + 1):
                out.add(name[i:j])
    return sorted(out, key=lambda s: (-len(s), s))


def signal_regexes(rt: Runtime) -> list[str]:
    """RE2 regexes for commands that could signal the daemon."""
    # A pkill/killall pattern is a regex searched in the process name: any piece of one of
    # our names, any regex syntax, or selection by user/session/terminal/full command line.
    pieces = "|".join(re.escape(s) for s in _substrings(rt.process_names))
    selectors = (r"(-[a-zA-Z]*[fuUsgtPFr]|--(full|euid|uid|session|pgroup|terminal|parent"
                 r"|pidfile|regexp|user|older|younger))")
    out = [
        r"re:^kill\s+(\S+\s+)*-1(\s|$)",  # kill -9 -1, kill -- -1 (everything we may signal)
        r"re:^kill\b.*([$`]|\s%)",  # kill $(pgrep …), kill `…`, kill %job
        r"re:^(xargs\s+(\S+\s+)*)?kill(\s+-\S+)*\s*$",  # kill whose targets come from stdin
        rf"re:^(pkill|killall|pgrep\s.*(-k|--kill))\s+(\S+\s+)*{selectors}(\s|=|$)",
        rf"re:(?i)^(pkill|killall|skill|snice)\s+(-\S+\s+)*({pieces})(\s|$)",  # a piece of a name
        r"re:^(pkill|killall|skill|snice)\s+(-\S+\s+)*\S*[.*+?()\[\]|^$\\{}]",  # regex syntax
        r"re:^(killall5|kill\s+(-\S+\s+)*0$)",
        rf"re:^fuser\s+(\S+\s+)*-[a-zA-Z]*k.*(\s|:){rt.port}(/|\s|$)",
        r"re:^loginctl\s+(\S+\s+)*(terminate|kill)-(user|session|seat)",
    ]
    if rt.pids:
        pids = "|".join(str(p) for p in rt.pids)
        out.append(rf"re:^(kill|renice|prlimit|gdb|strace|ltrace|reptyr)\b.*(\s|=|^)-?({pids})"
                   r"(\s|$)")
    return out


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
    add(effects, "signals", {"signal_matches": signal_target_regexes(rt)})
    if rt.pids:
        add(effects, "signals", {"path_matches": [f"/proc/{p}" for p in rt.pids]
                                 + [f"/proc/{p}/**" for p in rt.pids]})
    add(effects, "cli", {"env_matches": ["RAMPARTD_*"]})
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
    targets = [r"-1", rf"{rt.port}(/tcp)?", rf"{rt.port}/udp"]
    targets += [rf"-?{p}" for p in rt.pids]
    pieces = "|".join(re.escape(s) for s in _substrings(rt.process_names))
    return [rf"re:^({'|'.join(targets)}|{pieces})$",  # our pid, everything, a piece of a name
            r"re:[.*+?()\[\]|^$\\{}]"]  # a pkill/killall regex could match anything


def _message(rule_id: str) -> str:
    return f"rampartd protects itself: {RULES[rule_id]} (guard rule '{rule_id}')"


def _suggestion(rule_id: str) -> str:
    return ("This is rampartd's built-in guard. If a person really wants this, they can run it "
            f"themselves, or relax the rule with `guard: [{rule_id}]` in config.yaml.")


def guard_documents(rt: Runtime, relax: frozenset[str] = frozenset()) -> list[RawDoc]:
    """The guard as parsed documents for compile_documents (none when it is off)."""
    text = guard_text(rt, relax)
    return [] if text is None else [RawDoc(GUARD_FILE, parse_yaml(text, GUARD_FILE))]


class GuardSettings(Protocol):
    """What the guard reads of the daemon's settings (rampartd.config.Settings has it)."""

    @property
    def home(self) -> Path: ...
    @property
    def policy_dir(self) -> Path: ...
    @property
    def port(self) -> int: ...
    @property
    def guard(self) -> str | tuple[str, ...]: ...


def guard_for(settings: GuardSettings, *, pid: int | None = None) -> list[RawDoc]:
    """The guard for a daemon with these settings (settings.port: the port it really has)."""
    runtime = Runtime.discover(settings.home, settings.policy_dir, settings.port, pid=pid)
    return guard_documents(runtime, relaxed(settings.guard))


def describe(relax: frozenset[str]) -> dict[str, Any]:
    """What the guard enforces, for status and `check`."""
    return {"policy": GUARD_POLICY,
            "rules": [{"id": k, "denies": v} for k, v in RULES.items() if k not in relax],
            "relaxed": [k for k in RULES if k in relax]}
