"""The admin API's URL table (`/api/v1/`), one place; docs/API.md documents it."""

from __future__ import annotations

from aiohttp import web

from gateway.api import (
    audit,
    help,
    keys,
    recordings,
    replay_requests,
    reports,
    session,
    sessions,
    users,
    workspaces,
)
from gateway.api.common import ctx
from gateway.health import report
from gateway.pki.publish import CRL_PATH


async def health(request: web.Request) -> web.Response:
    """Always answers (no writes, no audit): "ok", or "degraded" with what cannot be written."""
    return web.json_response(report(ctx(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/health", health)
    app.router.add_post("/api/v1/login", session.login)
    app.router.add_post("/api/v1/logout", session.logout)
    app.router.add_get("/api/v1/me", session.me)
    app.router.add_get("/api/v1/users", users.list_users)
    app.router.add_post("/api/v1/users", users.add_user)
    app.router.add_post("/api/v1/users/import", users.import_roster)
    app.router.add_post("/api/v1/users/{user_id}/disable", users.disable_user)
    app.router.add_post("/api/v1/users/{user_id}/password", users.set_password)
    app.router.add_post("/api/v1/users/{user_id}/totp", users.enroll_totp)
    app.router.add_post("/api/v1/keys/challenge", keys.challenge)
    app.router.add_post("/api/v1/keys", keys.issue)
    app.router.add_get("/api/v1/keys", keys.list_keys)
    app.router.add_post("/api/v1/keys/revoke", keys.revoke)
    app.router.add_get("/api/v1/crl", keys.crl_pem)
    app.router.add_get(CRL_PATH, keys.crl_der)
    app.router.add_get("/api/v1/audit", audit.search)
    app.router.add_get("/api/v1/audit/verify", audit.verify)
    app.router.add_get("/api/v1/audit/export", audit.export)
    app.router.add_post("/api/v1/workspaces", workspaces.assign)
    app.router.add_get("/api/v1/workspaces", workspaces.list_workspaces)
    app.router.add_post("/api/v1/workspaces/{user}/stop", workspaces.stop)
    app.router.add_get("/api/v1/sessions", sessions.list_sessions)
    app.router.add_post("/api/v1/sessions/{session_id}/terminate", sessions.terminate)
    app.router.add_get("/api/v1/sessions/{session_id}/watch", sessions.watch)
    app.router.add_get("/api/v1/sessions/{session_id}/help", help.join)
    app.router.add_get("/api/v1/help", help.list_help)
    app.router.add_get("/api/v1/recordings", recordings.list_all)
    app.router.add_get("/api/v1/recordings/{recording_id}", recordings.show)
    app.router.add_get("/api/v1/recordings/{recording_id}/file", recordings.export)
    app.router.add_get("/api/v1/recordings/{recording_id}/window", recordings.window)
    app.router.add_delete("/api/v1/recordings/{recording_id}", recordings.remove)
    app.router.add_post("/api/v1/recordings/{recording_id}/requests", replay_requests.create)
    app.router.add_get("/api/v1/replay-requests", replay_requests.list_requests)
    app.router.add_post("/api/v1/replay-requests/{request_id}/approve", replay_requests.approve)
    app.router.add_post("/api/v1/replay-requests/{request_id}/decline", replay_requests.decline)
    reports.add_routes(app)
