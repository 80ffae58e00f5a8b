"""Approvals: the pending queue, its SQLite rows, and signed approval links."""
