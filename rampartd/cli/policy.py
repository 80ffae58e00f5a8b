"""`rampartd policy lint|test|summary` and `rampartd check`: parse, call the library, print."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rampartd.errors import RampartdError
from rampartd.models import ToolCall
from rampartd.policy import PolicySet
from rampartd.policy.cases import CaseResult, load_policy_target, run_test_file
from rampartd.policy.counter import SlidingWindowCounter
from rampartd.policy.describe import describe_rule, summarize
from rampartd.policy.explain import Explanation, explain


def _active_dir() -> Path:
    from rampartd.config import load_settings

    return Path(load_settings().policy_dir)


def _active_set() -> tuple[PolicySet, dict[str, Any]]:
    """The active policies as the running daemon holds them: its guard first (compiled for
    its pid and port when it is running), then the policy directory."""
    from rampartd.config import load_settings
    from rampartd.instance import running_daemon
    from rampartd.policy.guard import describe, guard_for, relaxed
    from rampartd.policy.reload import load_with_builtin

    settings = load_settings()
    pid = None
    running = running_daemon(settings.home)
    if running is not None:
        pid = running[0]
        port = urllib.parse.urlsplit(running[1]).port
        settings = dataclasses.replace(settings, port=port or settings.port)
    policy_set = load_with_builtin(settings.policy_dir, guard_for(settings, pid=pid),
                                   tool_names=settings.tool_names)
    return policy_set, describe(relaxed(settings.guard))


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def _guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into one line on stderr and a non-zero exit, never a traceback."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RampartdError as exc:
            raise _fail(exc.message) from None
        except BrokenPipeError:
            raise  # the reader left: the command line's group stops quietly
        except OSError as exc:
            raise _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None

    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


@click.group()
def policy() -> None:
    """Check, test and describe policies."""


@policy.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@_guard
def lint(directory: Path | None) -> None:
    """Load DIR (default: the active policy directory); report errors and warnings."""
    target = directory if directory is not None else _active_dir()
    policy_set = load_policy_target(target)
    for warning in policy_set.warnings:
        click.echo(f"warning: {warning}")
    click.echo(f"ok: {policy_set.policy_count} policies, {policy_set.rule_count} rules, "
               f"default action {policy_set.default_action}, {len(policy_set.warnings)} "
               f"warning(s)")


def _table(results: list[CaseResult]) -> list[str]:
    rows = [("", "line", "expected", "got", "test")]
    for r in results:
        expected = r.case.expect + (f" ({r.case.expect_policy})" if r.case.expect_policy else "")
        got = r.action + (f" ({r.policy})" if r.policy else "")
        rows.append(("PASS" if r.passed else "FAIL", str(r.case.line), expected, got,
                     r.case.name.replace("\n", "\\n")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row))
            .rstrip() for row in rows]


@policy.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--policy-dir", type=click.Path(path_type=Path), default=None,
              help="policies for test files that name none (default: the active directory)")
@click.option("--failures-only", is_flag=True, help="print only the failing cases")
@_guard
def test(files: tuple[Path, ...], policy_dir: Path | None, failures_only: bool) -> None:
    """Run YAML policy test FILES; print a pass/fail table; exit 1 on any failure."""
    cache: list[PolicySet] = []

    def default() -> PolicySet:
        if not cache:
            cache.append(load_policy_target(policy_dir or _active_dir()))
        return cache[0]

    failed = total = 0
    for path in files:
        results = run_test_file(path, default)
        total += len(results)
        bad = [r for r in results if not r.passed]
        failed += len(bad)
        click.echo(f"{path}:")
        for line in _table(bad if failures_only else results):
            click.echo("  " + line)
    click.echo(f"{total - failed} passed, {failed} failed")
    if failed:
        raise SystemExit(1)


@policy.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@_guard
def summary(directory: Path | None, as_json: bool) -> None:
    """Describe every policy and rule in plain words."""
    policy_set = load_policy_target(directory if directory is not None else _active_dir())
    items = summarize(policy_set)
    if as_json:
        click.echo(json.dumps({"default_action": policy_set.default_action, "policies": items},
                              indent=2))
        return
    click.echo(f"default action: {policy_set.default_action}")
    for item in items:
        state = "" if item["enabled"] else " (disabled)"
        click.echo(f"\n{item['name']}{state} — priority {item['priority']}, "
                   f"{item['file']}:{item['line']}, tools {', '.join(item['match']['tool'])}")
        if item["description"]:
            click.echo(f"  {item['description']}")
        for rule in item["rules"]:
            click.echo(f"  {rule['index']}. {rule['description']}")


@policy.command()
@_guard
def profiles() -> None:
    """List the shipped policy profiles; mark the configured one and those in the directory."""
    from rampartd.config import load_settings
    from rampartd.profiles import PROFILES

    settings = load_settings()
    width = max(len(p.name) for p in PROFILES)
    for p in PROFILES:
        marks = [m for m, on in (("configured", p.name == settings.profile),
                                 ("in the policy directory",
                                  (settings.policy_dir / p.file_name).exists())) if on]
        suffix = f"  [{', '.join(marks)}]" if marks else ""
        click.echo(f"{p.name.ljust(width)}  {p.summary}{suffix}")
    click.echo(f"\npolicy directory: {settings.policy_dir}; choose with `serve --profile NAME` "
               "or the profile setting")


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise _fail(f"--param {pair!r}: use NAME=VALUE (VALUE may be JSON)")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


@click.command()
@click.argument("command", required=False)
@click.option("--tool", default="exec", show_default=True, help="tool name")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="a tool argument (repeatable; VALUE may be JSON)")
@click.option("--agent", default="cli", show_default=True)
@click.option("--session", default="cli", show_default=True)
@click.option("--cwd", default=None, help="working directory for relative paths")
@click.option("--policy-dir", type=click.Path(path_type=Path), default=None,
              help="policy directory or file (default: the active directory)")
@click.option("--json", "as_json", is_flag=True, help="print the decision as JSON")
@_guard
def check(command: str | None, tool: str, params: tuple[str, ...], agent: str, session: str,
          cwd: str | None, policy_dir: Path | None, as_json: bool) -> None:
    """Evaluate one call (e.g. check "rm -rf ~") and explain which rule decided.

    Without --policy-dir the call is judged as the running daemon would: its built-in guard
    first, then the active policy directory.

    Exit status: 0 allow or watch, 2 deny, 3 ask, 1 on errors.
    """
    args = _parse_params(params)
    guard: dict[str, Any] | None = None
    if policy_dir is not None:
        policy_set = load_policy_target(policy_dir)
    else:
        policy_set, guard = _active_set()
    if command is not None:
        cls = policy_set.tool_class(tool)
        key = {"exec": "command", "fetch": "url"}.get(cls, "path" if cls in (
            "read", "write", "edit", "grep", "glob") else "command")
        args[key] = command
    if not args:
        raise _fail("give a COMMAND or --param NAME=VALUE")
    call = ToolCall(tool=tool, agent=agent, session=session, params=args, cwd=cwd)
    why = explain(policy_set, call, counter=SlidingWindowCounter(), now=0.0)
    decision = why.decision
    if as_json:
        click.echo(json.dumps({"decision": decision.action, "message": decision.message,
                               "policy": decision.policy,
                               "matched_policies": list(decision.matched_policies),
                               "suggestions": list(decision.suggestions),
                               "explanation": why.as_dict(),
                               **({"guard": guard} if guard is not None else {})}, indent=2))
    else:
        _print_explanation(why, policy_set)
        if guard is not None:
            rules = ", ".join(r["id"] for r in guard["rules"]) or "none (guard: off)"
            click.echo(f"guard ({guard['policy']}, checked first): {rules}"
                       + (f"; relaxed: {', '.join(guard['relaxed'])}" if guard["relaxed"]
                          else ""))
    if decision.action in ("deny", "ask"):
        raise SystemExit(2 if decision.action == "deny" else 3)


def _print_explanation(why: Explanation, policy_set: PolicySet) -> None:
    decision = why.decision
    click.echo(f"{decision.action}: {decision.message}")
    parsed = why.parsed
    if parsed is not None:
        click.echo("parsed as:")
        for comp in parsed.components:
            click.echo(f"  - {max(comp.forms, key=len)}")
        for pipe in parsed.pipelines:
            click.echo(f"  | {pipe}")
        if parsed.problem:
            click.echo(f"  ! {parsed.problem}")
    if why.effects:
        click.echo(f"effects ({why.tool_class}):")
        for n, e in enumerate(why.effects):
            rules = ", ".join(f"{m.match.policy.name} rule {m.match.rule.index + 1}"
                              for m in why.triggered(n))
            unknown = " (only known at run time)" if e.unknown else ""
            kind = f"{e.kind}:{e.flow}" if e.flow else e.kind
            click.echo(f"  {kind} {e.shown()}{unknown}" + (f"  -> {rules}" if rules else ""))
    if not why.matches:
        click.echo(f"no rule matched; default action {policy_set.default_action}")
    for note in why.matches:
        m = note.match
        mark = "*" if m.policy.name == decision.policy else " "
        hits = list(dict.fromkeys(f"`{h.pattern}` on {h.text}" for h in note.hits))
        if m.policy.name in policy_set.builtin:  # the guard's generated patterns say little
            why_text = m.rule.message
        else:
            why_text = ("matched " + ", ".join(hits)) if hits else describe_rule(m.rule)
        maybe = " (possibly: a target is only known at run time)" if m.possible else ""
        click.echo(f"{mark} {m.policy.name} rule {m.rule.index + 1} "
                   f"({m.rule.file}:{m.rule.line}) {m.action}{maybe}: {why_text}")
    for tip in decision.suggestions:
        click.echo(f"suggestion: {tip}")
