"""Shell command parsing: grammar, expansions, one command's normalisation, launchers."""

from rampartd.policy.shell.parse import Component, ParsedCommand, parse_command

__all__ = ["Component", "ParsedCommand", "parse_command"]
