"""What `rampartd setup` writes into each agent host's configuration, and how it takes it out.

Entries are merged into the host's own file (the user's other settings stay as they were),
identified by the hook executable in their command, and written with its absolute path so no
PATH lookup can miss it. A plan is computed first: it can be shown as a diff, applied (with a
backup of the file it replaces) or checked, and applying it twice changes nothing.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rampartd.errors import ConfigError

HOOK_MARKERS = ("rampartd-hook", "rampartd.hooks")
BACKUP_SUFFIX = ".rampartd-backup"
HOST_TIMEOUT_SLACK = 10  # seconds the host waits beyond the hook's own limit


def hook_executable() -> list[str]:
    """The hook as an absolute command: `rampartd-hook` beside this Python, else `-m`."""
    script = Path(sys.executable).parent / "rampartd-hook"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "rampartd.hooks"]


def is_ours(command: Any) -> bool:
    """True for a hook command that runs rampartd's hook."""
    return isinstance(command, str) and any(m in command for m in HOOK_MARKERS)


@dataclass(frozen=True)
class HookArgs:
    """How the installed hook is run."""

    home: str | None = None  # only when not the default home
    agent: str | None = None
    wait: float = 0.0

    def argv(self, host: str) -> list[str]:
        """The hook's full command line for one host."""
        args = [*hook_executable(), host]
        if self.home is not None:
            args += ["--home", self.home]
        if self.agent is not None:
            args += ["--agent", self.agent]
        if self.wait:
            args += ["--wait", f"{self.wait:g}"]
        return args

    def command(self, host: str) -> str:
        """A shell command line that blocks (exit 2) if the hook itself cannot run."""
        return shlex.join(self.argv(host)) + " || exit 2"

    @property
    def host_timeout(self) -> int:
        """Seconds the host should give the hook: its own 5 s limit and any wait, plus slack."""
        return int(5 + self.wait + HOST_TIMEOUT_SLACK)


# ---------------------------------------------------------------- JSON configurations

