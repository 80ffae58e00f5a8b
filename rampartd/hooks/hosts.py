"""What each agent host sends its hook and the answer it expects, host by host.

A host's `parse` turns its payload into a HookCall (the rampartd tool class and params); its
`pre` renders a verdict in the host's own "allow / ask / deny with a reason" contract, and its
`post` reports what the output scan found back to the model where the host can carry it.
"""

from __future__ import annotations

import json

from rampartd.hooks.client import HookError
from rampartd.toolnames import WHOLE_DIRECTORY_READERS, tool_class

TYPE_CHECKING = False  # typing itself costs a few ms to import; mypy treats this name as True
if TYPE_CHECKING:  # typing and dataclasses cost more to import than a whole hook call
    from collections.abc import Callable, Mapping
    from typing import Any, Literal

    Verdict = Literal["allow", "explicit", "ask", "deny"]

# Most restrictive first: a call evaluated in parts takes its strongest verdict.
SEVERITY: dict[str, int] = {"deny": 3, "ask": 2, "allow": 1, "explicit": 0}


class HookCall:
    """One host event, in rampartd's terms."""

    __slots__ = ("cwd", "more", "output", "params", "phase", "run_id", "session", "tool",
                 "tool_call_id")

    def __init__(self, *, phase: str, tool: str, params: dict[str, Any], session: str,
                 tool_call_id: str | None = None, cwd: str | None = None,
                 run_id: str | None = None, output: Any = None,
                 more: tuple[dict[str, Any], ...] = ()) -> None:
        self.phase = phase  # "pre" or "post"
        self.tool = tool
        self.params = params
        self.session = session
        self.tool_call_id = tool_call_id
        self.cwd = cwd
        self.run_id = run_id
        self.output = output
        self.more = more  # further params checked as the same tool


class Answer:
    """What the hook prints and how it exits."""

    __slots__ = ("code", "stderr", "stdout")

    def __init__(self, stdout: str = "", stderr: str = "", code: int = 0) -> None:
        self.stdout, self.stderr, self.code = stdout, stderr, code


class Report:
    """What the output scan found: a message for the model, and whether it held secrets."""

    __slots__ = ("message", "secrets")

    def __init__(self, message: str | None = None, secrets: bool = False) -> None:
        self.message, self.secrets = message, secrets


class Host:
    """One agent host's hook contract."""

    __slots__ = ("can_ask", "is_post", "name", "parse", "post", "pre")

    def __init__(self, name: str, parse: Callable[[Mapping[str, Any]], HookCall],
                 is_post: Callable[[Any], bool], pre: Callable[[Any, Verdict, str], Answer],
                 post: Callable[[Any, Report], Answer], *, can_ask: bool) -> None:
        self.name, self.parse, self.is_post = name, parse, is_post
        self.pre, self.post = pre, post
        self.can_ask = can_ask  # the host can put the question to its person itself


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _object(value: Any, what: str) -> dict[str, Any]:
    """A JSON object, also when the host sends it encoded as a string."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise HookError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise HookError(f"{what} is not an object")
    return value


def patch_paths(patch: str) -> list[str]:
    """The files an apply_patch body adds, updates, deletes or moves to."""
    markers = ("*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: ")
    paths = []
    for line in patch.splitlines():
        for marker in markers:
            if line.startswith(marker) and line[len(marker):].strip():
                paths.append(line[len(marker):].strip())
    return list(dict.fromkeys(paths))


def classify(name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any],
                                                         tuple[dict[str, Any], ...]]:
    """The rampartd tool, params and further parts for one host tool call."""
    if name.startswith("mcp__"):
        server, _, tool = name[len("mcp__"):].partition("__")
        return "mcp", {"server": server, "tool": tool, "arguments": params}, ()
    cls = tool_class(name)
    if cls == "mcp" and "server_name" in params:  # Cline's use_mcp_tool / access_mcp_resource
        arguments = params.get("arguments", {})
        return "mcp", {"server": params.get("server_name"),
                       "tool": params.get("tool_name") or params.get("uri"),
                       "arguments": _object(arguments, "MCP arguments")
                       if arguments else {}}, ()
    if name.lower() == "apply_patch":
        patch = params.get("command") or params.get("input") or params.get("patch")
        paths = patch_paths(patch) if isinstance(patch, str) else []
        if paths:  # one patch may touch several files: every one is checked
            parts = tuple({**params, "file_path": p} for p in paths)
            return cls, parts[0], parts[1:]
    if name.lower() in WHOLE_DIRECTORY_READERS:
        return name, params, ()  # (its name tells how it reads: the daemon maps it to `read`)
    return cls, params, ()


def _tool_event(event: Mapping[str, Any], kinds: tuple[str, str],
                ) -> tuple[str, str, dict[str, Any], tuple[dict[str, Any], ...]]:
    """The event's kind (the pre kind, kinds[0], when absent) and its classified tool call."""
    kind = event.get("hook_event_name", kinds[0])
    if kind not in kinds:
        raise HookError(f"unexpected hook event {str(kind)[:40]!r}")
    name, params = event.get("tool_name"), event.get("tool_input")
    if not _text(name) or not isinstance(params, dict):
        raise HookError("the hook input has no tool_name/tool_input")
    assert isinstance(name, str)
    return (kind, *classify(name, params))


