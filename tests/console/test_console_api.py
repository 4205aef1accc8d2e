"""The console's server side against a real gateway: cookie flags, same-origin + CSRF on every
state-changing call (a forged one changes nothing), school scope through the API, audit export,
sign-out, and the teacher's refusal."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
import pytest

from gateway.audit.events import parse_record
from tests.fixtures.console import FOREIGN, TEACHER, ConsoleWorld, Signed, add_operator

pytestmark = pytest.mark.slow


async def records(cw: ConsoleWorld, **query: str) -> list[dict[str, Any]]:
    """Audit records as the board-level officer sees them."""
    me = await cw.sign_in("sec.api")
    q = "&".join(f"{k}={v}" for k, v in {"limit": "5000", **query}.items())
    status, data, _ = await cw.request("GET", f"/api/v1/audit?{q}", cookie=me.cookie)
    assert status == 200, data
    return data["records"]  # type: ignore[no-any-return]


async def live_ids(cw: ConsoleWorld, who: Signed) -> list[str]:
    status, data, _ = await cw.request("GET", "/api/v1/sessions", cookie=who.cookie)
    assert status == 200, data
    return [s["id"] for s in data["sessions"]]


async def test_sign_in_sets_a_strict_host_cookie_and_gives_a_csrf_token(
    console_world: ConsoleWorld,
) -> None:
    cw = console_world
    op = cw.operators["sec.api"]
    status, data, r = await cw.request(
        "POST", "/console/session", origin=cw.origin,
        body={"user": op.id, "password": op.password, "totp": op.totp()})
    assert status == 200, data
    name, _, attrs = r.headers["Set-Cookie"].partition(";")
    assert name.startswith("__Host-staffroom_console=")
    flags = {a.strip().split("=")[0].lower(): a.strip() for a in attrs.split(";") if a.strip()}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= set(flags)
    assert flags["samesite"] == "SameSite=Strict" and flags["path"] == "Path=/"
    assert 0 < int(flags["max-age"].split("=")[1]) <= 30 * 60
    assert "domain" not in flags
    assert data["role"] == "officer" and len(data["csrf"]) >= 32
    assert data["views"] == {"sessions": "manage", "recordings": "read", "audit": "read",
                             "keys": "read", "hours": "read"}
    cookie = name.split("=", 1)[1]
    cw._signed["sec.api"] = Signed(cookie, data["csrf"], data)  # the TOTP code is now used
    # GET needs only the cookie, and gives a reloaded page the same CSRF token back.
    status, again, _ = await cw.request("GET", "/console/session", cookie=cookie)
    assert status == 200 and again["csrf"] == data["csrf"] and again["user"] == "sec.api"
    status, me, _ = await cw.request("GET", "/api/v1/me", cookie=cookie)
    assert status == 200 and me["user"] == "sec.api"
    # The cookie is not a bearer token, and a cookie nobody issued is nothing.
    async with aiohttp.ClientSession() as http, http.get(
            cw.origin + "/api/v1/me", ssl=cw.ssl,
            headers={"Authorization": f"Bearer {cookie}"}) as bearer:
        assert bearer.status == 401
    status, _, _ = await cw.request("GET", "/api/v1/me", cookie=cookie[:-2] + "xx")
    assert status == 401
    status, data, _ = await cw.request("GET", "/console/session", cookie=cookie, origin=FOREIGN)
    assert (status, data["error"]) == (403, "csrf")
    logins = await records(cw, kind="operator.login", user="sec.api")
    assert logins[-1]["outcome"] == "ok" and logins[-1]["details"]["via"] == "console"


async def test_sign_in_from_another_origin_is_refused(console_world: ConsoleWorld) -> None:
    cw = console_world
    op = cw.operators["sec.out"]
    for origin in (FOREIGN, None):
        status, data, r = await cw.request(
            "POST", "/console/session", origin=origin,
            body={"user": op.id, "password": op.password, "totp": "000000"})
        assert status == 403 and data["error"] == "csrf"
        assert "Set-Cookie" not in r.headers
    denied = await records(cw, kind="operator.login")
    assert denied[-1]["details"] == {"code": "foreign-origin", "via": "console"}


async def test_a_cross_site_post_is_refused_and_changes_nothing(
    console_world: ConsoleWorld,
) -> None:
    cw = console_world
    session_id = cw.live_session()
    officer = await cw.sign_in("sec.api")
    cio = await cw.sign_in("cio2.kita")
    terminate = f"/api/v1/sessions/{session_id}/terminate"
    disable = "/api/v1/users/t.sato/disable"
    forged = [
        (FOREIGN, None),  # the classic: another site's form, the cookie attached
        (FOREIGN, "wrong"),
        (None, None),
        (cw.origin, None),  # same origin but no token (e.g. a same-site sub-resource)
        (cw.origin, officer.csrf[:-1] + ("A" if officer.csrf[-1] != "A" else "B")),
        (FOREIGN, officer.csrf),  # the right token from the wrong place
    ]
    before = len(await records(cw, kind="console.request"))
    for origin, token in forged:
        status, data, _ = await cw.request("POST", terminate, cookie=officer.cookie,
                                           origin=origin, csrf=token,
                                           body={"reason": "forged"})
        assert (status, data["error"]) == (403, "csrf"), (origin, token, data)
        status, data, _ = await cw.request("POST", disable, cookie=cio.cookie, origin=origin,
                                           csrf=token if token != officer.csrf else cio.csrf)
        assert (status, data["error"]) == (403, "csrf"), (origin, token, data)
    # Nothing happened: the session is live, the account enabled, no terminate/disable record.
    assert session_id in await live_ids(cw, officer)
    status, users, _ = await cw.request("GET", "/api/v1/users", cookie=cio.cookie)
    assert status == 200
    assert not next(u for u in users["users"] if u["id"] == TEACHER)["disabled"]
    assert not [r for r in await records(cw, kind="session.terminate")
                if r["details"].get("reason") == "forged"]
    assert not await records(cw, kind="user.disable", user=TEACHER)
    refusals = (await records(cw, kind="console.request"))[before:]
    assert len(refusals) == 2 * len(forged)
    assert {r["details"]["code"] for r in refusals} == {"foreign-origin", "no-origin",
                                                       "bad-csrf-token"}
    assert {r["actor"] for r in refusals} == {"sec.api", "cio2.kita"}
    # The same request from the console page (same origin + token) does go through: the
    # check above is not simply refusing everything.
    status, data, _ = await cw.request("POST", "/api/v1/users/t.minami/disable",
                                       cookie=cio.cookie, origin=cw.origin, csrf=cio.csrf)
    assert (status, data.get("error")) == (403, "forbidden")  # a CIO of kita-es: policy says no
    status, data, _ = await cw.request("POST", "/api/v1/users", cookie=cio.cookie,
                                       origin=cw.origin, csrf=cio.csrf,
                                       body={"id": "t.victim", "name": "犠牲 太郎",
                                             "school": "kita-es", "role": "teacher"})
    assert status == 201, data
    status, data, _ = await cw.request("POST", "/api/v1/users/t.victim/disable",
                                       cookie=cio.cookie, origin=cw.origin, csrf=cio.csrf)
    assert status == 200 and data["disabled"] is True


async def test_a_school_scoped_officer_sees_only_their_school_through_the_api(
    console_world: ConsoleWorld,
) -> None:
    cw = console_world
    session_id = cw.live_session()  # t.sato of kita-es
    board = await cw.sign_in("sec.api")
    # Not sec.minami: the browser test signs that one in through the form, and a TOTP code
    # used here a few seconds earlier would be refused there as reused.
    if "sec.minami.api" not in cw.operators:
        cw.operators["sec.minami.api"] = add_operator(cw.world, "sec.minami.api", "officer",
                                                      "minami-es")
    minami = await cw.sign_in("sec.minami.api")
    assert minami.info["school"] == "minami-es"
    assert session_id in await live_ids(cw, board)
    assert await live_ids(cw, minami) == []
    for query in ("", "?school=kita-es", "?user=t.sato", "?kind=session"):
        status, data, _ = await cw.request("GET", f"/api/v1/audit{query}", cookie=minami.cookie)
        assert status == 200, data
        assert {r["school"] for r in data["records"]} <= {"minami-es"}, query
    status, data, _ = await cw.request("GET", "/api/v1/audit?kind=user.add",
                                       cookie=minami.cookie)
    assert "t.minami" in [r["subject"] for r in data["records"]]
    assert [r for r in await records(cw, school="kita-es") if r["kind"] == "session.start"]
    status, body, _ = await cw.request("GET", "/api/v1/audit/export?format=jsonl",
                                       cookie=minami.cookie)
    assert status == 200
    assert {parse_record(line).school for line in body.splitlines()} == {"minami-es"}
    # Nor can they act on another school's session, however well-formed the request.
    status, data, _ = await cw.request("POST", f"/api/v1/sessions/{session_id}/terminate",
                                       cookie=minami.cookie, origin=cw.origin,
                                       csrf=minami.csrf, body={"reason": "not mine"})
    assert status == 403 and data["error"] == "forbidden"
    assert session_id in await live_ids(cw, board)


async def test_audit_export_streams_csv_and_json_lines(console_world: ConsoleWorld) -> None:
    cw = console_world
    me = await cw.sign_in("sec.api")
    shown = await records(cw, kind="user")
    status, body, r = await cw.request("GET", "/api/v1/audit/export?format=jsonl&kind=user",
                                       cookie=me.cookie)
    assert status == 200 and r.content_type == "application/x-ndjson"
    assert "attachment" in r.headers["Content-Disposition"]
    lines = [parse_record(line) for line in body.splitlines()]
    assert [x.hash for x in lines] == [x["hash"] for x in shown]
    status, body, r = await cw.request("GET", "/api/v1/audit/export?format=csv&kind=user",
                                       cookie=me.cookie)
    assert status == 200 and r.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    assert [x["hash"] for x in rows] == [x["hash"] for x in shown]
    assert {x["kind"] for x in rows} <= {"user.add", "user.disable", "user.set_password",
                                        "user.import", "user.enroll_totp"}
    status, _, _ = await cw.request("GET", "/api/v1/audit/export?format=xml",
                                       cookie=me.cookie)
    assert status == 400
    exports = await records(cw, kind="export.audit")
    assert exports[-2]["actor"] == "sec.api" and exports[-1]["details"]["format"] == "csv"


async def test_audit_verify_reports_the_last_checkpoint(console_world: ConsoleWorld) -> None:
    cw = console_world
    me = await cw.sign_in("sec.api")
    status, data, _ = await cw.request("GET", "/api/v1/audit/verify", cookie=me.cookie)
    assert status == 200, data
    assert data["ok"] is True and data["records"] > 0
    cp = data["last_checkpoint"]
    assert cp is None or (isinstance(cp["seq"], int) and "T" in cp["time"])


async def test_sign_out_ends_the_session(console_world: ConsoleWorld) -> None:
    cw = console_world
    me = await cw.sign_in("sec.out")
    status, data, _ = await cw.request("DELETE", "/console/session", cookie=me.cookie,
                                       origin=FOREIGN, csrf=me.csrf)
    assert status == 403  # sign-out is state-changing too
    status, data, r = await cw.request("DELETE", "/console/session", cookie=me.cookie,
                                       origin=cw.origin, csrf=me.csrf)
    assert status == 200, data
    assert r.cookies["__Host-staffroom_console"].value == ""
    status, data, _ = await cw.request("GET", "/api/v1/me", cookie=me.cookie)
    assert (status, data["error"]) == (401, "no-session")
    status, data, _ = await cw.request("GET", "/console/session", cookie=me.cookie)
    assert (status, data["user"]) == (200, None)  # the page shows the sign-in form


async def test_a_teacher_is_refused_at_sign_in_like_a_wrong_password(
        console_world: ConsoleWorld) -> None:
    cw = console_world
    answers = []
    for password in ("teacher-password-1", "wrong-password-1"):
        status, data, r = await cw.request(
            "POST", "/console/session", origin=cw.origin,
            body={"user": TEACHER, "password": password, "totp": "123456"})
        assert "Set-Cookie" not in r.headers
        answers.append((status, data))
    # The right teacher password earns exactly the answer a wrong one does: no oracle.
    assert answers[0] == answers[1] == (401, {"error": "bad-credentials",
                                              "message": "The user id, password or code is "
                                                         "wrong."})
    codes = [r["details"]["code"] for r in await records(cw, kind="operator.login", user=TEACHER)]
    assert codes[-2:] == ["not-an-operator", "not-an-operator"]  # the audit still knows
