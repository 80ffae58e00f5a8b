"""`rampartd audit …`: commands over the audit log; verify runs with the daemon up or down."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from rampartd.audit.checkpoints import CHECKPOINTS_FILE, PUBLIC_KEY_FILE
from rampartd.audit.verify import verify_db
from rampartd.cli.client import DaemonClient, url_option
from rampartd.cli.stream_client import iter_events
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
@url_option
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
@url_option
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


_SUMMARY_KEYS = ("command", "path", "file_path", "url", "query", "name")


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _summary(request: Any) -> str:
    if not isinstance(request, dict):
        return ""
    for key in _SUMMARY_KEYS:
        value = request.get(key)
        if isinstance(value, str) and value:
            return value
    return json.dumps(request, separators=(",", ":"), sort_keys=True) if request else ""


def tail_line(record: dict[str, Any]) -> str:
    """One human-readable line for an audit record: time, seq, agent, tool, action, what, why."""
    ts = str(record.get("ts") or "")
    when = ts[:19].replace("T", " ") if len(ts) >= 19 else ts
    kind = str(record.get("kind") or "")
    decision, approval, detail = (v if isinstance(v := record.get(k), dict) else None
                                  for k in ("decision", "approval", "detail"))
    if approval is not None:
        action = f"{kind.removeprefix('approval.')}:{approval.get('status', '')}"
        message = str(approval.get("reason") or approval.get("resolved_by") or "")
    elif decision is not None:
        action, message = str(decision.get("action") or ""), str(decision.get("message") or "")
    else:
        action, message = kind, ", ".join(f"{k}={v}" for k, v in sorted((detail or {}).items())
                                          if isinstance(v, str | int | float))
    what = _short(_summary(record.get("request")), 60)
    parts = [when, f"#{record.get('seq', '?')}", str(record.get("agent") or "-"),
             str(record.get("tool") or "-"), action or "-"]
    line = "  ".join(parts)
    if what:
        line += f"  {what}"
    if message:
        line += f"  — {_short(message, 100)}"
    return line


def _frame_line(frame: dict[str, Any]) -> str | None:
    kind = frame.get("type")
    if kind in ("audit", "approvals", "policy", "agent") and isinstance(frame.get("event"), dict):
        return tail_line(frame["event"])
    if kind == "audit_batch":
        return (f"#{frame.get('first_seq')}-#{frame.get('last_seq')}  batch  "
                f"{frame.get('kind')}  run {frame.get('run_id')}  "
                f"({frame.get('count')} records)")
    if kind == "lagged":
        return f"… {frame.get('skipped')} records skipped (too far behind)"
    if kind == "reset":
        return f"… resume point not in the log; continuing from #{frame.get('head_seq')}"
    return None


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()  # a pipe (| grep) sees each line as it happens


@audit.command()
@url_option
@click.option("-f", "--follow", is_flag=True, help="keep printing new records as they happen")
@click.option("--tool", default=None, help="only this tool")
@click.option("--agent", default=None, help="only this agent")
@click.option("--action", type=click.Choice(["allow", "deny", "ask", "watch"]), default=None,
              help="only decisions with this action")
@click.option("-n", "--lines", "count", type=click.IntRange(0, 500), default=20,
              show_default=True, help="how many recent records to print first")
def tail(follow: bool, tool: str | None, agent: str | None, action: str | None,
         count: int) -> None:
    """Print the last N matching records; with -f, follow the live stream (survives restarts)."""
    client = DaemonClient(load_settings())
    head = int(client.request("GET", "/v1/status")["audit_head"]["seq"]) if follow else 0
    printed = 0
    if count:
        page = client.request("GET", "/v1/audit/events",
                              params={"tool": tool, "agent": agent, "action": action,
                                      "limit": count})
        for record in reversed(page["events"]):
            _echo(tail_line(record))
            printed = max(printed, int(record.get("seq", 0)))
    if not follow:
        return
    params = {k: v for k, v in (("tool", tool), ("agent", agent), ("decision", action))
              if v is not None}
    try:
        for frame in iter_events(client, params, last_event_id=head):
            if int(frame.get("id") or 0) and int(frame["id"]) <= printed:
                continue  # committed between the status and the listing: already printed
            line = _frame_line(frame)
            if line is not None:
                _echo(line)
    except KeyboardInterrupt:
        return
