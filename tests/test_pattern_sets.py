"""RE2 pattern sets: every matching pattern is reported, across chunks, for long texts, and
when a set gives up (RE2 sets then report nothing) its patterns are searched one by one."""

from __future__ import annotations

from typing import Any

from rampartd.models import ToolCall
from rampartd.policy import compile_text
from rampartd.policy.engine import evaluate
from rampartd.policy.matchers import compile_regex
from rampartd.policy.policyset import SET_CHUNK, SET_MAX_TEXT, SET_SOURCE, Pattern, PatternSet


def patterns(count: int) -> list[Pattern]:
    out = []
    for i in range(count):
        regex = rf"\bword{i}\b"
        out.append(Pattern(i, "command", "pos", f"re:{regex}", regex, compile_regex(regex)))
    return out


class GivingUp:
    """An RE2 set whose automaton ran out of memory: it reports no match at all."""

    def Match(self, data: bytes) -> list[int]:
        return []


def test_matches_are_reported_from_every_chunk_and_for_long_texts() -> None:
    pset = PatternSet(patterns(SET_CHUNK + 10))
    assert len(pset.chunks) == 2
    assert pset.match("word3 and word1030 here") == {3, 1030}
    assert pset.match("nothing") == frozenset()
    long = "x " * SET_MAX_TEXT + "word7"
    assert pset.match(long) == {7}


def test_long_regexes_are_split_so_no_single_compile_is_long() -> None:
    width = SET_SOURCE // 4 + 1
    pats = [Pattern(i, "command", "pos", "", f"x{i}" + "a" * width, compile_regex("x"))
            for i in range(8)]
    pset = PatternSet(pats)
    assert [len(chunk) for _, _, chunk in pset.chunks] == [3, 3, 2]
    assert all(sum(len(p.regex) for p in chunk) <= SET_SOURCE for _, _, chunk in pset.chunks)


def test_a_set_that_gives_up_falls_back_to_single_searches() -> None:
    pset = PatternSet(patterns(20))
    _, pids, chunk = pset.chunks[0]
    pset.chunks[0] = (GivingUp(), pids, chunk)
    assert pset.match("run word4 then word11") == {4, 11}
    assert pset.match("nothing") == frozenset()


def test_a_deny_still_holds_when_the_command_set_gives_up() -> None:
    ps = compile_text('version: "1"\ndefault_action: allow\npolicies:\n'
                      '  - name: no-drop\n    match: {tool: exec}\n    rules:\n'
                      '      - action: deny\n        when: {command_matches: ["dropdb *"]}\n',
                      file="t.yaml", home="/home/u")
    plan = ps.plan_for("exec")
    command_set: Any = plan.sets["command"]
    for n, (_, pids, chunk) in enumerate(command_set.chunks):
        command_set.chunks[n] = (GivingUp(), pids, chunk)
    decision = evaluate(ps, ToolCall("exec", "a", "s", {"command": "dropdb prod"}))
    assert decision.action == "deny"
