"""`rampartd install-service`: write the systemd user unit."""

from __future__ import annotations

import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path

import click


def unit_text(exec_start: str) -> str:
    """The packaged unit with ExecStart pointing at `exec_start`."""
    template = resources.files("rampartd.data").joinpath("rampartd.service").read_text("utf-8")
    lines = [f"ExecStart={exec_start}" if line.startswith("ExecStart=") else line
             for line in template.splitlines()]
    return "\n".join(lines) + "\n"


def installed_command() -> str:
    """The command line that runs this installation's daemon."""
    exe = shutil.which("rampartd")
    if exe:
        return f"{shlex.quote(str(Path(exe).resolve()))} serve"
    return f"{shlex.quote(sys.executable)} -m rampartd serve"


@click.command("install-service")
@click.option("--dir", "unit_dir", type=click.Path(file_okay=False), default=None,
              help="where to write the unit (default ~/.config/systemd/user)")
def install_service(unit_dir: str | None) -> None:
    """Write rampartd.service for `systemctl --user` and print how to enable it."""
    target_dir = Path(unit_dir) if unit_dir else Path.home() / ".config" / "systemd" / "user"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "rampartd.service"
    target.write_text(unit_text(installed_command()), encoding="utf-8")
    click.echo(f"wrote {target}")
    click.echo("enable and start it with:")
    click.echo("  systemctl --user daemon-reload")
    click.echo("  systemctl --user enable --now rampartd.service")
    click.echo("  loginctl enable-linger $USER   # optional: keep it running after logout")
