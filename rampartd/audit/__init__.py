"""The hash-chained audit log: chain (pure), redaction, the writer, queries, checkpoints."""

from rampartd.audit.chain import RecordDraft
from rampartd.audit.filters import EventFilter
from rampartd.audit.store import AuditStore
from rampartd.audit.verify import verify_db

__all__ = ["AuditStore", "EventFilter", "RecordDraft", "verify_db"]
