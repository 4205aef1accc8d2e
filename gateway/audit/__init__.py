"""The tamper-evident audit log: typed events, a hash-chained file, signed checkpoints and head.

Audit is not logging: an event is written and fsynced before the action it describes takes effect,
and `verify` proves afterwards that no record was edited, removed or added.
"""

from __future__ import annotations

from gateway.audit.events import AuditEvent, AuditRecord, Outcome
from gateway.audit.log import AuditLog, AuditLogError, create
from gateway.audit.query import export_csv, export_jsonl, iter_records, tail

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditLogError",
    "AuditRecord",
    "Outcome",
    "VerifyResult",
    "create",
    "export_csv",
    "export_jsonl",
    "iter_records",
    "tail",
    "verify",
]
