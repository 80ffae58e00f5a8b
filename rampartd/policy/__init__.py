"""The policy engine's public API: load, hold and inspect policy sets.

    load_policy_dir(path) -> PolicySet        every *.yaml of a directory, strictly validated
    PolicyHolder(path)                        the active set, hot-reloaded (poll / reload)
    standard_policy_text() -> str             the packaged default policy
"""

from __future__ import annotations

from rampartd.policy.compiler import compile_documents, compile_text, load_policy_dir
from rampartd.policy.policyset import Policy, PolicySet, Rule
from rampartd.policy.reload import PolicyHolder
from rampartd.policy.shell.parse import Component, ParsedCommand, parse_command

__all__ = [
    "Component",
    "ParsedCommand",
    "Policy",
    "PolicyHolder",
    "PolicySet",
    "Rule",
    "compile_documents",
    "compile_text",
    "load_policy_dir",
    "parse_command",
    "standard_policy_text",
]


def standard_policy_text() -> str:
    """The packaged standard policy (policies/standard.yaml) as text."""
    from rampartd.profiles import profile_text

    return profile_text("standard")
