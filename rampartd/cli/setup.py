"""`rampartd setup [HOST]`: put rampartd's hook in front of an agent host, check it, take it out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click

from rampartd.hooks.install import (
    BACKUP_SUFFIX,
    HOST_CONFIGS,
    Change,
    HookArgs,
    apply,
    blocked,
    installed_commands,
    plan,
    sample_event,
)

CHECKS = (("git status", False), ("rm -rf ~", True))  # (command, expected to be blocked)


def _describe(changes: list[Change]) -> str:
    touched = [str(c.path) for c in changes if c.changed]
    return "up to date" if not touched else "would change " + ", ".join(touched)


def _list(args: HookArgs, project: Path | None, dry_run: bool) -> None:
    for name, config in HOST_CONFIGS.items():
        changes = plan(name, args, project=project)
        state = "installed" if installed_commands(name, project) else "not installed"
        seen = "detected" if project is not None or config.detected() else "not detected"
        click.echo(f"{name:12} {seen:13} {state:14} {_describe(changes)}")
        if dry_run:
            for change in changes:
                if change.changed:
                    click.echo(change.diff(), nl=False)


def _check(host: str, project: Path | None) -> None:
    commands = installed_commands(host, project)
    if not commands:
        raise click.ClickException(f"rampartd's hook is not installed for {host}; "
                                   f"run `rampartd setup {host}` first")
    import json

    failures = 0
    for command, expect_block in CHECKS:
        event = sample_event(host, command, os.getcwd())
        proc = subprocess.run(commands[0], input=json.dumps(event), capture_output=True,
                              text=True, timeout=60, check=False)
        is_blocked, reason = blocked(host, proc.returncode, proc.stdout, proc.stderr)
        ok = is_blocked == expect_block
        failures += not ok
        verdict = "blocked" if is_blocked else "let through"
        click.echo(f"{'ok  ' if ok else 'FAIL'} {command!r}: {verdict}"
                   + (f" ({reason})" if is_blocked and reason else ""))
    if failures:
        raise click.ClickException(f"the installed {host} hook did not behave as expected "
                                   "(is `rampartd serve` running?)")
    click.echo(f"{host}: the installed hook answers as expected")


@click.command()
@click.argument("host", required=False, type=click.Choice(list(HOST_CONFIGS)))
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="configure this project instead of the user-level configuration")
@click.option("--check", is_flag=True,
              help="run the installed hook on a known-allowed and a known-denied call")
@click.option("--remove", is_flag=True, help="take rampartd's entries out again")
@click.option("--dry-run", is_flag=True, help="show the diff; change nothing")
@click.option("--wait", type=click.FloatRange(0, 55), default=0.0, show_default=True,
              help="seconds the hook holds an ask for a rampartd approval (0: the host asks, "
                   "where it can)")
@click.option("--agent", default=None, help="agent name the hook records (default: the host)")
def setup(host: str | None, project: Path | None, check: bool, remove: bool, dry_run: bool,
          wait: float, agent: str | None) -> None:
    """Install rampartd's hook into an agent host (alone: list hosts and what would change)."""
    home = os.environ.get("RAMPARTD_HOME")
    args = HookArgs(home=os.path.abspath(home) if home else None, agent=agent, wait=wait)
    project = project.resolve() if project is not None else None
    if host is None:
        _list(args, project, dry_run)
        return
    if check and not remove:
        _check(host, project)
        return
    changes = plan(host, args, project=project, remove=remove)
    if dry_run:
        for change in changes:
            click.echo(change.diff() or f"{change.path}: unchanged\n", nl=False)
        return
    touched = apply(changes)
    if not touched:
        click.echo(f"{host}: already {'removed' if remove else 'up to date'}")
        return
    for path in touched:
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        click.echo(f"{host}: {'updated' if path.exists() else 'removed'} {path}"
                   + (f" (previous version in {backup})" if backup.exists() else ""))
    if not remove:
        click.echo(f"check it with `rampartd setup {host} --check` while `rampartd serve` runs")
