"""Long work stays off the event loop: while a big policy set compiles or a call full of
secrets is redacted, a probe task on the real app's loop keeps being scheduled on time.

The bound is relative to the work measured in the same run (the loop must never stall for
more than a fraction of it), so a loaded machine slows both sides alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from rampartd.daemon import prepare_home
from rampartd.policy import PolicySet, load_policy_dir
from rampartd.web.app import create_app
from rampartd.web.keys import RELOAD_GATE, SERVICE
from tests.api_policy import write_policy
from tests.conftest import make_settings

TICK = 0.005


class LagProbe:
    """Measures the longest delay between when a sleeping task should wake and when it does."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def run(self) -> None:
        """Sleep TICK repeatedly, keeping the worst overshoot."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(TICK)
            self.worst = max(self.worst, loop.time() - start - TICK)


@contextlib.asynccontextmanager
async def probing() -> AsyncIterator[LagProbe]:
    """A lag probe running for the duration of the block."""
    probe = LagProbe()
    task = asyncio.create_task(probe.run())
    await asyncio.sleep(TICK * 2)
    probe.worst = 0.0
    try:
        yield probe
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def big_policy(count: int) -> str:
    """A policy set with `count` policies of command, path and params rules."""
    lines = ['version: "1"', "default_action: allow", "policies:"]
    for i in range(count):
        lines += [f"  - name: p{i}", "    match: {tool: [exec, read, t" + str(i) + "]}",
                  "    rules:",
                  "      - action: deny",
                  f'        when: {{command_matches: ["tool{i} --flag *", "re:^x{i}[a-z]+$"]}}',
                  "      - action: ask",
                  f'        when: {{path_matches: ["**/secret{i}/**"],',
                  f"                params: {{n: {{gt: {i}}}}}}}"]
    return "\n".join(lines) + "\n"


async def small_set_app(aiohttp_client: Any, tmp_path: Path) -> tuple[Any, dict[str, str], Path]:
    """The real app started with a 10-policy set: (client, admin auth, its policy directory)."""
    policy_dir = write_policy(tmp_path / "pol", big_policy(10))
    s = make_settings(tmp_path / "home", policy_dir=str(policy_dir))
    prepare_home(s)
    client = await aiohttp_client(create_app(s))
    return client, {"Authorization": f"Bearer {s.token_path.read_text().strip()}"}, policy_dir


@contextlib.contextmanager
def full_collections() -> Iterator[list[int]]:
    """How many objects each full (generation-2) collection started in the block had to scan."""
    scanned: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            scanned.append(sum(len(gc.get_objects(generation)) for generation in range(3)))

    gc.callbacks.append(record)
    try:
        yield scanned
    finally:
        gc.callbacks.remove(record)


async def test_reloading_a_big_policy_set_does_not_stall_the_loop(
        aiohttp_client: Any, tmp_path: Path) -> None:
    client, auth, policy_dir = await small_set_app(aiohttp_client, tmp_path)
    write_policy(policy_dir, big_policy(1500))
    started = time.perf_counter()
    load_policy_dir(policy_dir).warm()  # what one reload costs on this machine, right now
    compile_seconds = time.perf_counter() - started
    async with probing() as probe:
        resp = await client.post("/v1/policy/reload", headers=auth)
        assert resp.status == 200, await resp.text()
    status = await (await client.get("/v1/status", headers=auth)).json()
    assert status["policy_count"] == 1500
    assert compile_seconds > 0.1, "the policy set is too small to show a stall"
    assert probe.worst < compile_seconds / 2, (probe.worst, compile_seconds)


async def test_no_full_collection_scans_a_reload_s_objects(
        aiohttp_client: Any, tmp_path: Path) -> None:
    # A full collection holds the GIL while it scans, so one over the few hundred thousand
    # objects a compile creates stalls the loop (rampartd.heap). Counted, not timed: this
    # holds on any machine, however loaded.
    client, auth, policy_dir = await small_set_app(aiohttp_client, tmp_path)
    write_policy(policy_dir, big_policy(1500))
    gc.collect()
    gc.freeze()  # as the daemon does after start-up
    gc.collect()  # forget the heap's size: full passes are due as soon as objects pile up
    frozen = gc.get_freeze_count()
    try:
        with full_collections() as scanned:
            resp = await client.post("/v1/policy/reload", headers=auth)
            assert resp.status == 200, await resp.text()
        kept = gc.get_freeze_count() - frozen  # the new set, out of every later full pass
    finally:
        gc.unfreeze()
    assert (await resp.json())["policy_count"] == 1500
    assert max(scanned, default=0) * 10 < kept, (scanned, kept)


async def test_replaced_policy_sets_are_freed(aiohttp_client: Any, tmp_path: Path) -> None:
    # Each reload freezes the new set, and the collector never frees frozen objects: a
    # replaced set must go by reference counting alone, plans and memos included.
    client, auth, policy_dir = await small_set_app(aiohttp_client, tmp_path)
    service = client.app[SERVICE]
    gc.collect()
    gc.freeze()
    try:
        replaced: list[weakref.ref[PolicySet]] = []
        for n in (200, 300, 400):
            body = {"agent": "a", "session": "s", "params": {"command": "tool5 --flag x"}}
            resp = await client.post("/v1/tool/exec", json=body, headers=auth)
            assert (await resp.json())["decision"] == "deny"
            replaced.append(weakref.ref(service.policies.current))
            write_policy(policy_dir, big_policy(n))
            client.app[RELOAD_GATE].last = float("-inf")  # the previous reload is long ago
            resp = await client.post("/v1/policy/reload", headers=auth)
            assert (await resp.json())["policy_count"] == n
            assert [ref() is None for ref in replaced] == [True] * len(replaced)
    finally:
        gc.unfreeze()


async def test_a_call_full_of_secrets_does_not_stall_the_loop(
        client: Any, auth: dict[str, str]) -> None:
    # The daemon freezes what start-up built (daemon._serve); do the same with everything this
    # test process holds, or a full collection pass over earlier tests' objects is measured.
    gc.collect()
    gc.freeze()
    try:
        await _call_full_of_secrets(client, auth)
    finally:
        gc.unfreeze()


async def _call_full_of_secrets(client: Any, auth: dict[str, str]) -> None:
    params = {f"passwd{i}": f"x{i}y" for i in range(40_000)}  # just under 1 MiB
    body = json.dumps({"agent": "a", "session": "s", "params": {"command": "ls", **params}})
    started = time.perf_counter()
    async with probing() as probe:
        resp = await client.post("/v1/tool/exec", data=body.encode(), headers=auth)
        assert resp.status in (200, 202, 403), await resp.text()
    call_seconds = time.perf_counter() - started
    record = await (await client.get("/v1/audit/events?limit=1", headers=auth)).json()
    assert record["events"][0]["tool"] == "exec"
    assert "x12345y" not in str(record)
    assert probe.worst < max(0.05, call_seconds / 4), (probe.worst, call_seconds)


async def test_scanning_a_large_tool_output_does_not_stall_the_loop(
        client: Any, auth: dict[str, str]) -> None:
    gc.collect()
    gc.freeze()  # as in the test above: measure the daemon, not this process's heap
    try:
        output = "".join(f"line {i} password=s{i}cret token ghp_{i:036d}\n" for i in range(2500))
        body = {"agent": "a", "session": "s", "params": {"command": "cat log"},
                "output": output[:128 * 1024]}
        started = time.perf_counter()
        async with probing() as probe:
            resp = await client.post("/v1/tool-output/exec", json=body, headers=auth)
            assert resp.status == 200, await resp.text()
        call_seconds = time.perf_counter() - started
        assert (await resp.json())["secrets"] is True
        assert probe.worst < max(0.05, call_seconds / 4), (probe.worst, call_seconds)
    finally:
        gc.unfreeze()
