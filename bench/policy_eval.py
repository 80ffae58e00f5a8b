"""Policy evaluation speed: µs per call (p50, p99) for the standard policy and for 1,000 policies.

    python -m bench.policy_eval [--rounds N] [--stages]

The corpus is every case of policies/tests/standard-tests.yaml (shell commands - everyday and
attacks - plus reads, writes, edits and fetches) and calls to synthetic custom tools. Each
figure is printed next to a baseline measured in the same run: one dict lookup plus one
precompiled regex search per call, the least any policy check could cost.

"cold" clears the memos of decisions, of parsed commands, of their effects and of wildcard
targets before every call, so each command is parsed, its effects derived and matched from
scratch (only what is built from the policies is kept); "warm" lets repeated calls hit the
memos, as an agent that runs `git status` a hundred times does.

--stages also times two stages of a cold evaluation alone, for the standard policy: parsing
the shell calls' commands, and deriving every call's effects from its parsed command or its
arguments (what a call reads, writes, runs, contacts…).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rampartd.models import ToolCall
from rampartd.policy import PolicySet, compile_text
from rampartd.policy.cases import read_test_file
from rampartd.policy.effects import call_effects
from rampartd.policy.engine import call_tool_class, evaluate
from rampartd.policy.shell.parse import ParsedCommand, parse_command
from rampartd.policy.subjects import command_text

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


STANDARD = (REPO / "policies" / "standard.yaml").read_text()
CASES = REPO / "policies" / "tests" / "standard-tests.yaml"


def _rule(action: str, when: str) -> str:
    return f"      - action: {action}\n        when: {when}\n"


def synthetic_policies(count: int) -> str:
    """`count` policies over many tools: commands, paths, domains, params, sessions."""
    out = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            tool = "exec"
            rules = (_rule("deny", f'{{command_matches: ["prog{i} --force *", '
                                   f'"re:^tool{i}\\\\s+(rm|drop)\\\\b"]}}')
                     + _rule("ask", f'{{command_matches: ["prog{i} *"]}}'))
        elif kind == 1:
            tool = "[read, write, edit]"
            rules = _rule("deny", f'{{path_matches: ["/srv/app{i}/**", "**/secret{i}.txt"]}}')
        elif kind == 2:
            tool = "fetch"
            rules = (_rule("deny", f'{{domain_matches: ["*.site{i}.example"]}}')
                     + _rule("ask", f'{{url_matches: ["http://*/v{i}/*"]}}'))
        elif kind == 3:
            tool = f"custom_{i}"
            rules = (_rule("deny", f"{{params: {{amount: {{gt: {i * 10}}}}}}}")
                     + _rule("ask", "{params: {currency: {not_in: [EUR, USD]}}}"))
        else:
            tool = "exec"
            rules = _rule("ask", f'{{session_matches: ["ops-{i}-*"], '
                                 f'command_contains: ["deploy{i}"]}}')
        out.append(f"  - name: synthetic-{i}\n    priority: {i % 200}\n"
                   f"    match: {{tool: {tool}}}\n    rules:\n{rules}")
    return "".join(out)


def corpus() -> list[ToolCall]:
    calls = [case.call for case in read_test_file(CASES).cases]
    calls += [ToolCall(f"custom_{i}", "bench", "s", {"amount": i, "currency": "EUR"})
              for i in range(3, 1000, 25)]
    return calls


def measure(fn: Callable[[T], object], calls: list[T], rounds: int,
            before: Callable[[], None] | None = None) -> list[float]:
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        order = calls[:]
        random.shuffle(order)
        for call in order:
            if before is not None:
                before()
            start = clock()
            fn(call)
            samples.append((clock() - start) / 1000)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# One call's effect derivation, as the engine asks for it: tool class, params, parsed, cwd.
_EffectsInput = tuple[str, Mapping[str, Any], ParsedCommand | None, str | None]


def stages(ps: PolicySet, calls: list[ToolCall], rounds: int
           ) -> list[tuple[str, tuple[float, float]]]:
    """Rows for the parse of every shell call's command and the effects of every call, each
    timed alone (neither has a memo: every run does the whole work)."""
    texts: list[str] = []
    inputs: list[_EffectsInput] = []
    for call in calls:
        tool = call_tool_class(ps, call)
        parsed = None
        if tool == "exec":
            text = command_text(call.params)
            texts += [text] if text is not None else []
            parsed = parse_command(text) if text is not None else ParsedCommand("", ())
        inputs.append((tool, call.params, parsed, call.cwd))
    home = ps.home
    parse = summary(measure(parse_command, texts, rounds))
    effects = summary(measure(lambda a: call_effects(a[0], a[1], a[2], cwd=a[3], home=home),
                              inputs, rounds))
    return [(f"  parse ({len(texts)} shell commands)", parse),
            (f"  effects ({len(inputs)} calls)", effects)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--stages", action="store_true",
                        help="also time parsing and effect derivation alone (standard policy)")
    args = parser.parse_args()
    random.seed(7)

    standard = compile_text(STANDARD, file="standard.yaml", home="/home/u")
    big_text = STANDARD + synthetic_policies(1000)
    started = time.perf_counter()
    big = compile_text(big_text, file="big.yaml", home="/home/u")
    compile_ms = (time.perf_counter() - started) * 1000
    calls = corpus()

    table = {"exec": re.compile(r"^rm\s"), "read": re.compile(r"/\.ssh/")}
    fallback = re.compile(r"x")

    def baseline(call: ToolCall) -> object:
        rx = table.get(call.tool, fallback)
        text = call.params.get("command") or call.params.get("path") or call.params.get("url")
        return rx.search(text if isinstance(text, str) else "")

    def clear(ps: PolicySet) -> Callable[[], None]:
        plans = [ps.plan_for(t) for t in {c.tool for c in calls}]

        def run() -> None:
            ps.decisions.clear()
            ps.reach().forget_targets()
            for plan in plans:
                plan.commands.clear()
                plan.effects.clear()  # what commands' effects matched to
        return run

    for ps in (standard, big):  # build every plan and warm the interpreter once
        for call in calls:
            evaluate(ps, call)

    base = summary(measure(baseline, calls, args.rounds))
    rows = [("baseline: dict lookup + one regex", base)]
    results: dict[str, tuple[float, float]] = {}
    for label, ps in (("standard policy", standard), ("1,000 policies + standard", big)):
        cold = summary(measure(partial(evaluate, ps), calls, args.rounds, clear(ps)))
        warm = summary(measure(partial(evaluate, ps), calls, args.rounds))
        results[label] = cold
        rows.append((f"{label}, cold", cold))
        rows.append((f"{label}, warm", warm))
        results[label + " warm"] = warm
        if args.stages and ps is standard:
            rows += stages(standard, calls, args.rounds)

    print(f"policy evaluation: {len(calls)} calls x {args.rounds} rounds; "
          f"standard = {standard.policy_count} policies / {standard.rule_count} rules; "
          f"big = {big.policy_count} policies / {big.rule_count} rules "
          f"(compiled in {compile_ms:.0f} ms)")
    print(f"{'':40} {'p50 µs':>8} {'p99 µs':>8} {'p50 vs baseline':>16}")
    for label, (p50, p99) in rows:
        print(f"{label:40} {p50:8.1f} {p99:8.1f} {p50 / base[0]:15.1f}x")
    std_cold, big_cold = results["standard policy"], results["1,000 policies + standard"]
    std_warm = results["standard policy warm"]
    big_warm = results["1,000 policies + standard warm"]
    print(f"1,000 policies / standard (p50): cold {big_cold[0] / std_cold[0]:.2f}x, "
          f"warm {big_warm[0] / std_warm[0]:.2f}x  (target <= 3x)")
    print(f"standard policy p50: cold {std_cold[0]:.1f} µs (target <= 25 µs), "
          f"warm {std_warm[0]:.1f} µs (target <= 8 µs)")


if __name__ == "__main__":
    main()