# ------------------------------------------------------------ Claude Code and Codex

CLAUDE_EVENTS = ("PreToolUse", "PostToolUse")


def _claude_post(event: Any) -> bool:
    return isinstance(event, dict) and event.get("hook_event_name") == "PostToolUse"


def parse_claude(event: Mapping[str, Any]) -> HookCall:
    """Claude Code's (and Codex's) PreToolUse/PostToolUse payload."""
    kind, tool, params, more = _tool_event(event, CLAUDE_EVENTS)
    agent_id = _text(event.get("agent_id"))  # set inside a subagent: same session, own run
    return HookCall(phase="post" if kind == "PostToolUse" else "pre", tool=tool, params=params,
                    session=_text(event.get("session_id")) or "unknown",
                    tool_call_id=_text(event.get("tool_use_id")), cwd=_text(event.get("cwd")),
                    run_id=f"subagent:{agent_id}" if agent_id else None,
                    output=event.get("tool_response"), more=more)


def pre_claude(event: Any, verdict: Verdict, reason: str) -> Answer:
    """PreToolUse: a permission decision; a plain allow prints nothing (the host's rules apply)."""
    if verdict == "allow":
        return Answer()
    decision = "allow" if verdict == "explicit" else verdict
    return Answer(_json({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                                "permissionDecision": decision,
                                                "permissionDecisionReason": reason}}))


def post_claude(event: Any, report: Report) -> Answer:
    """PostToolUse: a block decision's reason and additional context both reach the model."""
    if report.message is None:
        return Answer()
    return Answer(_json({"decision": "block", "reason": report.message,
                         "hookSpecificOutput": {"hookEventName": "PostToolUse",
                                                "additionalContext": report.message}}))


def pre_codex(event: Any, verdict: Verdict, reason: str) -> Answer:
    """Codex: exit 2 blocks with stderr as the reason; its own approval policy does the rest."""
    if verdict in ("deny", "ask"):
        return Answer(stderr=reason, code=2)
    return Answer()


# ------------------------------------------------------------ Gemini CLI

def _gemini_post(event: Any) -> bool:
    return isinstance(event, dict) and event.get("hook_event_name") == "AfterTool"


def parse_gemini(event: Mapping[str, Any]) -> HookCall:
    """Gemini CLI's BeforeTool/AfterTool payload."""
    kind, tool, params, more = _tool_event(event, ("BeforeTool", "AfterTool"))
    return HookCall(phase="post" if kind == "AfterTool" else "pre", tool=tool, params=params,
                    session=_text(event.get("session_id")) or "unknown",
                    cwd=_text(event.get("cwd")), output=event.get("tool_response"), more=more)


def pre_gemini(event: Any, verdict: Verdict, reason: str) -> Answer:
    """BeforeTool: exit 2 blocks (stderr goes to the model); stdout must be JSON only."""
    if verdict in ("deny", "ask"):
        return Answer(stderr=reason, code=2)
    return Answer(_json({"decision": "allow"} if verdict == "explicit" else {}))


def post_gemini(event: Any, report: Report) -> Answer:
    """AfterTool: output holding secrets is replaced by the reason; otherwise context is added."""
    if report.message is None:
        return Answer(_json({}))
    if report.secrets:
        return Answer(_json({"decision": "deny", "reason": report.message}))
    return Answer(_json({"hookSpecificOutput": {"hookEventName": "AfterTool",
                                                "additionalContext": report.message}}))


# ------------------------------------------------------------ Cursor

CURSOR_POST = ("afterShellExecution", "afterMCPExecution", "postToolUse")


def _cursor_post(event: Any) -> bool:
    return isinstance(event, dict) and event.get("hook_event_name") in CURSOR_POST


