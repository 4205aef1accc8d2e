"""Two-person replay API: an officer asks to replay or export a recording with a reason; a second,
different officer approves or declines. Every step is audited, refusals too.

Attacker-controlled here: the recording and request ids (matched against the stores), the reason
and note texts (bounded by gateway.recording.approval) and the purpose.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aiohttp import web

from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import ApiError, bad_request, conflict, field_str, json_body, not_found
from gateway.audit.kinds import (
    ReplayApproved,
    ReplayApproveRefused,
    ReplayDeclined,
    ReplayDeclineRefused,
    ReplayRequested,
)
from gateway.recording import approval
from gateway.recording.store import RecordingInfo, find_recording, read_info, recordings_root
from gateway.store.base import Conflict, ReplayRequest


def request_json(r: ReplayRequest, now: Any) -> dict[str, Any]:
    return {"id": r.id, "recording": r.recording_id, "purpose": r.purpose,
            "requester": r.requester, "reason": r.reason, "user": r.subject, "school": r.school,
            "created": r.created_at.isoformat(), "state": approval.state(r, now),
            "decided_by": r.decided_by,
            "decided": r.decided_at.isoformat() if r.decided_at else None,
            "note": r.decision_note,
            "expires": r.expires_at.isoformat() if r.expires_at else None}


def recording_policy(request: web.Request, info: RecordingInfo) -> Any:
    """The [recording] policy of the recording's teacher (their school's, narrowed as usual)."""
    c = ctx(request)
    user = c.store.get_user(info.user)
    return c.policies.resolve(info.user, user.role if user else "teacher",
                              info.school or None).policy.recording


async def create(request: web.Request) -> web.Response:
    """POST /api/v1/recordings/{recording_id}/requests {reason, purpose}: a new request."""
    path = find_recording(recordings_root(ctx(request).data.root,
                                          ctx(request).config.recordings_dir),
                          request.match_info["recording_id"])
    if path is None:
        raise not_found("There is no recording with that id.")
    info = await asyncio.to_thread(read_info, path)
    await require(request, "recordings.read", school=info.school or None, subject=info.user)
    body = await json_body(request, max_bytes=4096)
    reason = field_str(body, "reason", max_len=approval.MAX_REASON) or ""
    purpose = field_str(body, "purpose", required=False, max_len=10) or "replay"
    c, me = ctx(request), actor(request)
    try:
        new = approval.new_request(info.id, info.user, info.school or None, me.user_id, purpose,
                                   reason, c.clock())
    except approval.ApprovalError as e:
        raise bad_request(str(e)) from None
    await audit(request, ReplayRequested(recording=info.id, request=new.id, purpose=purpose,
                                         reason=new.reason),
                subject=info.user, school=info.school or None)
    c.store.add_replay_request(new)
    return web.json_response(request_json(new, c.clock()), status=201)


async def list_requests(request: web.Request) -> web.Response:
    """GET /api/v1/replay-requests[?state=pending]: the requests of the officer's scope."""
    me, c = actor(request), ctx(request)
    await require(request, "recordings.read", school=me.school)
    now = c.clock()
    rows = [request_json(r, now) for r in c.store.list_replay_requests(me.school)]
    wanted = request.query.get("state")
    if wanted:
        rows = [r for r in rows if r["state"] == wanted]
    return web.json_response({"requests": rows})


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def decline(request: web.Request) -> web.Response:
    return await _decide(request, False)


async def _decide(request: web.Request, yes: bool) -> web.Response:
    c, me = ctx(request), actor(request)
    pending = c.store.get_replay_request(request.match_info["request_id"])
    if pending is None:
        raise not_found("There is no replay request with that id.")
    await require(request, "recordings.approve", school=pending.school, subject=pending.subject)
    body = await json_body(request, max_bytes=4096)
    note = field_str(body, "note", required=False, max_len=approval.MAX_REASON) or ""
    about = {"recording": pending.recording_id, "request": pending.id,
             "requester": pending.requester, "purpose": pending.purpose}
    path = find_recording(recordings_root(c.data.root, c.config.recordings_dir),
                          pending.recording_id)
    valid_for = None
    if path is not None:
        valid_for = recording_policy(request, await asyncio.to_thread(read_info, path)) \
            .approval_valid_for
    try:
        if yes and valid_for is None:
            raise approval.ApprovalError("The recording no longer exists: there is nothing to "
                                         "approve.")
        decided = approval.decide(pending, me.user_id, yes, c.clock(),
                                  valid_for or timedelta(0), note)
    except approval.ApprovalError as e:
        refused = ReplayApproveRefused if yes else ReplayDeclineRefused
        await audit(request, refused(**about, error=str(e)), subject=pending.subject,
                    school=pending.school)
        raise ApiError(409 if pending.status != "pending" else 403, "cannot-decide",
                       str(e)) from None
    done = ReplayApproved if yes else ReplayDeclined
    expires = decided.expires_at.isoformat() if decided.expires_at else None
    await audit(request, done(**about, note=decided.decision_note, expires=expires),
                subject=pending.subject, school=pending.school)
    try:
        c.store.decide_replay_request(decided)
    except Conflict as e:
        raise conflict(str(e)) from None
    return web.json_response(request_json(decided, c.clock()))
