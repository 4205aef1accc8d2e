"""Accounts API: add, list, disable, set password, enrol TOTP, import a roster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from gateway.accounts import AccountError, AccountSpec, parse_roster, validate
from gateway.api.common import TOKEN_HASH_KEY, actor, audit, ctx, require, source
from gateway.api.errors import ApiError, bad_request, conflict, field_str, json_body, not_found
from gateway.audit.kinds import (
    AuthenticatorChangeRefused,
    OperatorSessionsEnded,
    PasswordChangeRefused,
    PasswordSet,
    TotpEnrolled,
    UserAdded,
    UserDisabled,
    UsersImported,
)
from gateway.auth import passwords, totp
from gateway.auth.guard import admit, settle, throttle_of
from gateway.auth.pool import PoolBusy, pool_of
from gateway.store.base import Conflict, User

OPERATOR_ROLES = {"admin", "cio", "officer", "helpdesk"}
T = TypeVar("T")


def user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id, "name": user.name, "role": user.role, "school": user.school,
        "disabled": user.disabled, "totp_enrolled": user.totp_secret is not None,
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "created_at": user.created_at.isoformat() if user.created_at else None,
    }


def _target(request: web.Request) -> User:
    user = ctx(request).store.get_user(request.match_info["user_id"])
    if user is None:
        raise not_found(f"There is no account named {request.match_info['user_id'][:64]!r}.")
    return user


def _new_user(spec_id: str, name: str, school: str | None, role: str, password: str,
              *, must_change: bool, now: datetime) -> User:
    """Slow (hashes the password): call it through the pool."""
    return User(
        id=spec_id, name=name, role=role, school=school,
        password_hash=passwords.hash_password(password), must_change_password=must_change,
        totp_secret=totp.new_secret() if role in OPERATOR_ROLES else None,
        created_at=now,
    )


async def _in_pool(request: web.Request, fn: Callable[..., T], /, *args: Any,
                   **kwargs: Any) -> T:
    try:
        return await pool_of(ctx(request).extras).run(fn, *args, **kwargs)
    except PoolBusy as e:
        raise ApiError(503, "busy", str(e), {"Retry-After": "5"}) from None


async def _check_current_password(request: web.Request, user: User, body: dict[str, object],
                                  what: str) -> None:
    """Changing one's own password or authenticator needs the current password (a stolen
    token or an unattended console is not enough), throttled like a login."""
    c = ctx(request)
    current = field_str(body, "current_password", required=False, max_len=1024)
    if current is None:
        raise bad_request(f"Give your current password to change your {what}.",
                          "current-password-needed")
    remote = source(request)
    verdict = await admit(c, remote, user.id, via="self-service")
    if not verdict.allowed:
        raise ApiError(429, verdict.code, verdict.reason,
                       {"Retry-After": str(verdict.retry_after)})
    ok = await _in_pool(request, passwords.verify_password, current, user.password_hash)
    await settle(c, remote, user.id, ok=ok, via="self-service", school=user.school)
    if not ok:
        refused = PasswordChangeRefused() if what == "password" else AuthenticatorChangeRefused()
        await audit(request, refused, subject=user.id, school=user.school)
        raise ApiError(403, "bad-current-password",
                       f"Your current password is wrong, so your {what} was not changed.")


def _end_other_sessions(request: web.Request, user: User) -> int:
    """After a change of one's own credentials, every other operator session of the user
    (CLI tokens, console cookies) ends; the one making the change stays."""
    return ctx(request).store.revoke_user_operator_sessions(user.id,
                                                            keep=request.get(TOKEN_HASH_KEY))


async def add_user(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        spec = validate(
            field_str(body, "id", max_len=64) or "", field_str(body, "name") or "",
            field_str(body, "school", required=False, max_len=64),
            field_str(body, "role", max_len=16) or "",
        )
    except AccountError as e:
        raise bad_request(str(e)) from None
    await require(request, "users.write", school=spec.school, subject=spec.id,
                  grants_role=spec.role)
    given = field_str(body, "password", required=False, max_len=1024)
    password = given or passwords.generate_password()
    try:
        user = await _in_pool(request, _new_user, spec.id, spec.name, spec.school, spec.role,
                              password, must_change=given is None, now=ctx(request).clock())
    except passwords.WeakPassword as e:
        raise bad_request(str(e)) from None
    if ctx(request).store.get_user(spec.id) is not None:
        raise conflict(f"An account named {spec.id!r} already exists.")
    await audit(request, UserAdded(role=spec.role), subject=spec.id, school=spec.school)
    try:
        ctx(request).store.add_user(user)
    except Conflict as e:
        raise conflict(str(e)) from None
    result = user_json(user)
    if given is None:
        result["password"] = password
    if user.totp_secret:
        result["totp_uri"] = totp.provisioning_uri(user.totp_secret, user.id)
    return web.json_response(result, status=201)


async def list_users(request: web.Request) -> web.Response:
    a = actor(request)
    school = a.school or request.query.get("school") or None
    await require(request, "users.read", school=school)
    users = ctx(request).store.list_users(school)
    return web.json_response({"users": [user_json(u) for u in users]})


async def disable_user(request: web.Request) -> web.Response:
    user = _target(request)
    await require(request, "users.write", school=user.school, subject=user.id,
                  grants_role=user.role)
    if user.id == actor(request).user_id:
        raise bad_request("You cannot disable your own account.")
    # Live sessions end first (and logins in flight are fenced): nothing below can stop that.
    broker = ctx(request).extras.get("broker")
    if broker is not None:
        await broker.end_user_sessions(user.id, "Your account was disabled, so this session "
                                       "ended: ask your school's IT lead.")
    await audit(request, UserDisabled(), subject=user.id, school=user.school)
    updated = ctx(request).store.update_user_fields(user.id, {"disabled": True})
    return web.json_response(user_json(updated))


async def set_password(request: web.Request) -> web.Response:
    user = _target(request)
    own = user.id == actor(request).user_id
    if not own:
        await require(request, "users.write", school=user.school, subject=user.id,
                      grants_role=user.role)
    body = await json_body(request, max_bytes=8192)
    given = field_str(body, "password", required=own, max_len=1024)
    password = given or passwords.generate_password()
    try:
        passwords.check_strength(password)
    except passwords.WeakPassword as e:
        raise bad_request(str(e)) from None
    if own:
        await _check_current_password(request, user, body, "password")
    hashed = await _in_pool(request, passwords.hash_password, password)
    await audit(request, PasswordSet(self=own), subject=user.id, school=user.school)
    updated = ctx(request).store.update_user_fields(user.id, {
        "password_hash": hashed, "must_change_password": not own, "failed_logins": 0,
        "locked_until": None})
    if not own:
        throttle_of(ctx(request).extras).forget(user.id)  # a reset also unlocks
    if own:
        ended = _end_other_sessions(request, user)
        if ended:
            await audit(request, OperatorSessionsEnded(count=ended, why="password"),
                        subject=user.id, school=user.school)
    result = user_json(updated)
    if given is None:
        result["password"] = password
    return web.json_response(result)


async def enroll_totp(request: web.Request) -> web.Response:
    user = _target(request)
    own = user.id == actor(request).user_id
    if not own:
        await require(request, "users.write", school=user.school, subject=user.id,
                      grants_role=user.role)
    else:
        body = await json_body(request, max_bytes=8192)
        await _check_current_password(request, user, body, "authenticator")
    secret = totp.new_secret()
    await audit(request, TotpEnrolled(), subject=user.id, school=user.school)
    ctx(request).store.update_user_fields(user.id, {"totp_secret": secret,
                                                    "totp_last_step": -1})
    if own:
        ended = _end_other_sessions(request, user)
        if ended:
            await audit(request, OperatorSessionsEnded(count=ended, why="totp"),
                        subject=user.id, school=user.school)
    return web.json_response({"user": user.id, "totp_uri": totp.provisioning_uri(secret, user.id)})


async def import_roster(request: web.Request) -> web.Response:
    body = await json_body(request, max_bytes=4 * 1024 * 1024)
    text = field_str(body, "csv", max_len=4 * 1024 * 1024) or ""
    dry_run = bool(body.get("dry_run", False))
    try:
        specs = parse_roster(text)
    except AccountError as e:
        raise bad_request(str(e), "bad-roster") from None
    store = ctx(request).store
    for spec in specs:
        await require(request, "users.write", school=spec.school, subject=spec.id,
                      grants_role=spec.role)
    existing = [s.id for s in specs if store.get_user(s.id) is not None]
    new = [s for s in specs if s.id not in set(existing)]
    if dry_run:
        return web.json_response({
            "dry_run": True, "create": [s.id for s in new], "unchanged": existing,
        })
    users, created = await _in_pool(request, _roster_users, new, ctx(request).clock())
    await audit(request, UsersImported(created=[u.id for u in users], unchanged=existing))
    try:
        store.add_users(users)
    except Conflict as e:
        raise conflict(str(e)) from None
    return web.json_response({"dry_run": False, "created": created, "unchanged": existing})


def _roster_users(specs: list[AccountSpec], now: datetime) -> tuple[list[User],
                                                                       list[dict[str, Any]]]:
    """The new accounts of a roster, each with a one-time password (slow: in the pool)."""
    users, created = [], []
    for spec in specs:
        password = passwords.generate_password()
        users.append(_new_user(spec.id, spec.name, spec.school, spec.role, password,
                               must_change=True, now=now))
        created.append({"id": spec.id, "school": spec.school, "role": spec.role,
                        "password": password})
    return users, created
