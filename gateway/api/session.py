"""Operator login (password + TOTP), the bearer-token sessions the CLI keeps, and the gate in
front of every /api/ handler (bearer token, or the console's cookie + CSRF header).

Attacker-controlled here: the login body (8 KiB within 10 s; every attempt through the login
throttle, gateway.auth.throttle), the Authorization header and the console cookie.
Tokens are random 256-bit values; only their SHA-256 is stored, looked up by hash (no timing
oracle on the token itself); the cookie path's own limits are in gateway.console.cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta

from aiohttp import web

from gateway.api.common import ACTOR_KEY, TOKEN_HASH_KEY, audit, ctx, source
from gateway.api.errors import ApiError, error_response, field_str, json_body
from gateway.audit.kinds import (
    OperatorLoggedIn,
    OperatorLoggedOut,
    OperatorLoginRefused,
    PasswordRehashed,
)
from gateway.auth.factors import authenticate
from gateway.auth.guard import admit, settle
from gateway.auth.pool import PoolBusy, pool_of
from gateway.console import cookie as console_cookie
from gateway.net.site import mark_known
from gateway.policy.access import Actor
from gateway.store.base import OperatorSession, User
from gateway.store.logins import CHANGED, record_login

OPERATOR_ROLES = {"admin", "cio", "officer", "helpdesk"}
PUBLIC_PATHS = {"/api/v1/login", "/api/v1/health", "/api/v1/ready"}
LOGIN_BODY_SECONDS = 10.0
LOCKED_NOW = ("Too many failed attempts: this account is now locked for 15 minutes from your "
              "network.")
# Paths an operator who must change a one-time password may still use.
_ONE_TIME_OK = {"/api/v1/logout", "/api/v1/me"}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def verify_operator(request: web.Request, user_id: str, password: str | None,
                          code: str | None, *, via: str) -> User:
    """Password + TOTP of an operator, throttled per address and account; every refusal is
    audited and raised.

    Shared by the CLI login and the console sign-in so both throttle and audit alike. Anyone who
    is not an operator (a teacher, an unknown id) gets the same answer, after the same work, as
    a wrong password: the answer never tells which accounts exist or what they are.
    """
    c = ctx(request)
    remote = source(request)
    verdict = await admit(c, remote, user_id, via=via)
    if not verdict.allowed:
        raise ApiError(429, verdict.code, verdict.reason,
                       {"Retry-After": str(verdict.retry_after)})
    user = c.store.get_user(user_id)
    operator = user is not None and user.role in OPERATOR_ROLES
    try:
        outcome = await pool_of(c.extras).run(
            authenticate, user if operator else None, password=password, totp_code=code,
            factors=("password", "totp"), now=c.clock())
    except PoolBusy as e:
        raise ApiError(503, "busy", str(e), {"Retry-After": "5"}) from None
    # A compare-and-set: a disable or a second use of the same code since the read wins.
    if not record_login(c.store, outcome.ok, outcome.user, totp_used=True):
        outcome = replace(outcome, ok=False, code="account-changed", reason=CHANGED)
    school = user.school if user else None
    locked = await settle(c, remote, user_id, ok=outcome.ok, via=via, school=school)
    if not outcome.ok:
        why = outcome.code if operator or user is None else "not-an-operator"
        await audit(request, OperatorLoginRefused(code=why, via=via), actor_id=user_id,
                    subject=user_id, school=school)
        if locked:
            raise ApiError(401, "locked", LOCKED_NOW)
        raise ApiError(401, outcome.code, outcome.reason)
    assert outcome.user is not None
    if outcome.rehashed:  # only the hash column: the row read before is never written back
        c.store.update_user_fields(user_id, {"password_hash": outcome.user.password_hash})
        await audit(request, PasswordRehashed(), actor_id=user_id, subject=user_id,
                    school=school)
    return outcome.user


async def login_body(request: web.Request) -> dict[str, object]:
    """The sign-in body: at most 8 KiB, all of it within LOGIN_BODY_SECONDS (no slow bodies
    holding a connection open before anyone is known)."""
    try:
        async with asyncio.timeout(LOGIN_BODY_SECONDS):
            return await json_body(request, max_bytes=8192)
    except TimeoutError:
        raise ApiError(408, "too-slow", "The login request arrived too slowly: try again.") \
            from None


async def login(request: web.Request) -> web.Response:
    body = await login_body(request)
    user = await verify_operator(
        request, field_str(body, "user", max_len=64) or "",
        field_str(body, "password", max_len=1024), field_str(body, "totp", required=False,
                                                             max_len=16), via="api")
    c = ctx(request)
    now = c.clock()
    token = secrets.token_urlsafe(32)
    minutes = c.config.operator_session_minutes
    session = OperatorSession(token_hash(token), user.id, now, now + timedelta(minutes=minutes))
    await audit(request, OperatorLoggedIn(expires_at=session.expires_at.isoformat()),
                actor_id=user.id, subject=user.id, school=user.school)
    c.store.add_operator_session(session)
    return web.json_response({
        "token": token, "expires_at": session.expires_at.isoformat(), "user": user.id,
        "role": user.role, "school": user.school,
        "must_change_password": user.must_change_password,
    })


async def logout(request: web.Request) -> web.Response:
    await audit(request, OperatorLoggedOut())
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
    """Every /api/ request but login and health needs an operator: a CLI bearer token, or the
    console's cookie (plus, for state-changing methods, its CSRF header and a same-origin
    Origin — gateway.console.cookie). A request with an Authorization header is never judged
    by its cookie."""
    if not request.path.startswith("/api/") or request.path in PUBLIC_PATHS:
        return await handler(request)
    if "Authorization" not in request.headers and console_cookie.COOKIE in request.cookies:
        found = await console_cookie.authenticate(request)
        if isinstance(found, web.StreamResponse):
            return found
        mark_known(request)
        refused = _must_change(request, found, "console")
        if refused is not None:
            return refused
        response = await handler(request)
        console_cookie.refresh_cookie(request, response)
        return response
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or len(header) > 200:
        return error_response(401, "no-session", "Log in first: run `staffroom login`.")
    c = ctx(request)
    digest = token_hash(header.removeprefix("Bearer ").strip())
    session = c.store.get_operator_session(digest)
    now = c.clock()
    if session is None or session.revoked or session.kind != "bearer":
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
    mark_known(request)
    refused = _must_change(request, user, "api")
    if refused is not None:
        return refused
    return await handler(request)


def _must_change(request: web.Request, user: User, via: str) -> web.Response | None:
    """An operator with a one-time password may only change it (and see who they are)."""
    own_password = request.path == f"/api/v1/users/{user.id}/password"
    if not user.must_change_password or own_password or request.path in _ONE_TIME_OK:
        return None
    how = ("use the console's password form" if via == "console"
           else f"run `staffroom users set-password {user.id}`")
    return error_response(
        403, "must-change-password", f"Your one-time password must be changed first: {how}.")