def parse_cursor(event: Mapping[str, Any]) -> HookCall:
    """Cursor's hooks.json events: shell, MCP, file reads (and preToolUse where it exists)."""
    kind = event.get("hook_event_name")
    roots = event.get("workspace_roots")
    cwd = _text(event.get("cwd")) or (roots[0] if isinstance(roots, list) and roots
                                      and isinstance(roots[0], str) else None)
    session = _text(event.get("conversation_id")) or "unknown"
    more: tuple[dict[str, Any], ...] = ()
    params: dict[str, Any]
    if kind in ("beforeShellExecution", "afterShellExecution"):
        command = event.get("command")
        if not isinstance(command, str):
            raise HookError("the hook input has no command")
        tool, params, output = "exec", {"command": command}, event.get("output")
    elif kind in ("beforeMCPExecution", "afterMCPExecution"):
        name = _text(event.get("tool_name"))
        if name is None:
            raise HookError("the hook input has no tool_name")
        server = _text(event.get("url")) or _text(event.get("command")) or ""
        params = {"server": server, "tool": name,
                  "arguments": _object(event.get("tool_input", {}), "tool_input")}
        tool = "mcp"
        output = event.get("result_json")
    elif kind == "beforeReadFile":
        path = _text(event.get("file_path"))
        if path is None:
            raise HookError("the hook input has no file_path")
        # The file's content is in the payload too; it is not sent to the daemon.
        tool, params, output = "read", {"file_path": path}, None
    elif kind in ("preToolUse", "postToolUse"):
        name, raw = _text(event.get("tool_name")), event.get("tool_input")
        if name is None:
            raise HookError("the hook input has no tool_name")
        tool, params, more = classify(name, _object(raw if raw is not None else {},
                                                    "tool_input"))
        output = event.get("tool_output")
    else:
        raise HookError(f"unexpected hook event {str(kind)[:40]!r}")
    return HookCall(phase="post" if kind in CURSOR_POST else "pre", tool=tool, params=params,
                    session=session, cwd=cwd, run_id=_text(event.get("generation_id")),
                    tool_call_id=_text(event.get("tool_use_id")), output=output, more=more)


def pre_cursor(event: Any, verdict: Verdict, reason: str) -> Answer:
    """A `permission` answer; file reads know only allow and deny."""
    reads = isinstance(event, dict) and event.get("hook_event_name") == "beforeReadFile"
    if verdict == "allow" and not reads:
        return Answer(_json({}))
    if verdict in ("allow", "explicit"):
        return Answer(_json({"permission": "allow"}))
    permission = "deny" if verdict == "deny" or reads else "ask"
    return Answer(_json({"permission": permission, "user_message": reason,
                         "agent_message": reason}))


def post_cursor(event: Any, report: Report) -> Answer:
    """Cursor's after-events carry nothing back: the finding is recorded only."""
    return Answer(_json({}))


# ------------------------------------------------------------ Cline

def _cline_post(event: Any) -> bool:
    return isinstance(event, dict) and event.get("hookName") == "PostToolUse"


def parse_cline(event: Mapping[str, Any]) -> HookCall:
    """Cline's PreToolUse/PostToolUse hook-file payload."""
    kind = event.get("hookName")
    if kind not in ("PreToolUse", "PostToolUse"):
        raise HookError(f"unexpected hook event {str(kind)[:40]!r}")
    inner = event.get("preToolUse" if kind == "PreToolUse" else "postToolUse")
    if not isinstance(inner, dict):
        raise HookError("the hook input has no tool")
    name, params = _text(inner.get("toolName")), inner.get("parameters")
    if name is None or not isinstance(params, dict):
        raise HookError("the hook input has no toolName/parameters")
    tool, params, more = classify(name, params)
    roots = event.get("workspaceRoots")
    cwd = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None
    return HookCall(phase="post" if kind == "PostToolUse" else "pre", tool=tool, params=params,
                    session=_text(event.get("taskId")) or "unknown", cwd=cwd,
                    output=inner.get("result"), more=more)


def pre_cline(event: Any, verdict: Verdict, reason: str) -> Answer:
    """`cancel` blocks the tool; the error message reaches the model."""
    if verdict in ("deny", "ask"):
        return Answer(_json({"cancel": True, "errorMessage": reason}))
    return Answer(_json({"cancel": False}))


def post_cline(event: Any, report: Report) -> Answer:
    """contextModification reaches the model with its next request."""
    if report.message is None:
        return Answer(_json({"cancel": False}))
    return Answer(_json({"cancel": False, "contextModification": report.message}))


HOSTS: dict[str, Host] = {
    "claude-code": Host("claude-code", parse_claude, _claude_post, pre_claude, post_claude,
                        can_ask=True),
    "codex": Host("codex", parse_claude, _claude_post, pre_codex, post_claude, can_ask=False),
    "gemini-cli": Host("gemini-cli", parse_gemini, _gemini_post, pre_gemini, post_gemini,
                       can_ask=False),
    "cursor": Host("cursor", parse_cursor, _cursor_post, pre_cursor, post_cursor, can_ask=True),
    "cline": Host("cline", parse_cline, _cline_post, pre_cline, post_cline, can_ask=False),
}
