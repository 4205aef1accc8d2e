"""Serves the console's page and static files, with a strict CSP, and adds its routes.

Attacker-controlled here: the requested file name. Limits: only plain names of files that exist
directly in static/ with a known type are served (no paths, no dot-files), never a directory;
from viewer/ only the listed renderer modules, shared with the teacher's viewer, never copied.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from gateway.console import signin

STATIC_DIR = Path(__file__).resolve().parent / "static"
VIEWER_DIR = Path(__file__).resolve().parents[2] / "viewer"
# The viewer's socket-free modules the console's Watch, Recordings and Help pages import. Input
# capture is for the Help page only: a helpdesk operator's keys reach a desktop only when its
# teacher gave control (the gateway decides; gateway/live/help.py). Nothing else of viewer/ (the
# session's socket, lock-down) belongs in an operator's page.
VIEWER_MODULES = frozenset({"protocol.js", "canvas.js", "palette.js", "input.js"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), usb=(), serial=(), hid=()",
}
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
         ".svg": "image/svg+xml"}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,40}\.(js|css|svg)")


def _file(path: Path) -> web.Response:
    return web.Response(body=path.read_bytes(), content_type=TYPES[path.suffix],
                        charset="utf-8", headers=SECURITY_HEADERS)


async def index(request: web.Request) -> web.Response:
    return _file(STATIC_DIR / "index.html")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    path = STATIC_DIR / name
    if not _NAME.fullmatch(name) or not path.is_file():
        raise web.HTTPNotFound()
    return _file(path)


async def viewer_module(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in VIEWER_MODULES:
        raise web.HTTPNotFound()
    return _file(VIEWER_DIR / name)


def add_routes(app: web.Application) -> None:
    """The console's URLs; its data comes from the /api/v1/ handlers (cookie + CSRF)."""
    app.router.add_get("/console", redirect)
    app.router.add_get("/console/", index)
    app.router.add_get("/console/static/{name}", static)
    app.router.add_get("/console/viewer/{name}", viewer_module)
    app.router.add_get("/console/session", signin.session_info)
    app.router.add_post("/console/session", signin.sign_in)
    app.router.add_delete("/console/session", signin.sign_out)
