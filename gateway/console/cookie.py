"""Console sessions: the HttpOnly cookie, its per-session CSRF token and the same-origin check.

Attacker-controlled here: the Cookie, Origin and X-CSRF-Token headers (any web page can make a
browser send a request, and a lax browser might attach the cookie). Limits: state-changing
methods need a same-origin Origin AND the session's CSRF token (constant-time compare); a cookie
or token over 100 characters is refused unread; only the cookie's SHA-256 is stored; a session
ends 30 minutes after its last foreground request and 10 hours after sign-in, whichever is first.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from aiohttp import web

from gateway.api.common import ACTOR_KEY, TOKEN_HASH_KEY, audit, ctx
from gateway.api.errors import error_response
from gateway.audit.kinds import ConsoleRequestRefused
from gateway.datadir import GatewayConfig
from gateway.policy.access import Actor
from gateway.store.base import OperatorSession, User

# __Host- makes the browser refuse the cookie unless it is Secure, Path=/ and has no Domain.
COOKIE = "__Host-staffroom_console"
CSRF_HEADER = "X-CSRF-Token"
# The page's background refreshes send this so that an open tab does not keep a session alive.
POLL_HEADER = "X-Staffroom-Poll"
IDLE = timedelta(minutes=30)
MAX_LIFE = timedelta(hours=10)
SLIDE_STEP = timedelta(minutes=1)  # write a new expiry at most once a minute per session
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_TOKEN = 100
SESSION_KEY = "staffroom.console_session"
_SLID_KEY = "staffroom.console_slid"

NO_SESSION = "You are not signed in to the console, or your session has ended: sign in again."
NOT_FROM_CONSOLE = ("This request did not come from the console page, so it was refused: reload "
                    "the console and try again.")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(config: GatewayConfig, served_port: int | None = None) -> frozenset[str]:
    """The gateway's own origins: its public URL (a load balancer's, when there is one) and
    each of its names on the port it actually serves (`--listen`; init's port by default)."""
    port = str(served_port) if served_port else config.listen.rsplit(":", 1)[1]
    origins = {_origin(config.public_url)}
    for name in config.hostnames:
        host = f"[{name}]" if ":" in name else name
        origins.add(f"https://{host}:{port}".lower())
        if port == "443":
            origins.add(f"https://{host}".lower())
    return frozenset(origins)


def origin_ok(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    c = ctx(request)
    return origin is not None and origin.lower() in allowed_origins(
        c.config, c.extras.get("served_port"))


def csrf_matches(expected: str | None, given: str | None) -> bool:
    if not expected or not given or len(given) > MAX_TOKEN:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def new_session(user_id: str, now: datetime) -> tuple[str, OperatorSession]:
    """A fresh cookie value and the session row that stores its hash and CSRF token."""
    token = secrets.token_urlsafe(32)
    return token, OperatorSession(digest(token), user_id, now, now + IDLE, kind="console",
                                  csrf=secrets.token_urlsafe(32))


def set_cookie(response: web.StreamResponse, token: str, max_age: timedelta = IDLE) -> None:
    response.set_cookie(COOKIE, token, max_age=int(max_age.total_seconds()), path="/",
                        secure=True, httponly=True, samesite="Strict")


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")


def live_session(request: web.Request) -> OperatorSession | None:
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > MAX_TOKEN:
        return None
    session = ctx(request).store.get_operator_session(digest(token))
    if session is None or session.revoked or session.kind != "console":
        return None
    return session if ctx(request).clock() < session.expires_at else None


async def authenticate(request: web.Request) -> User | web.Response:
    """The signed-in operator behind the request's cookie, or the response refusing it.

    Sets the actor for handlers and audit. A GET needs only the cookie (and no foreign Origin);
    anything else also needs a same-origin Origin and the session's CSRF header.
    """
    c = ctx(request)
    session = live_session(request)
    if session is None:
        return error_response(401, "no-session", NO_SESSION)
    user = c.store.get_user(session.user_id)
    if user is None or user.disabled:
        return error_response(401, "no-session", "This account is disabled: ask your IT lead.")
    request[ACTOR_KEY] = Actor(user.id, user.role, user.school)
    request[TOKEN_HASH_KEY] = session.token_hash
    request[SESSION_KEY] = session
    code = _forgery(request, session)
    if code is not None:
        await audit(request, ConsoleRequestRefused(code=code, method=request.method,
                                                   path=request.path[:200]),
                    school=user.school)
        return error_response(403, "csrf", NOT_FROM_CONSOLE)
    _slide(request, session)
    return user


def _forgery(request: web.Request, session: OperatorSession) -> str | None:
    """Why this request may be forged by another site, or None."""
    origin = request.headers.get("Origin")
    if request.method in SAFE_METHODS:
        return None if origin is None or origin_ok(request) else "foreign-origin"
    if not origin_ok(request):
        return "foreign-origin" if origin else "no-origin"
    if not csrf_matches(session.csrf, request.headers.get(CSRF_HEADER)):
        return "bad-csrf-token"
    return None


def _slide(request: web.Request, session: OperatorSession) -> None:
    if request.headers.get(POLL_HEADER):
        return
    now = ctx(request).clock()
    if session.expires_at - now > IDLE - SLIDE_STEP:
        return
    expires = min(now + IDLE, session.created_at + MAX_LIFE)
    if expires > session.expires_at:
        ctx(request).store.touch_operator_session(session.token_hash, expires)
        request[_SLID_KEY] = expires - now


def refresh_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """After a sliding step, send the cookie again with the new lifetime (if still possible)."""
    left = request.get(_SLID_KEY)
    if left is not None and not response.prepared and COOKIE in request.cookies:
        set_cookie(response, request.cookies[COOKIE], left)
