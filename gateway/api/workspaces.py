"""Workspace API: which desktop a user's sessions attach to, the running desktops, and the stop
that ends a stuck desktop (and its live sessions). Every change and refusal is audited first."""

from __future__ import annotations

from aiohttp import web

from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import bad_request, field_str, json_body, not_found
from gateway.audit.kinds import WorkspaceAssigned, WorkspaceAssignRefused, WorkspaceStopped
from gateway.store.base import WorkspaceAssignment
from gateway.workspace import InvalidAssignment, vnc_allow

STOPPED_SENTENCE = "Your school desktop was reset by your school's IT lead: {reason}"


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise bad_request(f"The desktop address {text[:80]!r} must be HOST:PORT.")
    return host.strip("[]"), int(port)


async def assign(request: web.Request) -> web.Response:
    body = await json_body(request, max_bytes=4096)
    user_id = field_str(body, "user", max_len=64) or ""
    provider = field_str(body, "provider", max_len=8)
    user = ctx(request).store.get_user(user_id)
    if user is None:
        raise not_found(f"There is no account named {user_id!r}.")
    await require(request, "workspaces.write", school=user.school, subject=user.id)
    if provider == "xvnc":
        assignment = WorkspaceAssignment(user.id, "xvnc")
    elif provider == "vnc":
        host, port = _address(field_str(body, "address", max_len=300) or "")
        password = field_str(body, "password", required=False, max_len=8)
        allowed = ctx(request).extras["broker"].workspaces.vnc.allowed
        try:
            await vnc_allow.check(allowed, host, port)
        except InvalidAssignment as e:
            await audit(request, WorkspaceAssignRefused(provider=provider,
                                                        address=f"{host[:80]}:{port}"),
                        subject=user.id, school=user.school)
            raise bad_request(str(e)) from None
        assignment = WorkspaceAssignment(user.id, "vnc", host, port, password)
    else:
        raise bad_request("The provider must be 'xvnc' or 'vnc'.")
    address = f"{assignment.host}:{assignment.port}" if assignment.host else None
    await audit(request, WorkspaceAssigned(provider=provider, address=address),
                subject=user.id, school=user.school)
    ctx(request).store.set_assignment(assignment)
    return web.json_response({"user": user.id, "provider": provider})


async def list_workspaces(request: web.Request) -> web.Response:
    a = actor(request)
    await require(request, "sessions.read", school=a.school)
    broker = ctx(request).extras["broker"]
    store = ctx(request).store
    rows = []
    for w in broker.workspaces.status():
        user = store.get_user(w.user)
        if a.school and (user is None or user.school != a.school):
            continue
        rows.append({"user": w.user, "provider": w.provider, "display": w.display,
                     "port": w.port, "attached": w.attached,
                     "started": w.started.isoformat() if hasattr(w.started, "isoformat")
                     else w.started})
    return web.json_response({"workspaces": rows})


async def stop(request: web.Request) -> web.Response:
    """End a teacher's desktop and every process in it, and their live sessions (the call
    centre's reset for a stuck desktop). Admins; CIOs within their school."""
    body = await json_body(request, max_bytes=4096)
    reason = field_str(body, "reason", max_len=300) or ""
    if not reason.strip():
        raise bad_request("Give a reason: the teacher sees it.")
    user = ctx(request).store.get_user(request.match_info["user"])
    if user is None:
        raise not_found("There is no account with that name.")
    await require(request, "workspaces.write", school=user.school, subject=user.id)
    broker = ctx(request).extras["broker"]
    running = broker.workspaces.xvnc.get(user.id) is not None
    await audit(request, WorkspaceStopped(reason=reason, running=running), subject=user.id,
                school=user.school)
    ended = await broker.end_user_sessions(user.id, STOPPED_SENTENCE.format(reason=reason))
    await broker.workspaces.stop(user.id)
    return web.json_response({"user": user.id, "stopped": running, "sessions_ended": ended})
