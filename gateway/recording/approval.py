"""Two-person replay: who may open a recording, and what an approval or refusal records (pure).

Attacker-controlled here: the reason and note texts and the purpose of a request (from an
operator's API call; bounded and checked here). An officer asks to replay or export one recording
with a reason; a second, different officer decides; an approval lets the requester alone open
that recording until it expires. Nobody decides their own request; a decision is final.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gateway.store.base import ReplayRequest

PURPOSES = ("replay", "export")
MAX_REASON = 300
MIN_REASON = 5
# What each use of a recording needs an approval for: an export approval also covers replaying
# (the file holds everything the player shows).
COVERS = {"replay": ("replay", "export"), "export": ("export",)}


class ApprovalError(ValueError):
    """A request or decision that cannot be made; the message is one sentence for the user."""


@dataclass(frozen=True, slots=True)
class Access:
    """May this operator use this recording now, and under which approval?"""

    allowed: bool
    request_id: str | None = None
    reason: str = ""


def new_request(recording_id: str, subject: str, school: str | None, requester: str,
                purpose: str, reason: str, now: datetime) -> ReplayRequest:
    if purpose not in PURPOSES:
        raise ApprovalError(f"The purpose must be one of: {', '.join(PURPOSES)}.")
    reason = " ".join(reason.split())
    if not MIN_REASON <= len(reason) <= MAX_REASON or any(ord(c) < 32 for c in reason):
        raise ApprovalError(f"Give a reason of {MIN_REASON}-{MAX_REASON} characters (what the "
                            "case is, who asked), so that the approving officer can judge it.")
    return ReplayRequest(id=f"rr-{secrets.token_hex(8)}", recording_id=recording_id,
                         purpose=purpose, requester=requester, reason=reason, subject=subject,
                         school=school, created_at=now)


def decide(request: ReplayRequest, approver: str, approve: bool, now: datetime,
           valid_for: timedelta, note: str = "") -> ReplayRequest:
    """The request as decided by `approver`; ApprovalError if they may not decide it."""
    if request.requester == approver:
        raise ApprovalError("You cannot approve or decline your own request: a second officer "
                            "must decide it.")
    if request.status != "pending":
        raise ApprovalError(f"Request {request.id} has already been {request.status}.")
    note = " ".join(note.split())[:MAX_REASON]
    return replace(request, status="approved" if approve else "declined", decided_by=approver,
                   decided_at=now, decision_note=note or None,
                   expires_at=now + valid_for if approve else None)


def access(required: bool, approval: ReplayRequest | None, use: str) -> Access:
    """The decision for one replay or export, given the policy and the approval found (if any)."""
    if not required:
        return Access(True)
    if approval is not None:
        return Access(True, approval.id)
    verb = "exported" if use == "export" else "replayed"
    return Access(False, None, f"This recording may be {verb} only with a second officer's "
                  "approval: ask with `staffroom recordings request REC_ID --reason …` or the "
                  "console's Request button.")


def state(request: ReplayRequest, now: datetime) -> str:
    """pending, approved, expired or declined, as shown in lists."""
    if request.status == "approved" and request.expires_at is not None and \
            request.expires_at <= now:
        return "expired"
    return request.status
