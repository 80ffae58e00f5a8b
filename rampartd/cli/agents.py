"""`rampartd agents …`: manage agents and their tokens through the running daemon."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from typing import Any

import click

from rampartd.agents import check_id
from rampartd.cli.client import DaemonClient, url_option
from rampartd.config import load_settings
from rampartd.errors import BadRequest, NotFound

ONCE_WARNING = ("This token is shown only once and cannot be recovered (only its SHA-256 is "
                 "stored); keep it now, or issue a new one with `rampartd agents token-rotate`.")


def _client() -> DaemonClient:
    return DaemonClient(load_settings())


def _path(client: DaemonClient, ref: str) -> str:
    """The API path of an agent given by id, or by exact name."""
    with contextlib.suppress(BadRequest):
        return f"/v1/agents/{check_id(ref)}"
    page = client.request("GET", "/v1/agents", params={"name": ref})
    if not page["data"]:
        raise NotFound(f"no agent named {ref!r}")
    return f"/v1/agents/{urllib.parse.quote(page['data'][0]['id'])}"


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _line(agent: dict[str, Any]) -> str:
    return f"{agent['id']}  {agent['status']:<9}  {agent['name']}"


def _show_token(agent: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        _echo_json(agent)
    else:
        click.echo(f"{verb} agent {agent['name']!r} ({agent['id']})")
        click.echo(f"token: {agent['token']}")
    click.echo(ONCE_WARNING, err=True)


@click.group()
def agents() -> None:
    """Register agents, give each its own token, suspend, resume or revoke them."""


@agents.command()
@url_option
@click.argument("name")
@click.option("--description", "-d", default=None, help="what the agent is for")
@click.option("--json", "as_json", is_flag=True, help="print the agent and token as JSON")
def create(name: str, description: str | None, as_json: bool) -> None:
    """Register agent NAME and print its eval token (once)."""
    body: dict[str, Any] = {"name": name}
    if description is not None:
        body["description"] = description
    _show_token(_client().request("POST", "/v1/agents", body=body), as_json, "created")


@agents.command(name="list")
@url_option
@click.option("--limit", type=click.IntRange(1, 200), default=200, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON page")
def list_(limit: int, offset: int, as_json: bool) -> None:
    """List agents: id, status, name."""
    page = _client().request("GET", "/v1/agents", params={"limit": limit, "offset": offset})
    if as_json:
        _echo_json(page)
        return
    for agent in page["data"]:
        click.echo(_line(agent))
    shown, total = page["pagination"]["count"], page["pagination"]["total"]
    if offset + shown < total:
        click.echo(f"({shown} of {total} shown; use --offset {offset + shown} for more)",
                   err=True)


@agents.command()
@url_option
@click.argument("agent")
def show(agent: str) -> None:
    """Print one agent (by id or name) as JSON."""
    client = _client()
    _echo_json(client.request("GET", _path(client, agent)))


def _set_status(agent: str, status: str) -> None:
    client = _client()
    result = client.request("PATCH", _path(client, agent), body={"status": status})
    click.echo(f"{result['name']} ({result['id']}) is now {result['status']}")


@agents.command()
@url_option
@click.argument("agent")
def suspend(agent: str) -> None:
    """Suspend an agent: its calls are denied at once until it is resumed."""
    _set_status(agent, "suspended")


@agents.command()
@url_option
@click.argument("agent")
def resume(agent: str) -> None:
    """Make a suspended agent active again (a revoked one cannot be)."""
    _set_status(agent, "active")


@agents.command()
@url_option
@click.argument("agent")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
def revoke(agent: str, yes: bool) -> None:
    """Revoke an agent for good: its calls are denied and it can never be active again."""
    if not yes:
        click.confirm(f"Revoke {agent} permanently?", abort=True)
    _set_status(agent, "revoked")


@agents.command()
@url_option
@click.argument("agent")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
def delete(agent: str, yes: bool) -> None:
    """Delete an agent and its tokens (the audit log keeps its records)."""
    if not yes:
        click.confirm(f"Delete {agent} and its tokens?", abort=True)
    client = _client()
    client.request("DELETE", _path(client, agent))
    click.echo(f"deleted {agent}")


@agents.command(name="token-rotate")
@url_option
@click.argument("agent")
@click.option("--json", "as_json", is_flag=True, help="print the agent and token as JSON")
def token_rotate(agent: str, as_json: bool) -> None:
    """Issue a new token for an agent; the old one stops working at once."""
    client = _client()
    _show_token(client.request("POST", _path(client, agent) + "/token"), as_json, "new token for")
