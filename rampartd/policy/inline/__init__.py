"""What inline interpreter code does: which command lines carry code (`python3 -c`, `node -e`),
which read a program from stdin, and the commands, files, URLs and risks in that code.

Pure and bounded: the analysis never raises, caps its input at 64 KiB and its work at a fixed
budget, and past a cap reports unknown targets and "code too complex to analyse".
"""

from __future__ import annotations

from rampartd.policy.inline import findings as F
from rampartd.policy.inline.argv import inline_code, reads_stdin_program
from rampartd.policy.inline.findings import Collector, InlineFindings
from rampartd.policy.inline.python import analyze_python
from rampartd.policy.inline.scan import scan

LANGUAGES = ("python", "perl", "node", "ruby", "php", "lua", "r", "applescript", "awk")
WORK_BUDGET = 400_000  # folding and scanning steps for one analysis, nested code included

__all__ = ["LANGUAGES", "InlineFindings", "analyze", "inline_code", "reads_stdin_program"]


def _analyze_into(language: str, code: str, out: Collector, depth: int,
                  budget: list[int]) -> None:
    if depth > F.MAX_DEPTH or budget[0] <= 0:
        out.too_complex()
        return
    if len(code) > F.MAX_CODE:
        code = code[:F.MAX_CODE]
        out.too_complex()

    def nested(lang: str, text: str, into: Collector, level: int) -> None:
        _analyze_into(lang, text, into, level, budget)

    if language == "python":
        if analyze_python(code, out, depth, budget, nested):
            return
        out.unknown = True  # not valid Python: only the call patterns can be seen
    scan(language if language in LANGUAGES else "python", code, out, depth, budget, nested)


def analyze(language: str, code: str) -> InlineFindings:
    """The effects of inline code in a language (see LANGUAGES). Pure, bounded, never raises."""
    out = Collector()
    if not isinstance(language, str) or not isinstance(code, str):
        return InlineFindings(unknown_targets=True)
    try:
        _analyze_into(language.lower(), code, out, 0, [WORK_BUDGET])
    except (RecursionError, MemoryError):
        out.too_complex()
    return out.finish()
