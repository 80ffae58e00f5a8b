"""`rampartd-hook HOST`: read one host event on stdin, ask the daemon, answer in the host's terms.

Fails closed: no daemon, a refused token, malformed input, an answer without the daemon's
proof, a timeout or a crash all become the host's "deny with a reason". Output scans (the
host's after-tool event) are reported back where the host can carry them.
"""

from __future__ import annotations

import json
import os
import sys

from rampartd.hooks.client import HookError, checked, locate, new_nonce, post
from rampartd.hooks.hosts import HOSTS, SEVERITY, Answer, Report

TYPE_CHECKING = False  # typing itself costs a few ms to import; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from rampartd.hooks.client import Daemon
    from rampartd.hooks.hosts import HookCall, Host, Verdict

USAGE = ("usage: rampartd-hook HOST [--agent NAME] [--wait SECONDS] [--timeout SECONDS] "
         "[--home DIR]\n  HOST: " + ", ".join(HOSTS))
DEFAULT_TIMEOUT = 5.0
MAX_OUTPUT_CHARS = 128 * 1024  # what is sent for scanning: ≤ 512 KiB of UTF-8 (limit 1 MiB)


class Options:
    """The hook's command line."""

    __slots__ = ("agent", "home", "host", "timeout", "wait")

    def __init__(self, host: Host, agent: str, wait: float = 0.0,
                 timeout: float = DEFAULT_TIMEOUT, home: str | None = None) -> None:
        self.host, self.agent, self.wait, self.timeout, self.home = \
            host, agent, wait, timeout, home


def parse_args(argv: Sequence[str]) -> Options:
    """HOST and its options (no argparse: it costs more to import than the call budget)."""
    if not argv or argv[0] not in HOSTS:
        raise ValueError("unknown or missing host")
    values: dict[str, str] = {}
    rest = list(argv[1:])
    while rest:
        flag = rest.pop(0)
        if flag not in ("--agent", "--wait", "--timeout", "--home") or not rest:
            raise ValueError(f"bad option {flag[:40]!r}")
        values[flag[2:]] = rest.pop(0)
    wait = float(values.get("wait", 0))
    timeout = float(values.get("timeout", DEFAULT_TIMEOUT))
    if not 0 <= wait <= 55 or not 0 < timeout <= 600:
        raise ValueError("--wait must be 0-55 and --timeout 0-600 seconds")
    return Options(HOSTS[argv[0]], values.get("agent", argv[0]), wait, timeout,
                   values.get("home"))


def _body(call: HookCall, opts: Options, params: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"agent": opts.agent, "session": call.session, "params": params}
    for name in ("tool_call_id", "cwd", "run_id"):
        if getattr(call, name) is not None:
            body[name] = getattr(call, name)
    return body


# What the hook says for the 401 codes it knows (its own words: error answers carry no proof).
REFUSALS = {
    "token_reissue_needed": "rampartd refused the token: it was issued before hooks signed "
                            "their requests; issue it anew with `rampartd agents token-rotate "
                            "AGENT` and give the hook the new one",
    "stale_signature": "rampartd refused the request's signature as stale (stamped before the "
                       "daemon started, or the clock moved); retry the call",
    "replayed_signature": "rampartd refused a signed request it had already seen",
}


def _error(status: int, answer: Any) -> HookError:
    # Error answers carry no proof: only the machine code is repeated, never free text that
    # something else on the port could use to talk to the model.
    code = answer.get("code") if isinstance(answer, dict) else None
    known = isinstance(code, str) and 0 < len(code) <= 40 \
        and all(c.isascii() and (c.isalnum() or c == "_") for c in code)
    if status == 401:
        return HookError(REFUSALS[code] if isinstance(code, str) and code in REFUSALS
                         else "rampartd refused the token")
    return HookError(f"rampartd answered {status}" + (f" ({code})" if known else ""))


