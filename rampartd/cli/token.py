"""`rampartd token show|path|rotate`."""

from __future__ import annotations

import click

from rampartd.config import load_settings
from rampartd.home import ensure_home, read_token, rotate_token


@click.group()
def token() -> None:
    """Show, locate or rotate the admin token."""


@token.command()
def show() -> None:
    """Print the admin token (for scripts: TOKEN=$(rampartd token show))."""
    click.echo(read_token(load_settings().token_path))


@token.command()
def path() -> None:
    """Print the path of the admin token file."""
    click.echo(str(load_settings().token_path))


@token.command()
def rotate() -> None:
    """Replace the admin token; a running daemon uses the new one at once."""
    settings = load_settings()
    ensure_home(settings.home)
    rotate_token(settings.token_path)
    click.echo(f"rotated the admin token in {settings.token_path}")
