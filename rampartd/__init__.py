"""rampartd: a local policy daemon that evaluates, records and streams AI agents' tool calls."""

__version__ = "0.1.0"
