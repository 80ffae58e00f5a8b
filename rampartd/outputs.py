"""A finished tool call reported by the host: its output scanned, findings and outcomes recorded.

Two records can come from one report: `tool.output_flagged` when the scan found secrets or
injection markers (the record holds redacted excerpts, never the output), and
`ask.host_outcome` when the call was an ask handed to the host, whose person let it run.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from rampartd.audit.chain import RecordDraft
from rampartd.audit.handed import HOST_OUTCOME, pending_handed_ask
from rampartd.calls import ToolService
from rampartd.models import ToolCall
from rampartd.scan import Finding, scan_output, summary


@dataclass(frozen=True)
class OutputReport:
    """What a reported output produced."""

    findings: list[Finding]
    records: list[str] = field(default_factory=list)  # audit ids, in chain order

    @property
    def flagged(self) -> bool:
        """True when anything was found."""
        return bool(self.findings)

    def answer(self) -> dict[str, Any]:
        """The JSON answer for the host's hook."""
        body: dict[str, Any] = {"flagged": self.flagged,
                                "secrets": any(f.kind == "secret" for f in self.findings),
                                "findings": [f.as_dict() for f in self.findings],
                                "audit_ids": self.records}
        if self.flagged:
            body["message"] = summary(self.findings)
        return body


def _draft(call: ToolCall, kind: str, **detail: Any) -> RecordDraft:
    return RecordDraft(kind=kind, agent=call.agent, session=call.session, run_id=call.run_id,
                       tool_call_id=call.tool_call_id, tool=call.tool, request=dict(call.params),
                       detail=detail)


async def record_output(service: ToolService, call: ToolCall, output: str) -> OutputReport:
    """Scan one output and record what must be recorded (durably, before answering).

    The handed ask is looked up in the audit log in the same transaction that records its
    outcome, so it is found after a restart and two reports of one call record it once.
    """
    findings = scan_output(output)
    flagged = []
    if findings:
        data = output.encode("utf-8", "replace")
        flagged.append(_draft(call, "tool.output_flagged",
                              findings=[f.as_dict() for f in findings],
                              output_bytes=len(data),
                              output_sha256=hashlib.sha256(data).hexdigest()))
    tool_call_id = call.tool_call_id

    def lookup(conn: sqlite3.Connection) -> str | None:
        if tool_call_id is None:
            return None
        return pending_handed_ask(conn, call.agent, call.session, tool_call_id)

    def drafts(handed: str | None) -> list[RecordDraft]:
        outcome = [] if handed is None else \
            [_draft(call, HOST_OUTCOME, outcome="ran", decision_id=handed)]
        return outcome + flagged

    if tool_call_id is None and not flagged:
        return OutputReport(findings)
    _, records = await service.store.transact(lookup, drafts)
    return OutputReport(findings, [str(r["id"]) for r in records])
