"""The call counter: memory bounded by the loaded rules, the same decisions as an unbounded
count, windows up to a day, and the same answers before and after a restart or a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rampartd.daemon import prepare_home
from rampartd.errors import PolicyError
from rampartd.policy import compile_text
from rampartd.policy.counter import MAX_WINDOW_SECONDS, SlidingWindowCounter, requirements
from rampartd.web.app import create_app
from tests.api_policy import write_policy
from tests.conftest import make_settings


def limit_policy(rules: str) -> str:
    """A policy document whose `deploy` rules are given."""
    return ('version: "1"\ndefault_action: allow\npolicies:\n  - name: deploy-limit\n'
            f"    match: {{tool: deploy}}\n    rules:\n{rules}")


def deny_over(limit: int, window: str) -> str:
    """One deny rule with a call_count condition."""
    return (f"      - action: deny\n        message: too many\n"
            f"        when: {{call_count: {{max: {limit}, window: {window}}}}}\n")


def test_requirements_are_the_largest_max_and_window() -> None:
    ps = compile_text(limit_policy(deny_over(3, "1h") + deny_over(30, "60s")))
    assert requirements(ps) == (30, 3600.0)
    assert requirements(compile_text('version: "1"\ndefault_action: allow\npolicies: []\n')) \
        == (0, 0.0)


def test_memory_is_bounded_by_keep_and_horizon() -> None:
    counter = SlidingWindowCounter(keep=5, horizon_seconds=60)
    for i in range(100_000):
        counter.record(f"agent-{i % 7}", "deploy", i * 0.01)
    assert len(counter) <= 7 * 5
    assert counter.count("agent-0", "deploy", 60, 1000.0) == 5  # capped at keep
    nothing = SlidingWindowCounter(keep=0, horizon_seconds=0)
    for i in range(1000):
        nothing.record("a", "t", float(i))
    assert len(nothing) == 0 and nothing.count("a", "t", 60, 1000.0) == 0


def test_idle_keys_are_dropped_after_the_horizon() -> None:
    counter = SlidingWindowCounter(keep=3, horizon_seconds=10)
    for i in range(5000):  # each agent calls once, long ago relative to the last call
        counter.record(f"agent-{i}", "t", float(i))
    assert len(counter) < 5000 // 4  # swept every few thousand records


@settings(max_examples=200, deadline=None)
@given(times=st.lists(st.floats(min_value=0, max_value=500, allow_nan=False), max_size=60),
       limit=st.integers(min_value=0, max_value=8), window=st.floats(min_value=0.5, max_value=100),
       now=st.floats(min_value=0, max_value=600))
def test_bounded_counts_decide_like_unbounded_ones(times: list[float], limit: int,
                                                   window: float, now: float) -> None:
    bounded = SlidingWindowCounter(keep=limit, horizon_seconds=window)
    full = SlidingWindowCounter(keep=None, horizon_seconds=MAX_WINDOW_SECONDS)
    for ts in times:  # arbitrary order, as clocks and restarts produce
        bounded.record("a", "t", ts)
        full.record("a", "t", ts)
    newest = max(times, default=0.0)
    now = max(now, newest)  # decisions are made at or after the last recorded call
    held = bounded.count("a", "t", window, now)
    assert (held >= limit) == (full.count("a", "t", window, now) >= limit)
    assert held <= limit


def test_windows_longer_than_a_day_are_refused() -> None:
    compile_text(limit_policy(deny_over(3, "1d")))
    compile_text(limit_policy(deny_over(3, "86400")))
    for window in ("7d", "25h", "86401"):
        with pytest.raises(PolicyError, match="longest supported"):
            compile_text(limit_policy(deny_over(3, window)))


async def test_refusals_count_the_same_before_and_after_a_restart(
        aiohttp_client: Any, tmp_path: Path) -> None:
    policy_dir = write_policy(tmp_path / "pol", limit_policy(deny_over(3, "1h")))
    s = make_settings(tmp_path / "home", policy_dir=str(policy_dir))
    prepare_home(s)
    admin = {"Authorization": f"Bearer {s.token_path.read_text().strip()}"}
    first = await aiohttp_client(create_app(s))
    agent = await (await first.post("/v1/agents", json={"name": "ci"}, headers=admin)).json()
    own = {"Authorization": f"Bearer {agent['token']}"}
    url = f"/v1/agents/{agent['id']}"
    body = {"agent": "ci", "session": "s", "params": {}}
    await first.patch(url, json={"status": "suspended"}, headers=admin)
    for _ in range(3):  # refused while suspended: they still count
        assert (await first.post("/v1/tool/deploy", json=body, headers=own)).status == 403
    await first.patch(url, json={"status": "active"}, headers=admin)

    async def answer(client: Any) -> str:
        resp = await client.post("/v1/preflight/deploy", json=body, headers=own)
        return str((await resp.json())["decision"])

    before = await answer(first)
    await first.close()
    second = await aiohttp_client(create_app(s))
    assert before == await answer(second) == "deny"


async def test_a_reload_that_needs_more_history_reads_it_from_the_log(
        aiohttp_client: Any, tmp_path: Path) -> None:
    policy_dir = write_policy(tmp_path / "pol", limit_policy(deny_over(2, "1h")))
    s = make_settings(tmp_path / "home", policy_dir=str(policy_dir))
    prepare_home(s)
    admin = {"Authorization": f"Bearer {s.token_path.read_text().strip()}"}
    client = await aiohttp_client(create_app(s))
    body = {"agent": "ci", "session": "s", "params": {}}
    statuses = [(await client.post("/v1/tool/deploy", json=body, headers=admin)).status
                for _ in range(5)]
    assert statuses == [200, 200, 403, 403, 403]
    # The counter held only the newest 2; a limit of 4 needs all 5 calls of the last hour.
    write_policy(policy_dir, limit_policy(deny_over(4, "1h")))
    assert (await client.post("/v1/policy/reload", headers=admin)).status == 200
    resp = await client.post("/v1/preflight/deploy", json=body, headers=admin)
    assert (await resp.json())["decision"] == "deny"
