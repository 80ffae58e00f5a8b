"""The agent-host hook: one small, fast executable that asks the daemon before each tool call.

Standard library only (plus rampartd's pure tables), because the host starts it for every
call: see `main` for the entry point, `hosts` for each host's payloads and answers, and
`client` for the daemon connection and the proof check.
"""
