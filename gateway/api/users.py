"""Accounts API: add, list, disable, set password, enrol TOTP, import a roster."""

from __future__ import annotations

from aiohttp import web

from gateway.accounts import AccountError, parse_roster, validate
from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import bad_request, conflict, field_str, json_body, not_found
from gateway.auth import passwords, totp
from gateway.store.base import Conflict, User

OPERATOR_ROLES = {"admin", "cio", "officer", "helpdesk"}


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
              *, must_change: bool, request: web.Request) -> User:
    return User(
        id=spec_id, name=name, role=role, school=school,
        password_hash=passwords.hash_password(password), must_change_password=must_change,
        totp_secret=totp.new_secret() if role in OPERATOR_ROLES else None,
        created_at=ctx(request).clock(),
    )


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
        user = _new_user(spec.id, spec.name, spec.school, spec.role, password,
                         must_change=given is None, request=request)
    except passwords.WeakPassword as e:
        raise bad_request(str(e)) from None
    if ctx(request).store.get_user(spec.id) is not None:
        raise conflict(f"An account named {spec.id!r} already exists.")
    await audit(request, "user.add", "ok", subject=spec.id, school=spec.school,
                details={"role": spec.role})
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
    await audit(request, "user.disable", "ok", subject=user.id, school=user.school)
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
        hashed = passwords.hash_password(password)
    except passwords.WeakPassword as e:
        raise bad_request(str(e)) from None
    await audit(request, "user.set_password", "ok", subject=user.id, school=user.school,
                details={"self": own})
    updated = ctx(request).store.update_user_fields(user.id, {
        "password_hash": hashed, "must_change_password": not own, "failed_logins": 0,
        "locked_until": None})
    result = user_json(updated)
    if given is None:
        result["password"] = password
    return web.json_response(result)


async def enroll_totp(request: web.Request) -> web.Response:
    user = _target(request)
    if user.id != actor(request).user_id:
        await require(request, "users.write", school=user.school, subject=user.id,
                      grants_role=user.role)
    secret = totp.new_secret()
    await audit(request, "user.enroll_totp", "ok", subject=user.id, school=user.school)
    ctx(request).store.update_user_fields(user.id, {"totp_secret": secret,
                                                    "totp_last_step": -1})
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
    created = []
    users = []
    for spec in new:
        password = passwords.generate_password()
        users.append(_new_user(spec.id, spec.name, spec.school, spec.role, password,
                               must_change=True, request=request))
        created.append({"id": spec.id, "school": spec.school, "role": spec.role,
                        "password": password})
    await audit(request, "user.import", "ok", details={
        "created": [u.id for u in users], "unchanged": existing,
    })
    try:
        store.add_users(users)
    except Conflict as e:
        raise conflict(str(e)) from None
    return web.json_response({"dry_run": False, "created": created, "unchanged": existing})
