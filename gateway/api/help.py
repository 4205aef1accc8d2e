"""Call-centre help API: the teachers asking for help (school-scoped) and the helpdesk
operator's view of one of their sessions (WebSocket), view-only until the teacher gives control.

Attacker-controlled here: the session id (looked up among live sessions), the `Origin` of the
WebSocket (only the gateway's own console may open it) and every byte the operator's page sends
(handled by gateway.live.helpdesk: bounded, only Key/Pointer, only with control).
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import ApiError, forbidden, not_found
from gateway.audit.kinds import HelpJoined, HelpJoinRefused
from gateway.console.cookie import allowed_origins
from gateway.live import helpdesk


async def list_help(request: web.Request) -> web.Response:
    """GET /api/v1/help: live sessions whose teacher asked for help, or is being helped."""
    me = actor(request)
    await require(request, "help.read", school=me.school)
    rows = []
    for s in ctx(request).extras["broker"].sessions.values():
        if s.ended or s.help.status.name == "NONE":
            continue
        if me.school is not None and s.school != me.school:
            continue
        rows.append({"session": s.id, "user": s.user_id, "name": s.name, "school": s.school,
                     "started_at": s.started_at.isoformat(),
                     "status": s.help.status.name.lower(), "helper": s.help.helper})
    return web.json_response({"help": rows})


async def join(request: web.Request) -> web.StreamResponse:
    """GET (WebSocket) /api/v1/sessions/{session_id}/help: the operator's view of the session;
    Key and Pointer messages reach the desktop only after the teacher allows control."""
    c = ctx(request)
    session = c.extras["broker"].sessions.get(request.match_info["session_id"])
    if session is None or session.ended:
        raise not_found("There is no live session with that id.")
    await require(request, "help.join", school=session.school, subject=session.user_id)
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in allowed_origins(c.config):
        await audit(request, HelpJoinRefused(session=session.id, origin=origin),
                    subject=session.user_id, school=session.school)
        raise forbidden("Helping is only possible from the gateway's own console.", "origin")
    me = actor(request)
    user = c.store.get_user(me.user_id)
    name = f"{user.name} ({me.user_id})" if user else me.user_id
    check = helpdesk.can_join(session, me.user_id, name)
    if check.outcome != "ok":
        await audit(request, HelpJoinRefused(session=session.id, reason=check.reason),
                    subject=session.user_id, school=session.school)
        raise ApiError(409, "cannot-join", check.reason)
    await audit(request, HelpJoined(session=session.id), subject=session.user_id,
                school=session.school)
    ws = web.WebSocketResponse(max_msg_size=4096, heartbeat=20.0)
    await ws.prepare(request)
    await session.help_join(ws, me.user_id, name)
    return ws
