"""Hot reload: edits are picked up by poll(); broken edits keep the last good set."""

from __future__ import annotations

import gc
import logging
import weakref
from pathlib import Path

import pytest

from rampartd.errors import PolicyError
from rampartd.models import ToolCall
from rampartd.policy import PolicyHolder
from rampartd.policy.engine import evaluate

POLICY = """\
version: "1"
default_action: allow
policies:
  - name: no-{program}
    match: {{tool: exec}}
    rules:
      - action: deny
        when: {{command_matches: ["{program} *"]}}
"""


def decide(holder: PolicyHolder, command: str) -> str:
    return evaluate(holder.current, ToolCall("exec", "a", "s", {"command": command})).action


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "main.yaml").write_text(POLICY.format(program="rm"))
    return directory


def test_poll_is_quiet_without_changes(policy_dir: Path) -> None:
    holder = PolicyHolder(policy_dir)
    first = holder.current
    assert holder.poll() is False
    assert holder.current is first and holder.last_error is None


def test_an_edit_is_installed_on_the_next_poll(policy_dir: Path) -> None:
    holder = PolicyHolder(policy_dir)
    assert decide(holder, "rm x") == "deny"
    (policy_dir / "main.yaml").write_text(POLICY.format(program="curl"))
    assert holder.poll() is True
    assert decide(holder, "rm x") == "allow" and decide(holder, "curl x") == "deny"
    assert holder.poll() is False


def test_added_and_removed_files_are_noticed(policy_dir: Path) -> None:
    holder = PolicyHolder(policy_dir)
    (policy_dir / "extra.yaml").write_text(
        POLICY.format(program="curl").replace("default_action: allow\n", ""))
    assert holder.poll() is True and holder.current.policy_count == 2
    (policy_dir / "extra.yaml").unlink()
    assert holder.poll() is True and holder.current.policy_count == 1


def test_a_broken_edit_keeps_the_last_good_set(policy_dir: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    holder = PolicyHolder(policy_dir)
    good = holder.current
    (policy_dir / "main.yaml").write_text(POLICY.format(program="rm").replace("deny", "deni"))
    with caplog.at_level(logging.WARNING, logger="rampartd.policy"):
        assert holder.poll() is False
    assert holder.current is good and decide(holder, "rm x") == "deny"
    error = holder.last_error
    assert error is not None and error.file == "main.yaml" and error.line == 7
    assert "keeping the last good set" in caplog.text and "main.yaml:7" in caplog.text
    # The same broken state is not reloaded (nor logged) again on every poll.
    caplog.clear()
    assert holder.poll() is False and caplog.text == ""
    # Fixing the file recovers.
    (policy_dir / "main.yaml").write_text(POLICY.format(program="curl"))
    assert holder.poll() is True
    assert holder.last_error is None and decide(holder, "curl x") == "deny"


def test_reload_raises_and_keeps_the_set(policy_dir: Path) -> None:
    holder = PolicyHolder(policy_dir)
    good = holder.current
    (policy_dir / "main.yaml").write_text("version: [")
    with pytest.raises(PolicyError):
        holder.reload()
    assert holder.current is good and holder.last_error is not None


def test_a_vanished_directory_keeps_the_set(policy_dir: Path) -> None:
    holder = PolicyHolder(policy_dir)
    (policy_dir / "main.yaml").unlink()
    policy_dir.rmdir()
    assert holder.poll() is False
    assert decide(holder, "rm x") == "deny"
    assert holder.last_error is not None and "does not exist" in holder.last_error.message


def test_a_broken_directory_fails_at_start(policy_dir: Path) -> None:
    (policy_dir / "main.yaml").write_text("policies: []\n")
    with pytest.raises(PolicyError, match="missing 'version'"):
        PolicyHolder(policy_dir)


def test_same_size_edits_in_one_clock_tick_are_seen(policy_dir: Path) -> None:
    holder = PolicyHolder(policy_dir)
    for program in ("cp", "mv", "ls"):  # same length each time, written back to back
        (policy_dir / "main.yaml").write_text(POLICY.format(program=program))
        assert holder.poll() is True
        assert decide(holder, f"{program} x") == "deny"


def test_a_replaced_set_is_freed_by_reference_counting(policy_dir: Path) -> None:
    # The daemon freezes each new set, and the collector never frees frozen objects; with the
    # collector off, the replaced set (its plans and command memos too) must still go.
    holder = PolicyHolder(policy_dir)
    assert decide(holder, "rm -rf /tmp/x") == "deny" and decide(holder, "ls ~/x") == "allow"
    replaced = weakref.ref(holder.current)
    gc.disable()
    try:
        (policy_dir / "main.yaml").write_text(POLICY.format(program="cp"))
        assert holder.poll() is True
        assert replaced() is None
    finally:
        gc.enable()
    assert decide(holder, "cp a b") == "deny"


def test_touching_without_a_change_does_not_reload(policy_dir: Path) -> None:
    holder = PolicyHolder(policy_dir)
    path = policy_dir / "main.yaml"
    path.write_text(path.read_text())
    assert holder.poll() is False
