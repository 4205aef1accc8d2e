"""The audit trail's errors, shared by the file log (log.py, reopen.py) and PostgreSQL (pgtrail).

Each message is one sentence for the operator; no peer input is part of it.
"""

from __future__ import annotations


class AuditLogError(Exception):
    """The log cannot be opened or written; the message is one sentence for the operator."""


class AuditWriteFailed(AuditLogError):
    """A record could not be stored (disk full, I/O error): the action it describes must not
    happen. The log stays consistent and usable; the next append retries."""


__all__ = ["AuditLogError", "AuditWriteFailed"]
