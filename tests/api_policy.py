"""A small, fixed policy for API tests, independent of the standard policy's evolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rampartd.config import Settings
from rampartd.daemon import prepare_home
from tests.conftest import make_settings

TEST_POLICY = """\
version: "1"
default_action: allow
policies:
  - name: block-rm
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["rm -rf *"]}
        message: recursive deletes are blocked
        suggestions: ["delete the exact files instead"]
  - name: ask-sudo
    match: {tool: exec}
    rules:
      - action: ask
        when: {command_matches: ["sudo *"]}
        message: sudo needs a human
  - name: watch-curl
    match: {tool: exec}
    rules:
      - action: watch
        when: {command_matches: ["curl *"]}
        message: network access is watched
  - name: no-ssh-keys
    match: {tool: read}
    rules:
      - action: deny
        when: {path_matches: ["**/.ssh/id_*"]}
        message: private keys are off limits
  - name: transfer-limit
    match: {tool: transfer_funds}
    rules:
      - action: deny
        when: {params: {amount: {gt: 1000}}}
        message: transfers over 1000 are refused
"""


def write_policy(directory: Path, text: str = TEST_POLICY) -> Path:
    """Write the test policy into a fresh policy directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "test.yaml").write_text(text, encoding="utf-8")
    return directory


def policy_settings(home: Path, text: str = TEST_POLICY, **flags: Any) -> Settings:
    """Settings for a prepared home whose policy directory (beside it) holds only `text`."""
    s = make_settings(home, policy_dir=str(write_policy(home.parent / "pol", text)), **flags)
    prepare_home(s)
    return s