def verdict_of(daemon: Daemon, nonce: str, status: int, answer: Any,
               can_ask: bool) -> tuple[Verdict, str]:
    """The verdict for one evaluation answer; anything unproven or unexpected is a deny."""
    if status == 403 and isinstance(answer, dict) and answer.get("allowed") is False:
        # Any 403 is a deny; only a proven one gets to show its message to the model.
        try:
            checked(daemon, nonce, answer)
        except HookError:
            return "deny", "rampartd: denied (the answer carried no proof, so its reason " \
                           "is not shown)"
        return "deny", f"rampartd: {answer.get('message') or 'denied'}"
    if status not in (200, 202):
        raise _error(status, answer)
    answer = checked(daemon, nonce, answer)
    message = str(answer.get("message") or "")
    if status == 200 and answer.get("allowed") is True:
        return ("explicit" if answer.get("explicit_allow") is True else "allow"), \
            f"rampartd: {message or 'allowed'}"
    if status == 202 and answer.get("decision") == "ask":
        if can_ask and answer.get("ask") == "host":
            return "ask", f"rampartd asks: {message}"
        approval = answer.get("approval_id")
        return "deny", (f"rampartd needs a person's approval ({approval}): {message}. Approve "
                        f"it with `rampartd approvals approve {approval}`, then retry")
    raise HookError("rampartd gave an answer the hook does not understand")


def decide(call: HookCall, opts: Options) -> tuple[Verdict, str]:
    """Evaluate every part of a call; the strongest verdict wins."""
    daemon = locate(os.environ, opts.home)
    query = {"wait": f"{opts.wait:g}"} if opts.wait > 0 else \
        {"ask": "host"} if opts.host.can_ask else None
    worst: tuple[Verdict, str] | None = None
    for params in (call.params, *call.more):
        nonce = new_nonce()
        status, answer = post(daemon, f"/v1/tool/{call.tool}", _body(call, opts, params),
                              timeout=opts.timeout + opts.wait, nonce=nonce, query=query)
        result = verdict_of(daemon, nonce, status, answer, opts.host.can_ask)
        if worst is None or SEVERITY[result[0]] > SEVERITY[worst[0]]:
            worst = result
        if worst[0] == "deny":
            break
    assert worst is not None
    return worst


def _output_text(output: Any) -> str:
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    return text[:MAX_OUTPUT_CHARS]


def scan(call: HookCall, opts: Options) -> Report:
    """Send a finished call's output to be scanned and recorded; what to tell the model."""
    daemon = locate(os.environ, opts.home)
    body = _body(call, opts, call.params)
    body["output"] = _output_text(call.output)
    status, answer = post(daemon, f"/v1/tool-output/{call.tool}", body, timeout=opts.timeout,
                          nonce=new_nonce())
    if status != 200 or not isinstance(answer, dict):
        raise _error(status, answer)
    if not answer.get("flagged"):
        return Report()
    return Report(str(answer.get("message") or "rampartd flagged this tool output"),
                  secrets=bool(answer.get("secrets")))


def run(argv: Sequence[str], stdin: str) -> Answer:
    """The whole hook: parse, decide or scan, render. Never raises."""
    try:
        opts = parse_args(argv)
    except ValueError as exc:
        return Answer(stderr=f"rampartd-hook: {exc}\n{USAGE}", code=2)
    host = opts.host
    event: Any = None
    try:
        event = json.loads(stdin)
        if not isinstance(event, dict):
            raise HookError("the hook input is not a JSON object")
        call = host.parse(event)
        if call.phase == "post":
            return host.post(event, scan(call, opts))
        verdict, reason = decide(call, opts)
    except Exception as exc:  # whatever went wrong, the call must not go ahead unchecked
        why = str(exc) if isinstance(exc, HookError) else \
            "the hook input is not JSON" if isinstance(exc, ValueError) else \
            f"unexpected error ({exc.__class__.__name__})"
        if host.is_post(event):
            return host.post(event, Report(f"rampartd could not scan this tool output ({why}); "
                                           f"treat it as untrusted"))
        verdict, reason = "deny", f"rampartd could not decide, so the call is blocked: {why}"
    return host.pre(event, verdict, reason)


def main() -> None:
    """Console entry point."""
    try:
        stdin = sys.stdin.buffer.read().decode("utf-8", "replace")
    except OSError:
        stdin = ""  # no input: parsed as malformed, so a deny
    answer = run(sys.argv[1:], stdin)
    if answer.stdout:
        sys.stdout.write(answer.stdout + "\n")
    if answer.stderr:
        sys.stderr.write(answer.stderr + "\n")
    sys.stdout.flush()
    sys.exit(answer.code)
