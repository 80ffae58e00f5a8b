"""`rampartd bench`: run a security corpus against a policy and print its coverage per class."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import click

from rampartd.policy.cases import load_policy_target
from rampartd.policy.corpus import ClassScore, Outcome, Report, read_corpus, run_corpus
from rampartd.profiles import profile


def _data_file(*parts: str) -> Path:
    return Path(str(resources.files("rampartd.data").joinpath(*parts)))


def _shipped_corpus() -> Path:
    return _data_file("bench", "corpus.yaml")


def _score(score: ClassScore) -> dict[str, Any]:
    return {"class": score.name, "passed": score.passed, "total": score.total,
            "coverage": round(score.percent, 2)}


def _failure(outcome: Outcome) -> dict[str, Any]:
    case = outcome.case
    return {"id": case.id, "class": case.klass, "tool": case.case.call.tool,
            "params": dict(case.case.call.params), "expected": case.case.expect,
            "got": outcome.result.action, "policy": outcome.result.policy,
            "description": case.description}


def _print_text(report: Report, corpus: Path, policy: Path, counts: str) -> None:
    click.echo(f"corpus: {corpus} ({len(report.outcomes)} cases)")
    click.echo(f"policy: {policy} ({counts})")
    rows = [(s.name, str(s.passed), str(s.total), f"{s.percent:.1f}%")
            for s in report.classes()]
    rows += [("", "", "", "")]
    rows += [(s.name, str(s.passed), str(s.total), f"{s.percent:.1f}%")
             for s in (report.attacks, report.everyday)]
    header = ("class", "passed", "total", "coverage")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo((f"  {row[0].ljust(widths[0])}  " + "  ".join(
            cell.rjust(widths[i + 1]) for i, cell in enumerate(row[1:]))).rstrip())
    failures = report.failures
    if failures:
        click.echo(f"\n{len(failures)} failing case(s):")
    for o in failures:
        c = o.case
        got = o.result.action + (f" ({o.result.policy})" if o.result.policy else "")
        expected = "allowed" if not c.is_attack else f"{c.case.expect} or stricter"
        click.echo(f"  {c.id} [{c.klass}] expected {expected}, got {got}: {c.description}")
        click.echo(f"      {c.case.call.tool} {json.dumps(dict(c.case.call.params))}")


@click.command()
@click.argument("policy", required=False, type=click.Path(path_type=Path))
@click.option("--corpus", "corpus_path", type=click.Path(path_type=Path), default=None,
              help="corpus file (default: the shipped corpus)")
@click.option("--profile", "profile_name", default=None, metavar="NAME",
              help="bench a shipped profile (standard, paranoid, ci, yolo) instead of POLICY")
@click.option("--min-coverage", type=click.FloatRange(0, 100), default=None, metavar="PCT",
              help="exit 1 if attacks or everyday cases score under PCT percent")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--guard/--no-guard", default=True,
              help="put the built-in guard first, built for the active home and port as the "
                   "daemon would (default: with it)")
def bench(policy: Path | None, corpus_path: Path | None, profile_name: str | None,
          min_coverage: float | None, as_json: bool, guard: bool) -> None:
    """Run a security corpus against POLICY (a file or directory; default: the active one)."""
    from rampartd.config import load_settings
    from rampartd.policy.guard import describe, guard_for_home, relaxed

    if policy is not None and profile_name is not None:
        raise click.UsageError("give a POLICY or --profile, not both")
    corpus_file = corpus_path if corpus_path is not None else _shipped_corpus()
    corpus = read_corpus(corpus_file)
    note = ""
    settings = load_settings()
    if profile_name is not None:
        target = _data_file(profile(profile_name).file_name)
    elif policy is not None:
        target = policy
    else:
        target = settings.policy_dir
        if not target.exists():
            # Nothing seeded yet: measure what the daemon would seed there.
            note = f"; {target} does not exist yet, so the {settings.profile} profile"
            target = _data_file(profile(settings.profile).file_name)
    builtin = []
    guard_info: dict[str, Any] | None = None
    if guard:
        # The guard of a daemon on the active home and port, with the corpus's home as the
        # user's (so ~/.rampartd and the hook files are where the cases look for them).
        relax = relaxed(settings.guard)
        builtin = guard_for_home(settings.home, settings.port, policy_dir=settings.policy_dir,
                                 user_home=corpus.home, relax=relax)
        guard_info = {**describe(relax), "home": str(settings.home), "port": settings.port}
    policy_set = load_policy_target(target, home=corpus.home, builtin=builtin)
    report = run_corpus(policy_set, corpus)
    counts = f"{policy_set.policy_count} policies, {policy_set.rule_count} rules{note}"
    if guard_info is not None:
        counts += f"; guard first (built for {guard_info['home']}, port {guard_info['port']})"
    else:
        counts += "; without the guard"
    ok = min_coverage is None or (report.attacks.percent >= min_coverage
                                  and report.everyday.percent >= min_coverage)
    if as_json:
        click.echo(json.dumps({
            "corpus": str(corpus_file), "policy": str(target),
            "policies": policy_set.policy_count, "rules": policy_set.rule_count,
            "classes": [_score(s) for s in report.classes()],
            "attacks": _score(report.attacks), "everyday": _score(report.everyday),
            "failures": [_failure(o) for o in report.failures],
            "min_coverage": min_coverage, "ok": ok, "guard": guard_info}, indent=2))
    else:
        _print_text(report, corpus_file, target, counts)
        if min_coverage is not None:
            verdict = "ok" if ok else "FAILED"
            click.echo(f"\nminimum coverage {min_coverage:g}%: {verdict}")
    if not ok:
        raise SystemExit(1)
