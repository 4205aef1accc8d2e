"""Issue 12, part B end to end: gateway nodes on one PostgreSQL database write one audit trail.

Two real gateway nodes (`staffroom gateway --node`), each with its own copy of DATA_DIR, take
admin actions; `staffroom audit verify` checks the whole trail and the audit search of either
node shows every node's records with the node's name. With the database stopped, a login is
refused with one sentence and the gateway stays up; once it is back, the same chain goes on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from gateway.audit.keys import load_signing_key
from gateway.audit.open import create_trail
from tests.audit.pg_helpers import pg_ctl, postgres_store_built, start_node
from tests.faults.held import health
from tests.fixtures.gateway import (
    STAFFROOM,
    Gateway,
    Persona,
    Result,
    free_port,
    init_gateway,
    stop_gateway,
)
from tests.fixtures.postgres import PostgresServer, start_postgres, stop_postgres

pytestmark = pytest.mark.slow

NEW_PASSWORD = "admin-password-2026"


def init_with_trail(tmp: Path, dsn: str) -> Gateway:
    """A DATA_DIR whose gateway.json names `dsn`: `staffroom init --db` where the tree has it,
    else init as today plus the trail made by create_trail and "database" set by hand."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    usage = subprocess.run([STAFFROOM, "init", "--help"], capture_output=True, text=True).stdout
    if "--db" in usage:
        data = tmp / "data"
        p = subprocess.run([STAFFROOM, "init", str(data), "--hostname", "localhost",
                            "--hostname", "127.0.0.1", "--listen", f"127.0.0.1:{port}",
                            "--json", "--db", dsn], capture_output=True, text=True, check=True,
                           timeout=60)
        info = json.loads(p.stdout)
        gw = Gateway(data=data, url=f"https://127.0.0.1:{port}", ca=Path(info["ca_cert"]),
                     port=port, admin_password=info["admin_password"],
                     totp_uri=info["totp_uri"])
    else:
        gw = init_gateway(tmp, port)
        create_trail(dsn, load_signing_key(gw.data / "audit-signing.key"), "init")
    settings = json.loads((gw.data / "gateway.json").read_text())
    settings["database"] = dsn
    (gw.data / "gateway.json").write_text(json.dumps(settings, indent=2) + "\n")
    return gw


def copy_node(gw: Gateway, tmp: Path) -> Gateway:
    """Another node: a copy of DATA_DIR (CA, keys, config) listening on its own port."""
    port = free_port()
    data = tmp / "data"
    shutil.copytree(gw.data, data, symlinks=True)
    settings = json.loads((data / "gateway.json").read_text())
    settings["listen"] = f"127.0.0.1:{port}"
    (data / "gateway.json").write_text(json.dumps(settings, indent=2) + "\n")
    return Gateway(data=data, url=f"https://127.0.0.1:{port}", ca=gw.ca, port=port,
                   admin_password=gw.admin_password, totp_uri=gw.totp_uri)


def admin_of(gw: Gateway, home: Path) -> Persona:
    """The board admin logged in to `gw`, the one-time password replaced."""
    who = Persona(home)
    gw.login(who, "admin", gw.admin_password, gw.totp_uri)
    (home / "new.pw").write_text(NEW_PASSWORD + "\n")
    (home / "old.pw").write_text(gw.admin_password + "\n")
    who.run("users", "set-password", "admin", "--password-file", str(home / "new.pw"),
            "--current-password-file", str(home / "old.pw"))
    return who


def _shared_state() -> bool:
    return postgres_store_built()


def login(gw: Gateway, who: Persona, password: str, check: bool = True) -> Result:
    """`staffroom login` with the next TOTP code (a code is single use, on every node)."""
    who.home.mkdir(parents=True, exist_ok=True)
    (who.home / "admin.pw").write_text(password + "\n")
    code = pyotp.parse_uri(gw.totp_uri).at(time.time() + 30)
    return who.run("login", "--gateway", gw.url, "--ca", str(gw.ca), "--user", "admin",
                   "--password-file", str(who.home / "admin.pw"), "--totp", code, check=check)


def verify(gw: Gateway) -> dict[str, object]:
    p = subprocess.run([STAFFROOM, "audit", "verify", "--data", str(gw.data), "--json"],
                       capture_output=True, text=True, timeout=60)
    result = json.loads(p.stdout)
    assert p.returncode == (0 if result["ok"] else 3), p.stderr
    return result  # type: ignore[no-any-return]


