"""The `rampartd` command line: parse, call the library, print. Errors are one line, never a
traceback."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from rampartd import __version__
from rampartd.config import SETTINGS, load_settings
from rampartd.errors import RampartdError


class SafeGroup(click.Group):
    """A group whose commands report RampartdError/OSError as one line and exit non-zero."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, turning our errors into click's one-line error."""
        try:
            return super().invoke(ctx)
        except RampartdError as exc:
            raise click.ClickException(exc.message) from None
        except BrokenPipeError:
            # The reader went away (`rampartd … | head`): stop quietly, as a Unix tool
            # killed by SIGPIPE would, instead of printing an error nobody asked for.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(128 + signal.SIGPIPE)
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}"
                                       f"{': ' + str(exc.filename) if exc.filename else ''}") \
                from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug: one line, and no message that could hold a secret
            raise click.ClickException(f"unexpected error ({exc.__class__.__name__})") \
                from None


@click.group(cls=SafeGroup)
@click.version_option(__version__, prog_name="rampartd")
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="state directory (default $RAMPARTD_HOME or ~/.rampartd)")
def main(home: str | None) -> None:
    """rampartd: a local policy daemon for AI agents' tool calls."""
    if home is not None:
        # Every subcommand resolves settings from the environment, so --home goes there.
        os.environ["RAMPARTD_HOME"] = os.path.abspath(os.path.expanduser(home))


def _setting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for setting in reversed(SETTINGS):
        if setting.file_only:
            continue
        flag = "--" + setting.name.replace("_", "-")
        if setting.type_name == "bool":
            func = click.option(flag, setting.name, is_flag=True, default=None,
                                help=setting.help)(func)
        else:
            func = click.option(flag, setting.name, default=None, help=setting.help,
                                metavar=setting.type_name.upper())(func)
    return func


@main.command()
@_setting_options
def serve(**flags: Any) -> None:
    """Run the daemon in the foreground (flags override RAMPARTD_* and config.yaml)."""
    from rampartd.daemon import serve as run

    run(load_settings(flags))


def _register() -> None:
    # Imported here: the command modules are only needed once `main` exists.
    from rampartd.cli import agents, approvals, audit, bench, hook, policy, service, setup, token

    for command in (token.token, service.install_service, policy.policy, policy.check,
                    audit.audit, approvals.approvals, agents.agents, hook.hook, setup.setup,
                    bench.bench):
        main.add_command(command)


_register()
