"""Gateways on PostgreSQL, end to end with the real CLI: `staffroom init --db` makes the schema
and the first admin there; a second node runs on a copy of DATA_DIR and shares accounts and
operator sessions; a second init against the same database, and an unreachable database, are
refused with one sentence that never shows the password."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from gateway.store.postgres import PostgresStore
from tests.fixtures.gateway import (
    STAFFROOM,
    Gateway,
    Persona,
    free_port,
    init_gateway,
    start_gateway,
    stop_gateway,
)
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.slow


def health(gw: Gateway) -> dict[str, object]:
    ctx = ssl.create_default_context(cafile=str(gw.ca))
    with urllib.request.urlopen(f"{gw.url}/api/v1/health", context=ctx, timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def second_node(first: Gateway, root: Path) -> Gateway:
    """Node B: a copy of node A's DATA_DIR (CA, keys, config), listening on its own port."""
    data = root / "data"
    shutil.copytree(first.data, data, symlinks=True)
    port = free_port()
    config = json.loads((data / "gateway.json").read_text())
    config["listen"] = f"127.0.0.1:{port}"
    (data / "gateway.json").write_text(json.dumps(config))
    return Gateway(data=data, url=f"https://127.0.0.1:{port}", ca=data / "ca" / "ca.pem",
                   port=port, admin_password=first.admin_password, totp_uri=first.totp_uri)


def test_init_on_postgres_and_two_nodes_share_accounts_and_sessions(
        tmp_path: Path, pg_dsn: str, postgres_server: PostgresServer) -> None:
    a = init_gateway(tmp_path / "a", free_port(), db=pg_dsn)
    config = a.data / "gateway.json"
    assert json.loads(config.read_text())["database"] == pg_dsn
    assert config.stat().st_mode & 0o777 == 0o600  # it holds the database's password
    assert not (a.data / "state.db").exists()

    again = subprocess.run([STAFFROOM, "init", str(tmp_path / "b-init"), "--hostname",
                            "localhost", "--db", pg_dsn], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode != 0
    assert "already holds a Staffroom installation" in again.stderr
    assert "copy of the first node's DATA_DIR" in again.stderr
    assert postgres_server.password not in again.stderr + again.stdout
    assert not (tmp_path / "b-init").exists()

    b = second_node(a, tmp_path / "b")
    start_gateway(a, node="node-a")
    try:
        start_gateway(b, node="node-b")
        assert health(a)["node"] == "node-a" and health(b)["node"] == "node-b"
        assert a.log is not None and "as node node-a" in a.log.read_text()

        admin = Persona(tmp_path / "home-admin")
        a.login(admin, "admin", a.admin_password, a.totp_uri)
        new_pw, old_pw = tmp_path / "new.pw", tmp_path / "old.pw"
        new_pw.write_text("admin-password-2026\n")
        old_pw.write_text(a.admin_password + "\n")
        admin.run("users", "set-password", "admin", "--password-file", str(new_pw),
                  "--current-password-file", str(old_pw))
        teacher_pw = tmp_path / "t.pw"
        teacher_pw.write_text("teacher-password-1\n")
        admin.run("users", "add", "t.sato", "--name", "佐藤 花子", "--school", "kita-es",
                  "--role", "teacher", "--password-file", str(teacher_pw))

        # The bearer token node A issued is honoured by node B (one operator_sessions table).
        via_b = Persona(tmp_path / "home-admin-b")
        via_b.home.mkdir(mode=0o700)
        saved = json.loads((admin.home / "session.json").read_text())
        (via_b.home / "session.json").write_text(json.dumps({**saved, "gateway": b.url}))
        listed = via_b.run("users", "list", "--json").json()
        assert {u["id"] for u in listed} == {"admin", "t.sato"}  # type: ignore[union-attr]

        # Logged out through B: A refuses the token at once (no cache on either node).
        via_b.run("logout")
        refused = admin.run("users", "list", check=False)
        assert refused.code != 0 and "You are not logged in" in refused.err, refused

        store = PostgresStore(pg_dsn)  # what the nodes wrote is in PostgreSQL
        try:
            user = store.get_user("t.sato")
            assert user is not None and user.school == "kita-es"
        finally:
            store.close()
    finally:
        stop_gateway(b)
        stop_gateway(a)


def test_an_unreachable_database_is_one_sentence_without_the_password(
        tmp_path: Path, pg_dsn: str) -> None:
    secret = "Very-Secret-Pass-42"
    dead = f"postgresql://staffroom:{secret}@127.0.0.1:{free_port()}/state"
    init = subprocess.run([STAFFROOM, "init", str(tmp_path / "x"), "--hostname", "localhost",
                           "--db", dead], capture_output=True, text=True, timeout=60)
    assert init.returncode != 0
    assert init.stderr.strip().splitlines()[-1].startswith(
        "staffroom: The state database at 127.0.0.1:")
    assert "cannot be reached" in init.stderr
    assert secret not in init.stderr + init.stdout
    assert not (tmp_path / "x").exists()  # refused before anything was created

    gw = init_gateway(tmp_path, free_port(), db=pg_dsn)
    config = json.loads((gw.data / "gateway.json").read_text())
    (gw.data / "gateway.json").write_text(json.dumps({**config, "database": dead}))
    run = subprocess.run([STAFFROOM, "gateway", "--data", str(gw.data), "--node", "n1"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("staffroom: The state database at 127.0.0.1:") and \
        "cannot be reached" in last, run.stderr
    assert secret not in run.stderr + run.stdout
