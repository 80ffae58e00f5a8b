"""`rampartd setup HOST` on a temporary HOME: merge, idempotency, check, remove, project scope."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rampartd.cli import main
from tests.conftest import Daemon, start_daemon
from tests.hooktools import HOSTS

pytestmark = pytest.mark.e2e

# What a user already has, per host (user-level file relative to HOME, existing content).
EXISTING: dict[str, tuple[str, dict[str, Any]]] = {
    "claude-code": (".claude/settings.json", {
        "model": "opus", "permissions": {"allow": ["Bash(npm test)"]},
        "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [
            {"type": "command", "command": "/usr/local/bin/my-lint"}]}]}}),
    "cursor": (".cursor/hooks.json", {
        "version": 1, "hooks": {"afterFileEdit": [{"command": "./format.sh"}]}}),
    "gemini-cli": (".gemini/settings.json", {
        "theme": "GitHub", "hooks": {"BeforeTool": [{"matcher": "write_file", "hooks": [
            {"type": "command", "command": "./check-write.sh"}]}]}}),
    "codex": (".codex/hooks.json", {
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]}}),
}


def setup(home: Path, d: Daemon | None, *args: str, port: int | None = None) -> Result:
    env = {"HOME": str(home), "RAMPARTD_HOME": str(d.home if d else home / "rd"),
           "RAMPARTD_PORT": str(d.port if d else port or 9)}
    return CliRunner().invoke(main, ["setup", *args], env=env)


def our_commands(data: Any) -> list[str]:
    """rampartd's hook commands in a host configuration (grouped or flat)."""
    return [h["command"] for groups in data.get("hooks", {}).values() for g in groups
            for h in g.get("hooks", [g]) if "rampartd" in h["command"]]


@pytest.mark.parametrize("host", [h for h in HOSTS if h != "cline"])
def test_setup_merges_checks_and_removes(host: str, shared: Daemon, tmp_path: Path) -> None:
    rel, existing = EXISTING[host]
    config = tmp_path / rel
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(existing))
    original = config.read_text()

    result = setup(tmp_path, shared, host)
    assert result.exit_code == 0, result.output
    data = json.loads(config.read_text())
    for key, value in existing.items():  # the user's own settings are all still there
        if key != "hooks":
            assert data[key] == value
    for event, groups in existing.get("hooks", {}).items():
        assert groups[0] in data["hooks"][event]
    commands = our_commands(data)
    assert commands
    argv = shlex.split(commands[0].removesuffix(" || exit 2"))
    assert os.path.isabs(argv[0]) and os.access(argv[0], os.X_OK)  # found on any PATH
    assert (config.parent / (config.name + ".rampartd-backup")).read_text() == original

    written = config.read_text()
    again = setup(tmp_path, shared, host)
    assert again.exit_code == 0 and "already up to date" in again.output
    assert config.read_text() == written

    check = setup(tmp_path, shared, host, "--check")
    assert check.exit_code == 0, check.output
    assert check.output.count("ok  ") == 2 and "blocked" in check.output

    removed = setup(tmp_path, shared, host, "--remove")
    assert removed.exit_code == 0, removed.output
    assert json.loads(config.read_text()) == existing  # exactly what the user had
    assert "already removed" in setup(tmp_path, shared, host, "--remove").output


def test_cline_hook_files(shared: Daemon, tmp_path: Path) -> None:
    hooks = tmp_path / "Documents" / "Cline" / "Hooks"
    result = setup(tmp_path, shared, "cline")
    assert result.exit_code == 0, result.output
    for name in ("PreToolUse", "PostToolUse"):
        assert os.access(hooks / name, os.X_OK)
        assert "rampartd-hook" in (hooks / name).read_text() \
            or "rampartd.hooks" in (hooks / name).read_text()
    assert setup(tmp_path, shared, "cline", "--check").exit_code == 0
    assert setup(tmp_path, shared, "cline", "--remove").exit_code == 0
    assert not (hooks / "PreToolUse").exists() and not (hooks / "PostToolUse").exists()

    (hooks / "PreToolUse").write_text("#!/bin/sh\necho '{\"cancel\": false}'\n")
    refused = setup(tmp_path, shared, "cline")
    assert refused.exit_code != 0 and "is not rampartd's" in refused.output
    assert "rampartd" not in (hooks / "PreToolUse").read_text()


def test_listing_dry_run_and_project_scope(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    listing = setup(tmp_path, None)
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert [line.split()[0] for line in lines] == ["claude-code", "cursor", "gemini-cli",
                                                   "codex", "cline"]
    assert "detected" in lines[0] and "not detected" in lines[1]

    dry = setup(tmp_path, None, "claude-code", "--dry-run")
    assert dry.exit_code == 0 and "+++ " in dry.output and "PreToolUse" in dry.output
    assert not (tmp_path / ".claude" / "settings.json").exists()

    project = tmp_path / "proj"
    project.mkdir()
    assert setup(tmp_path, None, "gemini-cli", "--project", str(project)).exit_code == 0
    assert our_commands(json.loads((project / ".gemini" / "settings.json").read_text()))
    assert not (tmp_path / ".gemini").exists()


def test_check_fails_without_a_daemon_and_bad_json_is_left_alone(tmp_path: Path) -> None:
    assert setup(tmp_path, None, "codex").exit_code == 0
    failed = setup(tmp_path, None, "codex", "--check", port=9)
    assert failed.exit_code != 0 and "FAIL" in failed.output

    broken = tmp_path / ".claude" / "settings.json"
    broken.parent.mkdir()
    broken.write_text("{ not json")
    result = setup(tmp_path, None, "claude-code")
    assert result.exit_code != 0 and "not valid JSON" in result.output
    assert broken.read_text() == "{ not json"


def test_a_home_with_spaces_and_quotes_still_runs(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "it's my home")
    try:
        user = tmp_path / "user"
        assert setup(user, d, "claude-code").exit_code == 0
        command = our_commands(json.loads((user / ".claude" / "settings.json").read_text()))[0]
        assert "--home" in shlex.split(command)
        check = setup(user, d, "claude-code", "--check")
        assert check.exit_code == 0, check.output
    finally:
        d.stop()
