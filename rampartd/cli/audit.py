"""`rampartd audit …`: commands over the audit log; verify runs with the daemon up or down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

import click

from rampartd.audit.checkpoints import CHECKPOINTS_FILE, PUBLIC_KEY_FILE
from rampartd.audit.verify import verify_db
from rampartd.client import DaemonClient
from rampartd.config import load_settings
from rampartd.errors import RampartdError


@click.group()
def audit() -> None:
    """Verify, tail, export and summarise the hash-chained audit log."""


@audit.command()
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="database file (default: rampartd.db in the home)")
@click.option("--home", "home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="home holding checkpoints.jsonl and signing.pub (default: the --db file's "
                   "directory, else $RAMPARTD_HOME or ~/.rampartd)")
def verify(db: Path | None, home: Path | None) -> None:
    """Check the hash chain and signed checkpoints; print a JSON report, exit 1 if broken."""
    try:
        if home is None:
            home = db.parent if db is not None else load_settings().home
        db_path = db if db is not None else home / "rampartd.db"
        report = verify_db(db_path, checkpoints=home / CHECKPOINTS_FILE,
                           public_key=home / PUBLIC_KEY_FILE)
    except RampartdError as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.strerror or exc}: {exc.filename}") from None
    click.echo(json.dumps(report, indent=2))
    if not report["valid"]:
        raise SystemExit(1)


_FILTER_OPTIONS = ("tool", "action", "agent", "session", "run_id", "kind", "since", "until")


def _filter_options(func: Any) -> Any:
    for name in reversed(_FILTER_OPTIONS):
        func = click.option(f"--{name.replace('_', '-')}", name, default=None,
                            help=f"only records with this {name}")(func)
    return func


@audit.command()
@_filter_options
@click.option("-o", "--output", type=click.File("wb"), default="-",
              help="write JSONL here (default stdout)")
def export(output: BinaryIO, **filters: str | None) -> None:
    """Stream matching records from the running daemon as JSONL."""
    client = DaemonClient(load_settings())
    with client.open("GET", "/v1/audit/export", params=filters) as resp:
        while chunk := resp.read(65536):
            output.write(chunk)


@audit.command()
@click.option("--from", "since", default=None, help="start (RFC 3339 time or date)")
@click.option("--to", "until", default=None, help="end, exclusive (RFC 3339 time or date)")
def stats(since: str | None, until: str | None) -> None:
    """Counts of records by kind, and of decisions by action, tool, agent and session."""
    report = DaemonClient(load_settings()).request("GET", "/v1/audit/stats",
                                                   params={"from": since, "to": until})
    click.echo(f"records: {report['total']}  decisions: {report['decisions']}")
    for group in ("by_action", "by_tool", "by_agent", "by_session", "by_kind"):
        counts = report.get(group) or {}
        if counts:
            shown = ", ".join(f"{k}={v}" for k, v in counts.items())
            click.echo(f"{group.removeprefix('by_')}: {shown}")
