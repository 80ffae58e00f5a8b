"""Read-only verification of a database file: the CLI's and the API's `verify`."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from rampartd.audit.chain import ROW_COLUMNS, StoredRow, verify_rows
from rampartd.audit.checkpoints import PUBLIC_KEY_FILE, CheckpointFile, read_checkpoints
from rampartd.errors import NotFound, Unavailable


def verify_db(db_path: Path, *, checkpoints: Path | None = None,
              public_key: Path | None = None) -> dict[str, Any]:
    """Stream the chain from a read-only connection and report on it.

    With checkpoints (and public_key, default signing.pub beside it) the chain must also
    match and reach every signed head. Works while the daemon is running (WAL readers do not
    block the writer). NotFound when there is no database or no audit table.
    """
    db_path = Path(db_path)
    if not db_path.is_file():
        raise NotFound(f"no audit database at {db_path}")
    # Read the checkpoints before the database snapshot: a checkpoint is written only after
    # its records are committed, so every checkpoint read here is covered by the snapshot.
    signed = CheckpointFile(())
    if checkpoints is not None:
        pub = public_key if public_key is not None else checkpoints.parent / PUBLIC_KEY_FILE
        signed = read_checkpoints(checkpoints, pub)
    try:
        conn = sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot open {db_path}: {exc}") from None
    try:
        conn.execute("BEGIN")  # one snapshot for the head and the rows
        try:
            row = conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise NotFound(f"{db_path} holds no audit log") from None
            raise Unavailable(f"cannot read {db_path}: {exc}") from None
        head = (0, "") if row is None else (int(row[0]), str(row[1]))
        rows = conn.execute(f"SELECT {ROW_COLUMNS} FROM audit_log ORDER BY seq")  # noqa: S608
        return verify_rows(map(StoredRow._make, rows), head=head,
                           checkpoints=signed.checkpoints, checkpoint_error=signed.error,
                           checkpoints_expected=checkpoints is not None)
    except sqlite3.DatabaseError as exc:
        raise Unavailable(f"cannot read {db_path}: {exc}") from None
    finally:
        conn.close()
