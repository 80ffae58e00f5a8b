"""`rampartd hook HOST`: the agent-host hook as a CLI command (the same code as `rampartd-hook`).

Hosts should run the `rampartd-hook` executable that `rampartd setup` writes into their
configuration: it starts in a fraction of the time, because it does not load the CLI.
"""

from __future__ import annotations

import sys

import click

from rampartd.hooks.hosts import HOSTS
from rampartd.hooks.main import DEFAULT_TIMEOUT, run


@click.group()
def hook() -> None:
    """Hooks that put rampartd in front of an agent's tool calls."""


def _host_command(name: str) -> click.Command:
    @click.command(name)
    @click.option("--agent", default=name, show_default=True,
                  help="agent name to record (an agent token's own name wins)")
    @click.option("--wait", type=click.FloatRange(0, 55), default=0.0, show_default=True,
                  help="seconds to hold an ask for a rampartd approval (0: the host asks, "
                       "where it can)")
    @click.option("--timeout", type=click.FloatRange(0, 600, min_open=True),
                  default=DEFAULT_TIMEOUT, show_default=True,
                  help="seconds to wait for the daemon before denying")
    def command(agent: str, wait: float, timeout: float) -> None:
        answer = run([name, "--agent", agent, "--wait", str(wait), "--timeout", str(timeout)],
                     sys.stdin.read())
        if answer.stdout:
            click.echo(answer.stdout)
        if answer.stderr:
            click.echo(answer.stderr, err=True)
        sys.exit(answer.code)

    command.help = f"Read one {name} hook event on stdin; print its answer."
    return command


for _name in HOSTS:
    hook.add_command(_host_command(_name))
