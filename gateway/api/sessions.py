"""Live sessions API: list (school-scoped) and terminate with a reason shown to the teacher."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import field_str, forbidden, json_body, not_found
from gateway.audit.kinds import SessionTerminated, SessionWatched, SessionWatchRefused
from gateway.console.cookie import allowed_origins


async def list_sessions(request: web.Request) -> web.Response:
    a = actor(request)
    await require(request, "sessions.read", school=a.school)
    rows = [asdict(s) for s in ctx(request).extras["broker"].all_summaries(a.school)]
    # "node": the node answering (its own sessions are the ones it can show live).
    return web.json_response({"sessions": rows, "node": ctx(request).node})


async def terminate(request: web.Request) -> web.Response:
    body = await json_body(request, max_bytes=4096)
    reason = field_str(body, "reason", max_len=300) or ""
    broker = ctx(request).extras["broker"]
    session_id = request.match_info["session_id"]
    session = broker.sessions.get(session_id)
    if session is not None and not session.ended:
        school, user = session.school, session.user_id
    else:  # held by another node: it ends the session when the node bus tells it
        row = broker.registry.get(session_id)
        if row is None:
            raise not_found("There is no live session with that id.")
        school, user = row.school, row.user_id
    await require(request, "sessions.terminate", school=school, subject=user)
    await audit(request, SessionTerminated(session=session_id, reason=reason),
                subject=user, school=school)
    if not await broker.terminate(session_id, f"An officer ended this session: {reason}"):
        raise not_found("There is no live session with that id.")
    return web.json_response({"terminated": session_id})


async def watch(request: web.Request) -> web.StreamResponse:
    """An officer's read-only live view (WebSocket): a whole frame, then the frames as the
    teacher gets them; nothing the watcher sends reaches the desktop. The teacher is told."""
    broker = ctx(request).extras["broker"]
    session = broker.sessions.get(request.match_info["session_id"])
    if session is None or session.ended:
        row = broker.registry.get(request.match_info["session_id"])
        if row is not None:  # the pixels are on the node that holds the session
            await require(request, "sessions.watch", school=row.school, subject=row.user_id)
            raise not_found(f"This session is on gateway node {row.node}: watch it from a "
                            "console signed in there.")
        raise not_found("There is no live session with that id.")
    await require(request, "sessions.watch", school=session.school, subject=session.user_id)
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in allowed_origins(ctx(request).config):
        await audit(request, SessionWatchRefused(session=session.id, origin=origin),
                    subject=session.user_id, school=session.school)
        raise forbidden("Watching is only possible from the gateway's own console.", "origin")
    await audit(request, SessionWatched(session=session.id), subject=session.user_id,
                school=session.school)
    ws = web.WebSocketResponse(max_msg_size=4096, heartbeat=20.0)
    await ws.prepare(request)
    await session.watch(ws)
    return ws
