"""Console sign-in, who-am-I and sign-out (`/console/session`).

Attacker-controlled here: the sign-in body and the Origin of every call. Limits: sign-in needs a
same-origin Origin (no login CSRF) and goes through the API login's password + TOTP check with
its throttles and audit; a body over 8 KiB (or slower than 10 s) is refused; sign-out needs the
cookie and CSRF token.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.common import audit, ctx
from gateway.api.errors import error_response, field_str
from gateway.api.session import login_body, verify_operator
from gateway.audit.kinds import OperatorLoggedIn, OperatorLoggedOut, OperatorLoginRefused
from gateway.console import cookie
from gateway.console.views import views_for
from gateway.store.base import OperatorSession, User

NO_STORE = {"Cache-Control": "no-store"}


def _info(user: User, session: OperatorSession) -> dict[str, object]:
    return {
        "user": user.id, "name": user.name, "role": user.role, "school": user.school,
        "csrf": session.csrf, "expires_at": session.expires_at.isoformat(),
        "must_change_password": user.must_change_password, "views": views_for(user.role),
    }


async def session_info(request: web.Request) -> web.Response:
    """Who is signed in, with the CSRF token the page sends back on state-changing calls.

    Nobody signed in is an ordinary answer here (`user: null`), not an error: it is how the
    page finds out whether to show the sign-in form.
    """
    if cookie.live_session(request) is None:
        return web.json_response({"user": None, "views": {}}, headers=NO_STORE)
    found = await cookie.authenticate(request)
    if isinstance(found, web.Response):
        return found
    session = ctx(request).store.get_operator_session(request[cookie.SESSION_KEY].token_hash)
    assert session is not None
    response = web.json_response(_info(found, session), headers=NO_STORE)
    cookie.refresh_cookie(request, response)
    return response


async def sign_in(request: web.Request) -> web.Response:
    if not cookie.origin_ok(request):
        await audit(request, OperatorLoginRefused(code="foreign-origin", via="console"))
        return error_response(403, "csrf", cookie.NOT_FROM_CONSOLE)
    body = await login_body(request)
    user = await verify_operator(
        request, field_str(body, "user", max_len=64) or "",
        field_str(body, "password", max_len=1024),
        field_str(body, "totp", required=False, max_len=16), via="console")
    c = ctx(request)
    old = request.cookies.get(cookie.COOKIE, "")
    if old and len(old) <= cookie.MAX_TOKEN:  # no session fixation: a sign-in never reuses one
        c.store.revoke_operator_session(cookie.digest(old))
    token, session = cookie.new_session(user.id, c.clock())
    await audit(request, OperatorLoggedIn(expires_at=session.expires_at.isoformat(),
                                          via="console"),
                actor_id=user.id, subject=user.id, school=user.school)
    c.store.add_operator_session(session)
    response = web.json_response(_info(user, session), headers=NO_STORE)
    cookie.set_cookie(response, token)
    return response


async def sign_out(request: web.Request) -> web.Response:
    found = await cookie.authenticate(request)
    if isinstance(found, web.Response):
        return found
    await audit(request, OperatorLoggedOut(via="console"), school=found.school)
    ctx(request).store.revoke_operator_session(request[cookie.SESSION_KEY].token_hash)
    response = web.json_response({"ok": True}, headers=NO_STORE)
    cookie.clear_cookie(response)
    return response
