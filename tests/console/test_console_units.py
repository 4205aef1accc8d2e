"""Pure parts of the console: the origin allow-list, the CSRF comparison, the role views, the
static file guard, and that docs/openapi.json covers every route the gateway serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.console import cookie
from gateway.console.pages import _NAME, CSP, STATIC_DIR, VIEWER_DIR, VIEWER_MODULES, viewer_module
from gateway.console.views import views_for
from gateway.datadir import GatewayConfig

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def config(**kw: object) -> GatewayConfig:
    base: dict[str, object] = {"hostnames": ("gw.kita.example", "127.0.0.1"),
                               "listen": "0.0.0.0:8443",
                               "public_url": "https://gw.kita.example:8443"}
    return GatewayConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(("origin", "ok"), [
    ("https://gw.kita.example:8443", True),
    ("https://127.0.0.1:8443", True),
    ("https://GW.kita.example:8443", True),
    ("http://gw.kita.example:8443", False),  # scheme matters
    ("https://gw.kita.example", False),  # so does the port
    ("https://gw.kita.example:8443.evil.example", False),
    ("https://evil.example", False),
    ("null", False),
])
def test_allowed_origins_are_the_gateways_own(origin: str, ok: bool) -> None:
    assert (origin.lower() in cookie.allowed_origins(config())) is ok


def test_port_443_origins_have_no_port() -> None:
    allowed = cookie.allowed_origins(config(listen="0.0.0.0:443",
                                            public_url="https://gw.kita.example"))
    assert "https://gw.kita.example" in allowed and "https://[::1]" not in allowed


@pytest.mark.parametrize(("expected", "given", "ok"), [
    ("abc123", "abc123", True),
    ("abc123", "abc124", False),
    ("abc123", "", False),
    ("abc123", None, False),
    (None, "abc123", False),  # a CLI (bearer) session has no CSRF token: nothing matches it
    ("", "", False),
    ("abc123", "abc123" * 40, False),
    ("abc123", "\udcff", False),  # undecodable header bytes do not crash the comparison
])
def test_csrf_tokens_compare_exactly(expected: str | None, given: str | None, ok: bool) -> None:
    assert cookie.csrf_matches(expected, given) is ok


def test_views_follow_roles_and_teachers_see_nothing() -> None:
    assert views_for("officer") == {"sessions": "manage", "recordings": "read", "audit": "read",
                                    "keys": "read", "hours": "read"}
    assert views_for("cio") == {"keys": "manage", "accounts": "manage", "hours": "read"}
    assert set(views_for("admin")) == {"sessions", "recordings", "audit", "keys", "accounts",
                                       "hours"}
    assert views_for("helpdesk") == {"help": "manage"}
    assert views_for("teacher") == {} and views_for("nobody") == {}


def test_new_sessions_are_console_sessions_with_their_own_csrf_token() -> None:
    from datetime import UTC, datetime

    now = datetime(2027, 4, 1, 8, 0, tzinfo=UTC)
    token, session = cookie.new_session("sec.board", now)
    other_token, other = cookie.new_session("sec.board", now)
    assert session.kind == "console" and session.expires_at == now + cookie.IDLE
    assert session.token_hash == cookie.digest(token) and token not in session.token_hash
    assert token != other_token and session.csrf != other.csrf and len(session.csrf or "") >= 40


@pytest.mark.parametrize(("name", "ok"), [
    ("app.js", True), ("console.css", True), ("../app.js", False), (".hidden.js", False),
    ("index.html", False), ("app.js.map", False), ("a/b.js", False), ("APP.JS", False),
])
def test_static_names_are_plain_files(name: str, ok: bool) -> None:
    assert bool(_NAME.fullmatch(name)) is ok


def test_every_static_module_the_page_imports_exists() -> None:
    import re

    for source in STATIC_DIR.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', source.read_text()):
            assert (STATIC_DIR / imported).is_file(), (source.name, imported)
            assert _NAME.fullmatch(imported)


def test_viewer_modules_the_console_imports_are_the_served_ones() -> None:
    import re

    imported = {name for source in STATIC_DIR.glob("*.js")
                for name in re.findall(r'from "\.\./viewer/([^"]+)"', source.read_text())}
    for name in sorted(imported):  # and what they import in turn is served too
        for inner in re.findall(r'from "\./([^"]+)"', (VIEWER_DIR / name).read_text()):
            imported.add(inner)
    assert imported == set(VIEWER_MODULES)


@pytest.mark.parametrize(("name", "status"), [
    ("canvas.js", 200), ("protocol.js", 200), ("input.js", 200), ("session.js", 404),
    ("help.js", 404), ("clipboard.js", 404),
    ("viewer.js", 404), ("index.html", 404), ("LOCKDOWN.md", 404), ("..%2Fpyproject.toml", 404),
    ("%2e%2e%2fprotocol.js", 404),
])
async def test_only_the_renderer_modules_of_viewer_are_served(name: str, status: int) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    app = web.Application()
    app.router.add_get("/console/viewer/{name}", viewer_module)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        r = await client.get(f"/console/viewer/{name}")
        assert r.status == status
        if status == 200:
            assert r.headers["Content-Type"].startswith("text/javascript")
            assert r.headers["Content-Security-Policy"] == CSP
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert (await r.read()) == (VIEWER_DIR / name).read_bytes()


def test_openapi_documents_every_route() -> None:
    spec = json.loads(SPEC.read_text())
    assert spec["openapi"].startswith("3.1")
    from gateway.app import build_app
    from gateway.context import GatewayContext

    # The composition root's own app, so that a route added anywhere shows up here.
    app = build_app(GatewayContext(None, None, None, None, None, None))  # type: ignore[arg-type]
    served = {(route.resource.canonical, route.method.lower())
              for route in app.router.routes()
              if route.method != "HEAD" and route.resource is not None}
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert served - documented == set(), "routes missing from docs/openapi.json"
    assert documented - served == set(), "docs/openapi.json documents routes that do not exist"
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary") and op.get("responses"), (path, method)