def test_two_nodes_write_one_trail_that_verifies_and_is_searchable(
        pg_dsn: str, tmp_path: Path) -> None:
    a = init_with_trail(tmp_path / "a", pg_dsn)
    start_node(a, "node-a")
    try:
        admin_a = admin_of(a, tmp_path / "home-a")
    finally:
        stop_gateway(a)
    b = copy_node(a, tmp_path / "b")
    start_node(a, "node-a")
    start_node(b, "node-b")
    try:
        admin_b = Persona(tmp_path / "home-b")
        login(b, admin_b, NEW_PASSWORD)
        admin_b.run("users", "add", "officer1", "--name", "Officer One", "--role", "officer")
        if not _shared_state():  # each node keeps its own state.db until 12a's Store
            admin_a.run("users", "add", "officer1", "--name", "Officer One", "--role", "officer")
        admin_a.run("users", "disable", "officer1")  # node A's own admin action

        result = verify(a)
        assert result["ok"], result
        assert {"node-a", "node-b"} <= set(result["nodes"])  # type: ignore[arg-type]
        assert "node-a" in str(result["message"]) and "node-b" in str(result["message"])

        # Either node's audit search shows every node's records, each with its node.
        for who in (admin_a, admin_b):
            records = json.loads(who.run("audit", "tail", "-n", "200", "--json").out)
            added = [r for r in records if r["kind"] == "user.add" and r["subject"] == "officer1"]
            assert added and added[0]["node"] == "node-b", records
            disabled = [r for r in records if r["kind"] == "user.disable"]
            assert [r["node"] for r in disabled] == ["node-a"], records
            logins_b = [r for r in records if r["node"] == "node-b" and r["actor"] == "admin"]
            logins_a = [r for r in records if r["node"] == "node-a" and r["actor"] == "admin"]
            assert logins_a and logins_b
            seqs = [r["seq"] for r in records]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        table = admin_a.run("audit", "tail", "-n", "20").out
        assert "NODE" in table.splitlines()[0] and "node-b" in table
        export = admin_a.run("audit", "export", "--user", "officer1").json()
        assert {r["node"] for r in export} >= {"node-b"}  # type: ignore[union-attr]
    finally:
        stop_gateway(a)
        stop_gateway(b)
    final = verify(b)
    assert final["ok"], final


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own: the test stops and starts it."""
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)


def test_database_down_refuses_a_login_in_one_sentence_and_the_chain_goes_on(
        own_postgres: PostgresServer, tmp_path: Path) -> None:
    dsn = own_postgres.create_database()
    gw = init_with_trail(tmp_path, dsn)
    start_node(gw, "node-a")
    try:
        admin = admin_of(gw, tmp_path / "home")
        pg_ctl(own_postgres, "stop")
        again = Persona(tmp_path / "home-2")
        refused = login(gw, again, NEW_PASSWORD, check=False)
        assert refused.code != 0
        lines = [line for line in refused.err.splitlines() if line.strip()]
        assert len(lines) == 1, refused.err
        assert "so nothing was done" in lines[0] and "Traceback" not in refused.err
        assert "PostgreSQL" in lines[0] or "database" in lines[0], lines[0]
        assert own_postgres.password not in refused.err
        doc = health(gw.url, gw.ca)
        assert doc["status"] == "degraded"
        if not _shared_state():  # only the trail is in PostgreSQL: health names it
            assert "PostgreSQL" in doc["problems"]["audit"], doc  # type: ignore[index]
        print(lines[0])
        assert gw.process is not None and gw.process.poll() is None  # still serving
        pg_ctl(own_postgres, "start")
        # The next audited action goes through and continues the same chain.
        admin.run("users", "add", "officer2", "--name", "Officer Two", "--role", "officer")
    finally:
        stop_gateway(gw)
    result = verify(gw)
    assert result["ok"], result
    assert "node-a" in result["nodes"]  # type: ignore[operator]


async def test_the_console_shows_the_node_of_each_record(pg_dsn: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    from tests.console.test_console_browser import CHROMIUM_ARGS

    gw = init_with_trail(tmp_path, pg_dsn)
    start_node(gw, "node-a")
    try:
        admin_of(gw, tmp_path / "home")  # a login and a password change on node-a
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                               args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(ignore_https_errors=True, locale="ja-JP")
                page = await context.new_page()
                await page.goto(f"{gw.url}/console")
                await page.wait_for_selector("#signin:not([hidden])")
                await page.fill("input[name=user]", "admin")
                await page.fill("input[name=password]", NEW_PASSWORD)
                await page.fill("input[name=totp]",
                                pyotp.parse_uri(gw.totp_uri).at(time.time() + 30))
                await page.click("#signin button[type=submit]")
                await page.click("#nav a[data-view=audit]")
                changed = "#audit-table tbody tr[data-kind^='user.']"  # the password change
                await page.wait_for_selector(changed)
                headers = await page.locator("#audit-table thead th").all_text_contents()
                assert "ノード" in headers
                row = page.locator(changed).first
                assert await row.locator("td.node").text_content() == "node-a"
                nodes = set(await page.locator("#audit-table td.node").all_text_contents())
                assert "node-a" in nodes
                # The node is its own column, not repeated among the details.
                assert "node=" not in (await row.locator("td.details").text_content() or "")
                await page.wait_for_selector("#audit-verify[data-ok='true']")
            finally:
                await browser.close()
    finally:
        stop_gateway(gw)
