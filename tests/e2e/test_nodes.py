"""Issue 12 (part D) end to end: two gateway nodes (`staffroom gateway --node a/--node b` on
copies of one DATA_DIR sharing one state database and one recordings location) behind Debian's
HAProxy in TCP mode, with real agents, SoftHSM2 keys and Xvnc desktops:

* a teacher connects through HAProxy (the login's TLS binding holds through the pass-through);
  an officer signed in on either node sees the session with the node that holds it;
* `keys revoke` through the node that does not hold the session ends it within 2 s (measured);
* `sessions terminate` through the other node ends it there, audited once on each side;
* a node drained through HAProxy's admin socket gets no new sessions while the other serves;
* HAProxy's health check marks a stopped node down and the other node takes the sessions.

`shared_db` is the one place that picks the shared database: PostgreSQL joins as a param.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest

from gateway.datadir import DataDir
from gateway.store.desktops import DesktopRecord
from gateway.store.open import open_store
from gateway.workspace.sandbox import start_time
from tests.e2e.test_gateway_restart import xvnc_of
from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.desktops import NO_XIM
from tests.fixtures.gateway import (
    STAFFROOM,
    Gateway,
    Persona,
    World,
    free_port,
    init_gateway,
    stop_gateway,
    wait_for_tls,
)
from tests.fixtures.haproxy import BACKEND, HAProxy, start_haproxy, stop_haproxy

pytestmark = pytest.mark.slow

SESSION = f'[match]\nroles = ["teacher"]\n\n[workspace]\nsession_command = "xterm {NO_XIM}"\n'
GRACE = 6  # seconds: the reconnect grace of t.moved, whose session moves to the other node
SHORT_GRACE = f'[match]\nusers = ["t.moved"]\n\n[session]\nreconnect_grace = "{GRACE}s"\n'


@dataclass
class Cluster:
    world: World  # world.gateway: the nodes as teachers reach them (HAProxy's address)
    nodes: dict[str, Gateway]
    admins: dict[str, Persona]  # board operators: the administrator on a, an officer on b
    proxy: HAProxy
    freshclam: Path
    kind: str  # the shared database: "sqlite" or "postgres"

    def sessions(self, via: str) -> list[dict[str, object]]:
        return self.admins[via].run("sessions", "list", "--json").json()  # type: ignore

    def session_of(self, user: str, timeout: float = 40) -> dict[str, object]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            rows = [s for s in self.sessions("a") if s["user"] == user]
            if rows:
                return rows[0]
            time.sleep(0.3)
        raise AssertionError(f"no live session of {user}")

    def audit(self, node: str, kind: str, user: str) -> list[dict[str, object]]:
        """The records `node` wrote: its own file log (SQLite), or the shared PostgreSQL
        trail's records naming it (read through that node)."""
        records = self.admins[node].run("audit", "export", "--json", "--user", user, "--kind",
                                        kind).json()
        return [r for r in records  # type: ignore[union-attr]
                if r["details"].get("node", node) == node]  # type: ignore[index]