def _hooks_table(data: dict[str, Any], path: Path) -> dict[str, Any]:
    table = data.setdefault("hooks", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'hooks' is not an object; fix it by hand first")
    return table


def _ours(entry: Any) -> bool:
    return isinstance(entry, dict) and is_ours(entry.get("command"))


def _strip(data: dict[str, Any], keep: Callable[[list[Any]], list[Any]]) -> dict[str, Any]:
    """Each event's entries through `keep`; an event left with none is removed."""
    table = data.get("hooks")
    if not isinstance(table, dict):
        return data
    for event in list(table):
        entries = table[event]
        if not isinstance(entries, list):
            continue
        kept = keep(entries)
        if kept:
            table[event] = kept
        else:
            del table[event]
    return data


def _strip_groups(groups: list[Any]) -> list[Any]:
    kept = []
    for group in groups:
        if isinstance(group, dict) and isinstance(group.get("hooks"), list):
            hooks = [h for h in group["hooks"] if not _ours(h)]
            if not hooks:
                continue
            group = {**group, "hooks": hooks}
        kept.append(group)
    return kept


def strip_grouped(data: dict[str, Any]) -> dict[str, Any]:
    """Claude Code / Codex / Gemini CLI shape without rampartd's entries."""
    return _strip(data, _strip_groups)


def strip_flat(data: dict[str, Any]) -> dict[str, Any]:
    """Cursor's shape (event → [{command}]) without rampartd's entries."""
    return _strip(data, lambda entries: [e for e in entries if not _ours(e)])


def _merge_grouped(data: dict[str, Any], path: Path, events: tuple[str, ...],
                   group: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The grouped shape with rampartd's entries replaced by one new `group()` per event."""
    data = strip_grouped(data)
    table = _hooks_table(data, path)
    for event in events:
        table.setdefault(event, []).append(group())
    return data


def merge_claude(data: dict[str, Any], args: HookArgs, path: Path) -> dict[str, Any]:
    """Claude Code: PreToolUse and PostToolUse for every tool."""
    return _merge_grouped(data, path, ("PreToolUse", "PostToolUse"), lambda: {
        "matcher": "*", "hooks": [{"type": "command", "command": args.command("claude-code"),
                                   "timeout": args.host_timeout}]})


def merge_codex(data: dict[str, Any], args: HookArgs, path: Path) -> dict[str, Any]:
    """Codex hooks.json: PreToolUse and PostToolUse with no matcher (every tool)."""
    return _merge_grouped(data, path, ("PreToolUse", "PostToolUse"), lambda: {
        "hooks": [{"type": "command", "command": args.command("codex"),
                   "timeout": args.host_timeout}]})


def merge_gemini(data: dict[str, Any], args: HookArgs, path: Path) -> dict[str, Any]:
    """Gemini CLI settings.json: BeforeTool and AfterTool for every tool (timeouts in ms)."""
    return _merge_grouped(data, path, ("BeforeTool", "AfterTool"), lambda: {
        "matcher": ".*", "hooks": [{"type": "command", "name": "rampartd",
                                    "command": args.command("gemini-cli"),
                                    "timeout": args.host_timeout * 1000}]})


CURSOR_EVENTS = ("beforeShellExecution", "beforeMCPExecution", "beforeReadFile",
                 "afterShellExecution", "afterMCPExecution")


def merge_cursor(data: dict[str, Any], args: HookArgs, path: Path) -> dict[str, Any]:
    """Cursor hooks.json: shell, MCP and file-read checks, shell and MCP output scans."""
    data = strip_flat(data)
    data.setdefault("version", 1)
    table = _hooks_table(data, path)
    for event in CURSOR_EVENTS:
        table.setdefault(event, []).append({"command": args.command("cursor")})
    return data


# ---------------------------------------------------------------- plans

@dataclass(frozen=True)
class Change:
    """One file: what it holds now (None: missing) and what it will hold (None: removed)."""

    path: Path
    old: str | None
    new: str | None
    mode: int = 0o644

    @property
    def changed(self) -> bool:
        """True when applying it would touch the file."""
        return self.old != self.new

    def diff(self) -> str:
        """A unified diff of the change."""
        return "".join(difflib.unified_diff(
            (self.old or "").splitlines(keepends=True), (self.new or "").splitlines(keepends=True),
            fromfile=str(self.path) if self.old is not None else "/dev/null",
            tofile=str(self.path) if self.new is not None else "/dev/null"))


@dataclass(frozen=True)
class HostConfig:
    """Where a host keeps its hooks and how rampartd's entries go in."""

    name: str
    user_dir: str  # relative to the user's home
    project_dir: str  # relative to a project
    files: tuple[str, ...]
    merge: Callable[[dict[str, Any], HookArgs, Path], dict[str, Any]] | None
    strip: Callable[[dict[str, Any]], dict[str, Any]] | None

    def directory(self, project: Path | None) -> Path:
        """The directory holding the host's hook configuration."""
        return project / self.project_dir if project is not None else \
            Path.home() / self.user_dir

    def detected(self) -> bool:
        """True when the host's user configuration directory exists."""
        return (Path.home() / self.user_dir.split("/")[0]).exists()


HOST_CONFIGS: dict[str, HostConfig] = {
    "claude-code": HostConfig("claude-code", ".claude", ".claude", ("settings.json",),
                              merge_claude, strip_grouped),
    "cursor": HostConfig("cursor", ".cursor", ".cursor", ("hooks.json",), merge_cursor,
                         strip_flat),
    "gemini-cli": HostConfig("gemini-cli", ".gemini", ".gemini", ("settings.json",),
                             merge_gemini, strip_grouped),
    "codex": HostConfig("codex", ".codex", ".codex", ("hooks.json",), merge_codex,
                        strip_grouped),
    "cline": HostConfig("cline", "Documents/Cline/Hooks", ".clinerules/hooks",
                        ("PreToolUse", "PostToolUse"), None, None),
}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _load_json(path: Path, text: str | None) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"{path} is not valid JSON; fix it or move it away first") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object; fix it or move it away first")
    return data


def cline_script(args: HookArgs, event: str) -> str:
    """A Cline hook file: runs the hook, and cancels the tool if the hook itself fails."""
    fallback = json.dumps({"cancel": True, "errorMessage": "the rampartd hook could not run, "
                                                           "so the call is blocked"}) \
        if event == "PreToolUse" else json.dumps({"cancel": False})
    return ("#!/bin/sh\n# rampartd: written by `rampartd setup cline`; "
            "`rampartd setup cline --remove` takes it out\n"
            f"{shlex.join(args.argv('cline'))} || printf '%s\\n' {shlex.quote(fallback)}\n")


def plan(host: str, args: HookArgs, *, project: Path | None = None,
         remove: bool = False) -> list[Change]:
    """The file changes that install (or remove) rampartd's hook for one host."""
    config = HOST_CONFIGS[host]
    directory = config.directory(project)
    changes = []
    for name in config.files:
        path = directory / name
        old = _read(path)
        if config.merge is None:  # Cline: one executable file per event
            if old is not None and not is_ours(old):
                raise ConfigError(f"{path} exists and is not rampartd's; merge it by hand "
                                  f"(or move it away) first")
            changes.append(Change(path, old, None if remove else cline_script(args, name),
                                  mode=0o755))
            continue
        data = _load_json(path, old)
        assert config.strip is not None
        data = config.strip(data) if remove else config.merge(data, args, path)
        new: str | None = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if remove and old is None:
            new = None
        mode = path.stat().st_mode & 0o777 if old is not None else 0o644
        changes.append(Change(path, old, new, mode=mode))
    return changes


def apply(changes: list[Change]) -> list[Path]:
    """Write the changes (atomically; a replaced file is kept as a backup); the files touched."""
    touched = []
    for change in changes:
        if not change.changed:
            continue
        if change.old is not None:
            shutil.copy2(change.path, change.path.with_name(change.path.name + BACKUP_SUFFIX))
        if change.new is None:
            change.path.unlink()
        else:
            change.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=change.path.parent, prefix=f".{change.path.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(change.new)
                os.chmod(tmp, change.mode)
                os.replace(tmp, change.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        touched.append(change.path)
    return touched


def installed_commands(host: str, project: Path | None = None) -> list[list[str]]:
    """The installed rampartd hook commands for a host, as argv lists to run."""
    config = HOST_CONFIGS[host]
    directory = config.directory(project)
    if config.merge is None:
        return [[str(directory / name)] for name in config.files[:1]
                if is_ours(_read(directory / name))]
    path = directory / config.files[0]
    data = _load_json(path, _read(path))
    table = data.get("hooks") if isinstance(data.get("hooks"), dict) else {}
    found: list[str] = []
    assert isinstance(table, dict)
    for entries in table.values():
        for entry in entries if isinstance(entries, list) else []:
            hooks = entry.get("hooks") if isinstance(entry, dict) and "hooks" in entry \
                else [entry]
            for hook in hooks if isinstance(hooks, list) else []:
                if isinstance(hook, dict) and is_ours(hook.get("command")):
                    found.append(hook["command"])
    return [["/bin/sh", "-c", command] for command in dict.fromkeys(found)]


# ---------------------------------------------------------------- --check

CHECK_SESSION = "rampartd-setup-check"


def sample_event(host: str, command: str, cwd: str) -> dict[str, Any]:
    """A shell-command PreToolUse event in the host's own payload shape."""
    if host in ("claude-code", "codex"):
        return {"session_id": CHECK_SESSION, "hook_event_name": "PreToolUse", "cwd": cwd,
                "tool_name": "Bash", "tool_input": {"command": command},
                "tool_use_id": "rampartd-check"}
    if host == "gemini-cli":
        return {"session_id": CHECK_SESSION, "hook_event_name": "BeforeTool", "cwd": cwd,
                "tool_name": "run_shell_command", "tool_input": {"command": command}}
    if host == "cursor":
        return {"hook_event_name": "beforeShellExecution", "conversation_id": CHECK_SESSION,
                "generation_id": "rampartd-check", "workspace_roots": [cwd], "command": command,
                "cwd": cwd}
    return {"hookName": "PreToolUse", "taskId": CHECK_SESSION, "workspaceRoots": [cwd],
            "preToolUse": {"toolName": "execute_command",
                           "parameters": {"command": command, "requires_approval": False}}}


def blocked(host: str, code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    """Whether the host would block the call after this hook answer, and the reason it gives."""
    if code == 2:
        return True, stderr.strip()
    try:
        answer = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        return False, "the hook printed something that is not JSON"
    if not isinstance(answer, dict):
        return False, "the hook printed something that is not a JSON object"
    if host in ("claude-code", "codex"):
        out = answer.get("hookSpecificOutput") or {}
        return out.get("permissionDecision") == "deny", str(out.get("permissionDecisionReason"))
    if host == "cursor":
        return answer.get("permission") == "deny", str(answer.get("agent_message"))
    if host == "cline":
        return answer.get("cancel") is True, str(answer.get("errorMessage"))
    return answer.get("decision") in ("deny", "block"), str(answer.get("reason"))
