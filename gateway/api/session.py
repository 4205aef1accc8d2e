"""Operator login (password + TOTP) and the bearer-token sessions the CLI keeps.

Attacker-controlled here: the login body and the Authorization header. Tokens are random 256-bit
values; only their SHA-256 is stored, looked up by hash (no timing oracle on the token itself).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from aiohttp import web

from gateway.api.common import ACTOR_KEY, TOKEN_HASH_KEY, audit, ctx
from gateway.api.errors import ApiError, error_response, field_str, forbidden, json_body
from gateway.auth.factors import authenticate
from gateway.policy.access import Actor
from gateway.store.base import OperatorSession

OPERATOR_ROLES = {"admin", "cio", "officer"}
PUBLIC_PATHS = {"/api/v1/login", "/api/v1/health"}
# Paths an operator who must change a one-time password may still use.
_ONE_TIME_OK = {"/api/v1/logout", "/api/v1/me"}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def login(request: web.Request) -> web.Response:
    body = await json_body(request, max_bytes=8192)
    user_id = field_str(body, "user", max_len=64) or ""
    password = field_str(body, "password", max_len=1024)
    code = field_str(body, "totp", required=False, max_len=16)
    c = ctx(request)
    now = c.clock()
    user = c.store.get_user(user_id)
    outcome = authenticate(
        user, password=password, totp_code=code, factors=("password", "totp"), now=now
    )
    if outcome.user is not None:
        c.store.update_user(outcome.user)
    if outcome.ok and user is not None and user.role not in OPERATOR_ROLES:
        await audit(request, "operator.login", "denied", actor_id=user_id, subject=user_id,
                    school=user.school, details={"code": "not-an-operator"})
        raise forbidden(
            "Teachers connect with `staffroom agent connect`; the admin API is for IT leads "
            "and security officers.", "not-an-operator",
        )
    school = user.school if user else None
    if not outcome.ok:
        await audit(request, "operator.login", "denied", actor_id=user_id, subject=user_id,
                    school=school, details={"code": outcome.code})
        if outcome.code == "locked" and user is not None and outcome.user is not None \
                and outcome.user.locked_until != user.locked_until:
            await audit(request, "account.locked", "ok", actor_id=user_id, subject=user_id,
                        school=school, details={"until": str(outcome.user.locked_until)})
        raise ApiError(401, outcome.code, outcome.reason)
    assert user is not None
    token = secrets.token_urlsafe(32)
    minutes = c.config.operator_session_minutes
    session = OperatorSession(token_hash(token), user.id, now, now + timedelta(minutes=minutes))
    await audit(request, "operator.login", "ok", actor_id=user.id, subject=user.id,
                school=school, details={"expires_at": session.expires_at.isoformat()})
    c.store.add_operator_session(session)
    return web.json_response({
        "token": token, "expires_at": session.expires_at.isoformat(), "user": user.id,
        "role": user.role, "school": user.school,
        "must_change_password": user.must_change_password,
    })


async def logout(request: web.Request) -> web.Response:
    await audit(request, "operator.logout", "ok")
    ctx(request).store.revoke_operator_session(request[TOKEN_HASH_KEY])
    return web.json_response({"ok": True})


async def me(request: web.Request) -> web.Response:
    a: Actor = request[ACTOR_KEY]
    user = ctx(request).store.get_user(a.user_id)
    return web.json_response({
        "user": a.user_id, "role": a.role, "school": a.school,
        "must_change_password": bool(user and user.must_change_password),
    })


@web.middleware
async def bearer_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/") or request.path in PUBLIC_PATHS:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or len(header) > 200:
        return error_response(401, "no-session", "Log in first: run `staffroom login`.")
    c = ctx(request)
    digest = token_hash(header.removeprefix("Bearer ").strip())
    session = c.store.get_operator_session(digest)
    now = c.clock()
    if session is None or session.revoked:
        return error_response(401, "no-session", "You are not logged in: run `staffroom login`.")
    if now >= session.expires_at:
        return error_response(
            401, "session-expired",
            "Your operator session has expired: run `staffroom login` again.",
        )
    user = c.store.get_user(session.user_id)
    if user is None or user.disabled:
        return error_response(401, "no-session", "This account is disabled: ask your IT lead.")
    request[ACTOR_KEY] = Actor(user.id, user.role, user.school)
    request[TOKEN_HASH_KEY] = digest
    own_password = request.path == f"/api/v1/users/{user.id}/password"
    if user.must_change_password and not own_password and request.path not in _ONE_TIME_OK:
        return error_response(
            403, "must-change-password",
            f"Your one-time password must be changed first: run `staffroom users set-password "
            f"{user.id}`.",
        )
    return await handler(request)