def shared_db(kind: str, root: Path, data: Path) -> str:
    """The SQLite file both nodes share, holding what `staffroom init` wrote into `data`."""
    assert kind == "sqlite", kind  # PostgreSQL: `staffroom init --db` made it (init_node)
    shared = root / "shared" / "state.db"
    shared.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(data / "state.db", shared)
    for suffix in ("-wal", "-shm"):
        (data / f"state.db{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{shared}"


def init_node(kind: str, request: pytest.FixtureRequest, root: Path) -> Gateway:
    """Node a's DATA_DIR on a shared database of `kind`: a SQLite file moved out of DATA_DIR,
    or `staffroom init --db` on a fresh database of the session's PostgreSQL."""
    if kind == "postgres":
        server = request.getfixturevalue("postgres_server")
        a = init_gateway(root / "a", free_port(), db=server.create_database())
    else:
        a = init_gateway(root / "a", free_port())
    config = json.loads((a.data / "gateway.json").read_text())
    if kind == "sqlite":
        config["database"] = shared_db(kind, root, a.data)
    config["recordings_dir"] = str(root / "shared" / "recordings")
    (a.data / "gateway.json").write_text(json.dumps(config, indent=2))
    return a


def start_node(gw: Gateway, node: str) -> None:
    gw.log = gw.data.parent / f"gateway-{node}.log"
    with gw.log.open("wb") as log:
        gw.process = subprocess.Popen(
            [STAFFROOM, "gateway", "--data", str(gw.data), "--node", node, "--listen",
             f"127.0.0.1:{gw.port}"], stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for_tls(gw.port, gw.ca)
    except TimeoutError:
        stop_gateway(gw)
        raise AssertionError(gw.log.read_text()) from None


def sign_in(gw: Gateway, who: Persona, user: str, password: str, totp_uri: str) -> Persona:
    gw.login(who, user, password, totp_uri)
    return who


# What HAProxy does (drain, health checks) does not depend on the database: PostgreSQL only.
HAPROXY_ONLY = pytest.mark.parametrize("cluster", ["postgres"], indirect=True)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    with running_cluster(request, request.param) as running:
        yield running


@contextmanager
def running_cluster(request: pytest.FixtureRequest, kind: str) -> Iterator[Cluster]:
    """Nodes a and b on one `kind` ("sqlite" or "postgres") database behind HAProxy, with the
    administrator signed in on a and an officer and a CIO on b; all stopped at the end."""
    # Desktops run as an unprivileged account that must reach DATA_DIR/lockdown/.
    root = Path(tempfile.mkdtemp(prefix="staffroom-nodes-"))
    root.chmod(0o711)
    a = init_node(kind, request, root)
    (a.data / "policies" / "50-test.toml").write_text(SESSION)
    (a.data / "policies" / "60-grace.toml").write_text(SHORT_GRACE)
    (root / "b").mkdir()
    shutil.copytree(a.data, root / "b" / "data", symlinks=True)
    b = replace(a, data=root / "b" / "data", port=free_port(), url="")
    b.url = f"https://127.0.0.1:{b.port}"
    nodes = {"a": a, "b": b}
    proxy = None
    try:
        for name, gw in nodes.items():
            start_node(gw, name)
        proxy = start_haproxy(root / "haproxy", {n: g.port for n, g in nodes.items()}, a.ca,
                              free_port())
        for name in nodes:
            proxy.wait_status(name, "UP")
        admin = Persona(root / "home-admin-a")
        a.login(admin, "admin", a.admin_password, a.totp_uri)
        new, old = root / "admin-new.pw", root / "admin-one-time.pw"
        new.write_text("admin-password-2026\n")
        old.write_text(a.admin_password + "\n")
        admin.run("users", "set-password", "admin", "--password-file", str(new),
                  "--current-password-file", str(old))
        pw = root / "officer.pw"
        pw.write_text("officer-password-2026\n")
        info = admin.run("users", "add", "officer.b", "--name", "監査 担当", "--role",
                         "officer", "--password-file", str(pw), "--json").json()
        officer = sign_in(b, Persona(root / "home-officer"), "officer.b",
                          "officer-password-2026", info["totp_uri"])  # type: ignore[index]
        pw = root / "cio.pw"
        pw.write_text("cio-password-2026\n")
        info = admin.run("users", "add", "cio.kita", "--name", "北 CIO", "--school", "kita-es",
                         "--role", "cio", "--password-file", str(pw), "--json").json()
        cio = sign_in(b, Persona(root / "home-cio"), "cio.kita", "cio-password-2026",
                      info["totp_uri"])  # type: ignore[index]
        front = replace(a, url=proxy.url, port=proxy.port)
        world = World(front, admin, cio, root)
        yield Cluster(world, nodes, {"a": admin, "b": officer}, proxy,
                      freshclam_conf(root, 0.5), kind)
    finally:
        if proxy is not None:
            stop_haproxy(proxy)
        for gw in nodes.values():
            stop_gateway(gw)
        shutil.rmtree(root, ignore_errors=True)


def connect(cluster: Cluster, user: str) -> tuple[Agent, dict[str, object]]:
    if user not in cluster.world.teachers:
        cluster.world.add_teacher(user)
    agent = Agent(cluster.world, user, cluster.freshclam, gateway=cluster.proxy.url)
    agent.viewer_url()
    return agent, cluster.session_of(user)


def connect_on(cluster: Cluster, user: str, node: str) -> tuple[Agent, dict[str, object]]:
    """Connect through HAProxy while the other node is drained, so the session lands on `node`."""
    cluster.proxy.admin(f"set server {BACKEND}/{other(node)} state drain")
    try:
        agent, session = connect(cluster, user)
    finally:
        cluster.proxy.admin(f"set server {BACKEND}/{other(node)} state ready")
    assert session["node"] == node, session
    return agent, session


def between(first: dict[str, object], then: dict[str, object]) -> float:
    """Seconds from one audit record to another (two nodes' logs, one machine's clock)."""
    def at(r: dict[str, object]) -> datetime:
        return datetime.fromisoformat(str(r["time"]).replace("Z", "+00:00"))
    return (at(then) - at(first)).total_seconds()


def other(node: object) -> str:
    return "b" if node == "a" else "a"


def test_a_session_through_haproxy_is_seen_from_both_nodes(cluster: Cluster) -> None:
    agent, session = connect(cluster, "t.one")
    try:
        assert session["node"] in ("a", "b")
        for via in ("a", "b"):
            rows = [s for s in cluster.sessions(via) if s["id"] == session["id"]]
            assert [(r["user"], r["node"], r["school"]) for r in rows] == [
                ("t.one", session["node"], "kita-es")]
        text = cluster.admins[other(session["node"])].run("sessions", "list").out
        assert f" {session['node']} " in text.splitlines()[-1]
        states = cluster.proxy.states()
        assert int(states[str(session["node"])]["scur"]) >= 1  # the tunnel runs through it
    finally:
        agent.stop()


def test_a_key_revoked_through_one_node_ends_the_session_on_the_other_within_2s(
        cluster: Cluster) -> None:
    # The CIO is signed in on node b: the session is made to land on node a.
    agent, _ = connect_on(cluster, "t.revoke", "a")
    try:
        started = time.monotonic()
        cluster.world.cio.run("keys", "revoke", "--user", "t.revoke", "--reason",
                              "keyCompromise")
        returned = time.monotonic()
        agent.wait_err("Your key was revoked", timeout=10)
        ended = time.monotonic()
        print(f"revoke via b -> session on a ended: {ended - started:.2f} s after the command "
              f"started, {ended - returned:.2f} s after it returned")
        assert ended - returned < 2.0
        revoked = cluster.audit("b", "key.revoke", "t.revoke")
        ends = cluster.audit("a", "session.end", "t.revoke")
        assert len(revoked) == 1 and len(ends) == 1  # each fact once, where it happened
        took = between(revoked[0], ends[0])
        print(f"audited: key revoked on b -> session ended on a: {took:.3f} s")
        assert took < 2.0
        assert cluster.audit("a", "key.revoke", "t.revoke") == []
        assert [s for s in cluster.sessions("b") if s["user"] == "t.revoke"] == []
    finally:
        agent.stop()


def test_an_account_disabled_through_one_node_ends_its_session_on_the_other(
        cluster: Cluster) -> None:
    agent, _ = connect_on(cluster, "t.disable", "a")
    try:
        cluster.world.cio.run("users", "disable", "t.disable")  # through node b
        agent.wait_err("Your account was disabled", timeout=10)
        disabled = cluster.audit("b", "user.disable", "t.disable")
        ends = cluster.audit("a", "session.end", "t.disable")
        assert len(disabled) == 1 and len(ends) == 1
        took = between(disabled[0], ends[0])
        print(f"audited: account disabled on b -> session ended on a: {took:.3f} s")
        assert -1.0 < took < 2.0  # the session ends before the disable is written
    finally:
        agent.stop()


def test_terminate_through_the_other_node(cluster: Cluster) -> None:
    agent, session = connect(cluster, "t.term")
    holder = str(session["node"])
    via = other(holder)
    try:
        started = time.monotonic()
        cluster.admins[via].run("sessions", "terminate", str(session["id"]), "--reason",
                                "面談の時間です")
        returned = time.monotonic()
        agent.wait_err("面談の時間です", timeout=10)
        ended = time.monotonic()
        print(f"terminate via {via} -> session on {holder} ended: {ended - started:.2f} s "
              f"after the command started, {ended - returned:.2f} s after it returned")
        asked = cluster.audit(via, "session.terminate", "t.term")
        assert len(asked) == 1
        assert cluster.audit(holder, "session.terminate", "t.term") == []
        ends = cluster.audit(holder, "session.end", "t.term")
        assert len(ends) == 1 and "面談の時間です" in str(ends[0]["details"])
        took = between(asked[0], ends[0])
        print(f"audited: terminate on {via} -> session ended on {holder}: {took:.3f} s")
        assert took < 2.0
        assert cluster.audit(via, "session.end", "t.term") == []
        gone = cluster.admins[via].run("sessions", "terminate", str(session["id"]),
                                       "--reason", "again", check=False)
        assert gone.code != 0 and "no live session" in gone.err
    finally:
        agent.stop()


@HAPROXY_ONLY
def test_a_drained_node_gets_no_new_sessions(cluster: Cluster) -> None:
    assert cluster.proxy.admin(f"set server {BACKEND}/a state drain").strip() == ""
    cluster.proxy.wait_status("a", "DRAIN")
    agents = []
    try:
        for user in ("t.d1", "t.d2", "t.d3"):
            agent, session = connect(cluster, user)
            agents.append(agent)
            assert session["node"] == "b", session
    finally:
        for agent in agents:
            agent.stop()
        cluster.proxy.admin(f"set server {BACKEND}/a state ready")
    cluster.proxy.wait_status("a", "UP")


def desktop_of(cluster: Cluster, user: str) -> DesktopRecord | None:
    """The user's row in the shared desktops registry (either backend)."""
    data = DataDir(cluster.nodes["a"].data)
    store = open_store(data, data.read_config())
    try:
        return store.get_desktop(user)
    finally:
        store.close()


def wait_for(what: str, check: Callable[[], object], timeout: float = 20) -> object:
    end = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < end, f"not {what} in {timeout} s"
        time.sleep(0.2)
    return got


def test_a_live_node_lets_go_of_a_session_the_other_node_resumed(cluster: Cluster) -> None:
    """Issue 12: HAProxy drops the teacher's connection to node a (a lives on, holding the
    session detached in its grace) and the agent's resume lands on b. a lets go cleanly: no
    second session.end, b's registry row and the desktop b now uses are left alone."""
    agent, session = connect_on(cluster, "t.moved", "a")
    row = desktop_of(cluster, "t.moved")
    assert row is not None and row.node == "a"
    xvnc, _ = xvnc_of(row)
    xvnc_start = start_time(xvnc)
    try:
        cluster.proxy.admin(f"set server {BACKEND}/a state maint")
        try:
            cluster.proxy.admin(f"shutdown sessions server {BACKEND}/a")
            agent.wait_err("Resumed the same session.", 40)
        finally:
            cluster.proxy.admin(f"set server {BACKEND}/a state ready")
        moved = wait_for("listed on b", lambda: [
            s for s in cluster.sessions("a") if s["user"] == "t.moved" and s["node"] == "b"])
        assert [s["id"] for s in moved] == [session["id"]]  # type: ignore[union-attr]
        time.sleep(GRACE + 2)  # a's grace would have run out by now
        for via in ("a", "b"):
            rows = [(s["id"], s["node"], s["attached"]) for s in cluster.sessions(via)
                    if s["user"] == "t.moved"]
            assert rows == [(session["id"], "b", True)], rows
        assert cluster.audit("a", "session.end", "t.moved") == []
        recovered = cluster.audit("b", "session.recover", "t.moved")
        assert [r["details"]["from_node"] for r in recovered] == ["a"]  # type: ignore[index]
        taken = desktop_of(cluster, "t.moved")
        assert taken is not None and taken.node == "b" and taken.server_pid == row.server_pid
        assert start_time(xvnc) == xvnc_start, "node a ended the desktop b uses"
        assert agent.proc.poll() is None
        log = cluster.nodes["a"].log
        assert log is not None and "continues on node b: let go here" in log.read_text()
    finally:
        agent.stop()
    ends = wait_for("ended on b", lambda: cluster.audit("b", "session.end", "t.moved"))
    assert len(ends) == 1  # type: ignore[arg-type]
    assert cluster.audit("a", "session.end", "t.moved") == []


@HAPROXY_ONLY
def test_health_check_marks_a_stopped_node_down(cluster: Cluster) -> None:
    cluster.world.add_teacher("t.after")  # (the CIO is signed in on b)
    b = cluster.nodes["b"].process
    assert b is not None
    b.terminate()
    took = cluster.proxy.wait_status("b", "DOWN", timeout=15)
    print(f"node b marked DOWN {took:.2f} s after it was told to stop")
    stop_gateway(cluster.nodes["b"])
    agent, session = connect(cluster, "t.after")
    try:
        assert session["node"] == "a"
    finally:
        agent.stop()
