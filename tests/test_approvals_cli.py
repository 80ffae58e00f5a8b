"""`rampartd approvals …` against a real daemon process: list, approve, deny, link, watch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import Daemon, cli_env, invoke, running_daemon
from tests.test_approvals import ASK_POLICY, call_body

pytestmark = pytest.mark.e2e


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A real daemon running the ask policy."""
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "transfers.yaml").write_text(ASK_POLICY)
    with running_daemon(tmp_path / "home", "--policy-dir", str(policy_dir),
                        "--approval-timeout", "60") as d:
        yield d


def run(d: Daemon, *args: str) -> Result:
    """Run `rampartd approvals ARGS` in process."""
    return invoke(d, "approvals", *args)


def http(d: Daemon, method: str, path: str, body: Any = None,
         token: str | None = "admin") -> tuple[int, Any]:
    """One request to the daemon; returns (status, decoded JSON)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {d.token}"
    url = path if path.startswith("http") else d.base_url + path
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ask(d: Daemon, **kwargs: Any) -> str:
    """An ask through the daemon; returns the approval id."""
    status, body = http(d, "POST", "/v1/tool/transfer_funds", call_body(**kwargs))
    assert status == 202, body
    return str(body["approval_id"])


def test_list_approve_and_deny(daemon: Daemon) -> None:
    result = run(daemon, "list")
    assert result.exit_code == 0 and "no pending approvals" in result.output
    first = ask(daemon, amount=250)
    second = ask(daemon, amount=260)
    result = run(daemon, "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2 and lines[0].startswith(first) and lines[1].startswith(second)
    assert "agent-a/s1" in lines[0] and "transfer_funds" in lines[0] and "run-1" in lines[0]
    data = json.loads(run(daemon, "list", "--json").output)
    assert [a["id"] for a in data["approvals"]] == [first, second]

    result = run(daemon, "approve", first, "--reason", "expected payout")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"approved {first}")
    result = run(daemon, "deny", second, "--by", "carol")
    assert result.exit_code == 0 and "by carol" in result.output
    assert http(daemon, "GET", f"/v1/approvals/{second}")[1]["resolved_by"] == "carol"
    view = http(daemon, "GET", f"/v1/approvals/{first}")[1]
    assert (view["status"], view["reason"]) == ("approved", "expected payout")
    assert view["resolved_by"].startswith("cli:")

    # errors are one line and a non-zero exit
    result = run(daemon, "approve", first)
    assert result.exit_code != 0 and "already approved" in result.output
    assert "Traceback" not in result.output
    result = run(daemon, "deny", "01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert result.exit_code != 0 and "no approval" in result.output
    result = run(daemon, "list", "--status", "all")
    assert len(result.output.splitlines()) == 2


def test_link_prints_a_signed_url_that_decides_once(daemon: Daemon) -> None:
    approval_id = ask(daemon)
    result = run(daemon, "link", approval_id)
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url.startswith(f"{daemon.base_url}/v1/approvals/{approval_id}/link?action=approve")
    status, shown = http(daemon, "GET", url, token=None)
    assert status == 200 and shown["approval"]["id"] == approval_id
    status, decided = http(daemon, "POST", url, token=None)
    assert status == 200 and decided["status"] == "approved"
    assert http(daemon, "POST", url, token=None)[0] == 410
    result = run(daemon, "link", approval_id)
    assert result.exit_code != 0 and "already approved" in result.output

    other = ask(daemon, amount=999)
    url = run(daemon, "link", other, "--action", "deny", "--ttl", "30").output.strip()
    assert "action=deny" in url
    assert http(daemon, "POST", url.replace("action=deny", "action=approve"),
                token=None)[0] == 403
    assert http(daemon, "POST", url, token=None)[1]["status"] == "denied"


def test_watch_prints_new_approvals(daemon: Daemon) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    proc = subprocess.Popen([sys.executable, "-m", "rampartd", "approvals", "watch"],
                            env={**env, **cli_env(daemon)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "watching approvals" in proc.stderr.readline()  # subscribed
        approval_id = ask(daemon, amount=4321)
        line = proc.stdout.readline()
        assert line.startswith(approval_id), line
        assert "4321" in line and "agent-a/s1" in line and "pending" in line
        # resolutions are not printed without --all; the next request is
        http(daemon, "POST", f"/v1/approvals/{approval_id}/resolve",
             {"approved": False, "resolved_by": "x"})
        second = ask(daemon, amount=1234)
        assert proc.stdout.readline().startswith(second)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_watch_all_shows_bulk_resolutions(daemon: Daemon) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPARTD_")}
    proc = subprocess.Popen([sys.executable, "-m", "rampartd", "approvals", "watch", "--all"],
                            env={**env, **cli_env(daemon)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "watching approvals" in proc.stderr.readline()
        ids = [ask(daemon, amount=300, tool_call_id="tc-1"),
               ask(daemon, amount=400, tool_call_id="tc-2")]
        assert proc.stdout.readline().startswith(ids[0])
        assert proc.stdout.readline().startswith(ids[1])
        status, _ = http(daemon, "POST", "/v1/approvals/bulk-resolve", {
            "agent": "agent-a", "session": "s1", "run_id": "run-1", "action": "approve",
            "scope": "pending", "ids": ids, "resolved_by": "alice"})
        assert status == 200
        line = proc.stdout.readline()
        assert line.startswith("batch resolved: run run-1, 3 records"), line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
