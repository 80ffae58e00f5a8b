"""`rampartd hook claude-code`: a PreToolUse hook that asks the daemon about each tool call.

Claude Code runs the hook with the pending call as JSON on stdin and reads a decision from
stdout. rampartd only ever adds restrictions: an allowed call gets no output, so Claude Code's
own permission rules still apply; a deny or an ask is returned as that permission decision.
Anything that prevents a decision (daemon down, bad input, a refused token) is a deny.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from rampartd.cli.client import DaemonClient, DaemonError
from rampartd.config import load_settings
from rampartd.errors import RampartdError

# Claude Code's tool names → rampartd's tool classes; anything else is lower-cased.
TOOL_CLASSES = {"Bash": "exec", "Read": "read", "Write": "write", "Edit": "edit",
                "MultiEdit": "edit", "NotebookEdit": "edit", "WebFetch": "fetch"}


def tool_request(event: dict[str, Any], agent: str) -> tuple[str, dict[str, Any]]:
    """The rampartd tool and request body for one PreToolUse event."""
    name = event.get("tool_name")
    params = event.get("tool_input")
    if not isinstance(name, str) or not name or not isinstance(params, dict):
        raise RampartdError("the hook input has no tool_name/tool_input")
    if name.startswith("mcp__"):
        tool, params = "mcp", {**params, "mcp_tool": name}
    else:
        tool = TOOL_CLASSES.get(name, name.lower())
    body: dict[str, Any] = {"agent": agent, "session": str(event.get("session_id") or "unknown"),
                            "params": params}
    if isinstance(event.get("tool_use_id"), str):
        body["tool_call_id"] = event["tool_use_id"]
    if isinstance(event.get("cwd"), str):
        body["cwd"] = event["cwd"]
    return tool, body


def hook_output(decision: str, reason: str) -> dict[str, Any]:
    """The PreToolUse answer Claude Code understands."""
    return {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                   "permissionDecision": decision,
                                   "permissionDecisionReason": reason}}


def decide(event: dict[str, Any], client: DaemonClient, agent: str,
           wait: float) -> dict[str, Any] | None:
    """Ask the daemon; None lets the call proceed, otherwise the hook's deny/ask answer."""
    tool, body = tool_request(event, agent)
    try:
        answer = client.request("POST", f"/v1/tool/{tool}", body=body,
                                params={"wait": wait} if wait > 0 else None)
    except DaemonError as exc:
        if exc.status != 403 or not isinstance(exc.body, dict):
            raise  # a refused token or a bad request: the caller turns it into a deny
        answer = exc.body  # the policy's deny
    if answer.get("allowed"):
        return None
    message = answer.get("message") or "rampartd did not allow this call"
    if answer.get("decision") == "ask":
        return hook_output("ask", f"rampartd asks for approval "
                                  f"({answer.get('approval_id')}): {message}")
    return hook_output("deny", f"rampartd: {message}")


@click.group()
def hook() -> None:
    """Hooks that put rampartd in front of an agent's tool calls."""


@hook.command("claude-code")
@click.option("--agent", default="claude-code", show_default=True,
              help="agent name to record (an agent token's own name wins)")
@click.option("--wait", type=click.FloatRange(0, 55), default=0.0, show_default=True,
              help="seconds to hold an ask for a rampartd approval before answering 'ask'")
def claude_code(agent: str, wait: float) -> None:
    """Read a PreToolUse event on stdin; print Claude Code's permission decision."""
    try:
        event = json.loads(sys.stdin.read())
        if not isinstance(event, dict):
            raise ValueError("not a JSON object")
        token = os.environ.get("RAMPARTD_TOKEN")  # e.g. an agent's own token
        client = DaemonClient(load_settings(), token=token, timeout=wait + 10)
        answer = decide(event, client, agent, wait)
    except Exception as exc:  # whatever went wrong, the call must not go ahead unchecked
        reason = exc.message if isinstance(exc, RampartdError) else exc.__class__.__name__
        answer = hook_output("deny", f"rampartd could not decide, so the call is blocked: "
                                     f"{reason}")
    if answer is not None:
        click.echo(json.dumps(answer))
