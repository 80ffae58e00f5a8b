"""`rampartd audit …`: commands over the audit log; verify runs with the daemon up or down."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rampartd.audit.checkpoints import CHECKPOINTS_FILE, PUBLIC_KEY_FILE
from rampartd.audit.verify import verify_db
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
