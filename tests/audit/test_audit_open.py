"""gateway/audit/open.py: gateway.json's "database" picks the file log or the PostgreSQL trail,
for init, the gateway, verify and search alike."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from gateway.audit.keys import generate_signing_key
from gateway.audit.kinds import GatewayStarted, to_event
from gateway.audit.log import AuditLog, AuditLogError
from gateway.audit.open import (
    create_trail,
    iter_audit_records,
    open_audit,
    trail_dsn,
    verify_audit,
)
from gateway.audit.pgtrail import PgTrail
from gateway.datadir import DataDir
from gateway.setup import InitError, init_data_dir


def set_database(root: Path, url: str | None) -> None:
    path = root / "gateway.json"
    settings = json.loads(path.read_text())
    settings["database"] = url
    path.write_text(json.dumps(settings))


def test_without_a_database_server_the_file_log_is_used(tmp_path: Path) -> None:
    root = tmp_path / "data"
    init_data_dir(root, ["localhost"])
    data = DataDir(root)
    for url in (None, f"sqlite:///{tmp_path}/state.db"):
        set_database(root, url)
        config = data.read_config()
        assert trail_dsn(config) is None
        audit = open_audit(data, config, "gw-a")
        try:
            assert isinstance(audit, AuditLog)
            audit.append(to_event(GatewayStarted("127.0.0.1:8443")))
            kinds = [r.kind for r in iter_audit_records(audit, data, kind="gateway")]
            assert kinds[-1] == "gateway.start"
        finally:
            audit.close()
        result = verify_audit(root)
        assert result.ok and result.nodes == ()


def test_init_with_a_database_makes_the_trail_there(tmp_path: Path, pg_dsn: str) -> None:
    root = tmp_path / "data"
    init_data_dir(root, ["localhost"], database=pg_dsn)
    data = DataDir(root)
    config = data.read_config()
    assert config.database == pg_dsn and trail_dsn(config) == pg_dsn
    assert not (root / "audit" / "audit.log").exists()  # no second, file-based trail
    with psycopg.connect(pg_dsn) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM audit_records ORDER BY seq")]
    assert kinds[:3] == ["audit.created", "gateway.init", "user.add"]
    audit = open_audit(data, config, "gw-a")
    try:
        assert isinstance(audit, PgTrail)
        record = audit.append(to_event(GatewayStarted("127.0.0.1:8443")))
        assert record.details["node"] == "gw-a"
        found = list(iter_audit_records(audit, data, kind="gateway.start"))
        assert [r.hash for r in found] == [record.hash]
    finally:
        audit.close()
    result = verify_audit(root)
    assert result.ok, result.message
    assert "gw-a" in result.nodes and len(result.nodes) == 2  # init's host and gw-a


def test_init_refuses_a_database_that_already_holds_a_trail(tmp_path: Path,
                                                            pg_dsn: str) -> None:
    init_data_dir(tmp_path / "one", ["localhost"], database=pg_dsn)
    # init refuses before creating anything (the state database has the first admin) ...
    with pytest.raises(InitError, match="already holds a Staffroom installation"):
        init_data_dir(tmp_path / "two", ["localhost"], database=pg_dsn)
    assert not (tmp_path / "two").exists()
    # ... and the trail itself never starts a second chain in a database that has one.
    with pytest.raises(AuditLogError, match="already an audit trail"):
        create_trail(pg_dsn, generate_signing_key(), "node-b")
