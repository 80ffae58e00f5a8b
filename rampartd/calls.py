"""The one place that sequences a tool call: agent status → engine → audit → approvals.

The HTTP layer parses and answers; this module decides what happens and in which order, and
keeps the fail-closed rule: if the record cannot be made durable, the call is not allowed.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from rampartd.approvals.queue import Approvals
from rampartd.audit.drafts import decision_draft
from rampartd.audit.store import AuditStore, RecordDraft
from rampartd.errors import PolicyError
from rampartd.heap import full_passes_deferred, keep_out_of_full_passes
from rampartd.models import Decision, Outcome, ToolCall
from rampartd.policy import PolicyHolder
from rampartd.policy.counter import SlidingWindowCounter, requirements
from rampartd.policy.engine import evaluate
from rampartd.policy.explain import Explanation, explain
from rampartd.policy.guard import GUARD_POLICY

# Calls with more text than this (command and string arguments) are evaluated off the loop.
LARGE_CALL_CHARS = 4096
_T = TypeVar("_T")


def _call_chars(call: ToolCall) -> int:
    size = 0
    for value in call.params.values():
        items = value if isinstance(value, list) else [value]
        size += sum(len(v) for v in items if isinstance(v, str))
    return size


def refusal(agent_status: str | None) -> Decision | None:
    """The deny a suspended or revoked agent gets without policy evaluation, else None."""
    if agent_status is None or agent_status == "active":
        return None
    return Decision("deny", f"agent is {agent_status}; its calls are refused")


class ToolService:
    """Evaluates, records and (for asks) hands tool calls to the approval queue."""

    def __init__(self, *, mode: str, policies: PolicyHolder, store: AuditStore,
                 counter: SlidingWindowCounter, approvals: Approvals) -> None:
        self.mode = mode
        self.policies = policies
        self.store = store
        self.counter = counter
        self._counter_fit: tuple[int, float] | None = None  # (keep, horizon) it was sized for
        self._reloading = asyncio.Lock()  # the holder's state is not shared between threads
        self.approvals = approvals
        self._large = asyncio.Semaphore(1)
        # (tool, action) -> calls answered; read by /metrics, so counting costs one dict update.
        self.decided: collections.Counter[tuple[str, str]] = collections.Counter()

    async def seed_counter(self) -> None:
        """Size the call counter for the active rules; when they need more history than it
        holds (at start-up, or a reload with a larger max or window), read it from the audit
        log, so limits give the same answers before and after a restart."""
        keep, horizon = requirements(self.policies.current)
        if self._counter_fit is not None and keep <= self._counter_fit[0] \
                and horizon <= self._counter_fit[1]:
            self.counter.reconfigure(keep, horizon)  # smaller bounds: trim what is held
        else:
            history = await self.store.recent_calls(time.time() - horizon, per_key=keep) \
                if keep else []
            self.counter.reconfigure(keep, horizon, history)
        self._counter_fit = (keep, horizon)

    async def preflight(self, call: ToolCall, *, agent_status: str | None = None) -> Decision:
        """What /v1/tool would decide, without counting or recording the call."""
        return refusal(agent_status) or await self.evaluate(call, time.time())

    async def evaluate(self, call: ToolCall, now: float) -> Decision:
        """The engine's decision; a large call is evaluated off the event loop."""
        return await self._run(call, evaluate, now)

    async def explain(self, call: ToolCall) -> Explanation:
        """The decision with what it was based on (POST /v1/test)."""
        return await self._run(call, explain, time.time())

    async def _run(self, call: ToolCall, func: Callable[..., _T], now: float) -> _T:
        job = functools.partial(func, self.policies.current, call, counter=self.counter, now=now)
        if _call_chars(call) <= LARGE_CALL_CHARS:
            return job()
        # Evaluation is bounded but not free for a crafted 64 KiB command: such calls run on a
        # worker thread, one at a time, so the event loop keeps answering everyone else.
        async with self._large:
            return await asyncio.get_running_loop().run_in_executor(None, job)

    async def call(self, call: ToolCall, *, agent_status: str | None = None,
                   ask_host: bool = False) -> Outcome:
        """Decide one tool call and make its record durable before anyone acts on it.

        `agent_status` is the calling agent's registry status when it used its own token; a
        suspended or revoked agent is denied without policy evaluation. With `ask_host` an ask
        is recorded as handed to the host (which asks its person) instead of being queued.
        """
        outcome = await self._decide(call, agent_status, ask_host)
        self.decided[call.tool, outcome.decision.action] += 1
        return outcome

    async def _decide(self, call: ToolCall, agent_status: str | None,
                      ask_host: bool = False) -> Outcome:
        refused = refusal(agent_status)
        if refused is not None:
            # Refused calls count like any other, as they do when rebuilt from the log.
            self.counter.record(call.agent, call.tool, time.time())
            record = await self.store.append(
                decision_draft(call, refused, agent_status=agent_status))
            return Outcome(refused, record, "denied")
        now = time.time()
        decision = await self.evaluate(call, now)
        self.counter.record(call.agent, call.tool, now)
        # Monitor mode allows what policies deny, but never what the guard denies.
        monitor = self.mode == "monitor" and decision.policy != GUARD_POLICY
        if decision.action == "ask" and not monitor:
            if ask_host:
                return await self._hand_to_host(call, decision)
            # A grant left by an approval allows the call; otherwise it waits for a person.
            return await self.approvals.handle_ask(call, decision)
        record = await self.store.append(
            decision_draft(call, decision, mode="monitor" if monitor else None))
        if monitor or decision.allowed:
            return Outcome(decision, record, "allowed")
        return Outcome(decision, record, "denied")

    async def _hand_to_host(self, call: ToolCall, decision: Decision) -> Outcome:
        # The record is what the host's later report is matched with (rampartd.audit.handed).
        record = await self.store.append(decision_draft(call, decision, ask="host"))
        return Outcome(decision, record, "pending", approval={"ask": "host"})

    async def await_approval(self, call: ToolCall, outcome: Outcome, seconds: float, *,
                             agent_status: Callable[[], str | None],
                             connected: Callable[[], bool]) -> Outcome:
        """Hold a pending ask up to `seconds` until its approval is decided (allowed or denied).

        An approved call is retried as if the agent had sent it again: re-evaluated with the
        agent's status and the policy as they are now, so a grant never overrides a deny, and
        only while the caller is still connected to receive the answer.
        """
        if outcome.verdict != "pending" or seconds <= 0:
            return outcome
        settled = await self.approvals.settle(outcome, seconds)
        if settled is not None:
            return settled
        if not connected():  # nobody would run it: the grant stays for a later retry
            return outcome
        return await self.call(call, agent_status=agent_status())

    async def poll_policies(self) -> bool:
        """Reload if the policy directory changed; True if a new set is in force."""
        return await self._load_policies(self.policies.poll)

    async def reload_policies(self, *, trigger: str) -> None:
        """Reload now; record the new set, or record and re-raise why the edit was refused."""
        try:
            await self._load_policies(self.policies.reload)
        except PolicyError as exc:
            await self.record_reload_failure(exc, trigger=trigger)
            raise
        await self.record_reload(trigger=trigger)

    async def _load_policies(self, load: Callable[[], _T]) -> _T:
        """Run a load of the policy directory: reading and compiling take a while for a big
        set, so in a worker thread, one at a time, with the collector's full passes deferred
        until the new set is in force and frozen (rampartd.heap explains the stalls)."""
        async with self._reloading:
            previous = weakref.ref(self.policies.current)  # not kept alive (and frozen) here
            with full_passes_deferred():
                result = await asyncio.to_thread(load)
                if self.policies.current is not previous():
                    keep_out_of_full_passes()
        return result

    async def record_reload_failure(self, exc: PolicyError, *, trigger: str) -> None:
        """Record that a policy edit was refused and the last good set stays active."""
        await self.store.append(RecordDraft(
            kind="policy.reload_failed",
            detail={"trigger": trigger, "error": exc.message, "file": exc.file,
                    "line": exc.line}))

    async def record_reload(self, *, trigger: str) -> None:
        """Record that a new policy set is active (and size the call counter for it)."""
        # No reference to the set is held across the awaits: a set replaced meanwhile would
        # then be freed here, on the event loop, all at once (see PolicyHolder._replace).
        detail = {"trigger": trigger, "policies": self.policies.current.policy_count,
                  "rules": self.policies.current.rule_count,
                  "policy_dir": str(self.policies.current.source_dir)}
        await self.seed_counter()
        await self.store.append(RecordDraft(kind="policy.reloaded", detail=detail))
