"""`rampartd approvals …`: list, approve, deny, sign a link, and watch the queue live."""

from __future__ import annotations

import getpass
import json
import math
import time
from collections.abc import Mapping
from typing import Any

import click

from rampartd.approvals.links import link_url, load_link_key
from rampartd.cli.client import DaemonClient, url_option
from rampartd.config import load_settings

STATUSES = ("pending", "approved", "denied", "expired", "all")
SUMMARY_CHARS = 80


def _client() -> DaemonClient:
    return DaemonClient(load_settings())


def summarize(request: Any) -> str:
    """A short one-line view of a call's params: the command if there is one."""
    if isinstance(request, Mapping) and isinstance(request.get("command"), str):
        text = request["command"]
    else:
        text = json.dumps(request, ensure_ascii=False, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"


def _line(approval: Mapping[str, Any]) -> str:
    where = f"{approval.get('agent')}/{approval.get('session')}"
    run = approval.get("run_id") or "-"
    if "expires_in" in approval:
        tail = f"expires in {approval['expires_in']:.0f}s"
    elif approval.get("status") == "pending":
        tail = f"expires {approval.get('expires_at')}"
    else:
        tail = f"{approval.get('status')} by {approval.get('resolved_by') or '-'}"
    return (f"{approval.get('id')}  {approval.get('status'):<8}  {where}  run={run}  "
            f"{approval.get('tool')}: {summarize(approval.get('request'))}  ({tail})")


@click.group()
def approvals() -> None:
    """Review and decide approvals on the running daemon."""


@approvals.command("list")
@url_option
@click.option("--status", type=click.Choice(STATUSES), default="pending", show_default=True)
@click.option("--agent", default=None, help="only this agent's approvals")
@click.option("--run-id", "run_id", default=None, help="only this run's approvals")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the daemon's JSON answer")
def list_(status: str, agent: str | None, run_id: str | None, limit: int,
          as_json: bool) -> None:
    """List approvals (pending ones by default, oldest first)."""
    data = _client().request("GET", "/v1/approvals", params={
        "status": status, "agent": agent, "run_id": run_id, "limit": limit})
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if not data["approvals"]:
        click.echo(f"no {'' if status == 'all' else status + ' '}approvals")
        return
    for approval in data["approvals"]:
        click.echo(_line(approval))


def _decide(approval_id: str, approved: bool, reason: str | None, by: str | None) -> None:
    resolved = _client().request(
        "POST", f"/v1/approvals/{approval_id}/resolve",
        body={"approved": approved, "resolved_by": by or f"cli:{getpass.getuser()}",
              **({"reason": reason} if reason else {})})
    click.echo(f"{resolved['status']} {resolved['id']} ({resolved['tool']} for "
               f"{resolved['agent']}/{resolved['session']}) by {resolved['resolved_by']}")


_reason = click.option("--reason", default=None, help="why (recorded in the audit log)")
_by = click.option("--by", default=None, help="who decides (default cli:<your user name>)")


@approvals.command()
@url_option
@click.argument("approval_id")
@_reason
@_by
def approve(approval_id: str, reason: str | None, by: str | None) -> None:
    """Approve a pending approval (its identical retry is then allowed once)."""
    _decide(approval_id, True, reason, by)


@approvals.command()
@url_option
@click.argument("approval_id")
@_reason
@_by
def deny(approval_id: str, reason: str | None, by: str | None) -> None:
    """Deny a pending approval."""
    _decide(approval_id, False, reason, by)


@approvals.command()
@url_option
@click.argument("approval_id")
@click.option("--action", type=click.Choice(("approve", "deny")), default="approve",
              show_default=True, help="what opening the link with POST does")
@click.option("--ttl", type=click.FloatRange(min=1), default=None,
              help="seconds the link stays valid (default: until the approval expires)")
def link(approval_id: str, action: str, ttl: float | None) -> None:
    """Print a signed URL that approves (or denies) one pending approval, once."""
    settings = load_settings()
    client = DaemonClient(settings)
    found = client.request("GET", f"/v1/approvals/{approval_id}")
    if found["status"] != "pending":
        raise click.ClickException(f"approval {found['id']} is already {found['status']}")
    seconds = found["expires_in"] if ttl is None else ttl
    exp = math.ceil(time.time() + seconds)
    click.echo(link_url(client.base_url, load_link_key(settings.home), found["id"], action, exp))


@approvals.command()
@url_option
@click.option("--all", "every", is_flag=True,
              help="also print resolved and expired approvals")
def watch(every: bool) -> None:
    """Print approvals as they are requested (Ctrl-C stops)."""
    from rampartd.cli.stream_client import iter_events

    client = _client()
    try:
        # Bulk resolutions arrive as one audit_batch frame, not as approvals frames.
        types = "approvals,audit_batch" if every else "approvals"
        for event in iter_events(client, {"types": types}):
            if event.get("type") == "connected":
                click.echo(f"watching approvals on {client.base_url} (Ctrl-C to stop)",
                           err=True)
                continue
            if event.get("type") == "audit_batch":
                click.echo(f"batch resolved: run {event.get('run_id')}, "
                           f"{event.get('count')} records (seq {event.get('first_seq')}-"
                           f"{event.get('last_seq')})")
                continue
            kind = event.get("kind")
            if kind != "approval.requested" and not every:
                continue
            record = event.get("event") or {}
            approval = record.get("approval") or {}
            click.echo(_line({**record, **approval}))
    except KeyboardInterrupt:
        pass
