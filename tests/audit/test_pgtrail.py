"""The audit trail in PostgreSQL: one chain for every node, verified whole, tampering found.

Real PostgreSQL (tests/fixtures/postgres.py); the writers in the concurrency test are separate
processes with their own connections, as gateway nodes are.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import chain
from gateway.audit.events import KIND_CHECKPOINT, KIND_CREATED, AuditEvent
from gateway.audit.log import AuditLogError, AuditWriteFailed
from gateway.audit.open import create_trail
from gateway.audit.pgread import verify_trail
from gateway.audit.pgtrail import PgTrail
from tests.audit.pg_helpers import pg_ctl
from tests.fixtures.postgres import start_postgres, stop_postgres


def event(i: int, **fields: object) -> AuditEvent:
    return AuditEvent(kind="login", outcome="ok" if i % 3 else "denied", actor=f"teacher{i}",
                      school="north", source="192.0.2.7",
                      details={"method": "token", "attempt": i}, **fields)  # type: ignore[arg-type]


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def trail(pg_dsn: str, key: ec.EllipticCurvePrivateKey) -> PgTrail:
    create_trail(pg_dsn, key, "init")
    t = PgTrail(pg_dsn, key, "node-a", checkpoint_every=10)
    yield t
    t.close()


def sql(dsn: str, statement: str, *args: object) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement, args)


def test_append_verify_round_trip(trail: PgTrail, pg_dsn: str,
                                  key: ec.EllipticCurvePrivateKey) -> None:
    records = [trail.append(event(i)) for i in range(25)]
    assert [r.seq for r in records][:3] == [1, 2, 3]
    assert all(r.details["node"] == "node-a" for r in records)
    assert all(chain.hash_matches(r) for r in records)
    assert trail.last_seq >= records[-1].seq
    result = verify_trail(pg_dsn, key.public_key())
    assert result.ok, result.message
    # 25 events, record 0, and a checkpoint after every 10 records.
    assert result.records == 1 + 25 + 2
    assert result.nodes == ("init", "node-a")
    assert result.last_checkpoint is not None
    assert "node-a" in result.message
    stored = list(trail.records())
    assert stored[0].kind == KIND_CREATED and stored[0].details["node"] == "init"
    assert [r.seq for r in stored] == list(range(len(stored)))
    assert [r for r in stored if r.kind == "login"] == records


def test_search_filters_match_the_file_query(trail: PgTrail) -> None:
    trail.append(event(1))
    trail.append(AuditEvent(kind="session.start", outcome="ok", actor="t9", school="south"))
    trail.append(AuditEvent(kind="sessionx", outcome="ok", subject="t9", school="south"))
    assert [r.kind for r in trail.records(user="t9")] == ["session.start", "sessionx"]
    assert [r.kind for r in trail.records(kind="session")] == ["session.start"]
    assert [r.actor for r in trail.records(school="north")] == ["teacher1"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert list(trail.records(since=future)) == []
    assert len(list(trail.records(until=future, kind="login"))) == 1


def test_close_signs_a_checkpoint_and_a_reopen_continues(pg_dsn: str,
                                                         key: ec.EllipticCurvePrivateKey) -> None:
    create_trail(pg_dsn, key, "init")
    with PgTrail(pg_dsn, key, "a") as first:
        first.append(event(1))
    with PgTrail(pg_dsn, key, "b") as second:
        assert second.last_seq == 2  # the event and the closing checkpoint
        record = second.append(event(2))
    assert record.seq == 3
    with PgTrail(pg_dsn, key, "c") as third:
        last = list(third.records())[-1]
    assert last.kind == KIND_CHECKPOINT and last.details["node"] == "b"
    assert verify_trail(pg_dsn, key.public_key()).ok


def test_a_second_trail_is_refused(trail: PgTrail, pg_dsn: str,
                                   key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(AuditLogError, match="already an audit trail"):
        create_trail(pg_dsn, key, "init")


def test_opening_without_a_trail_or_with_another_key_is_refused(
        pg_dsn: str, key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(AuditLogError, match="holds no audit trail"):
        PgTrail(pg_dsn, key, "a")
    create_trail(pg_dsn, key, "init")
    with pytest.raises(AuditLogError, match="does not verify with this node's audit key"):
        PgTrail(pg_dsn, ec.generate_private_key(ec.SECP256R1()), "a")


def _writer(dsn: str, pem: bytes, node: str, count: int, start: object) -> None:
    from gateway.audit.keys import load_signing_key_bytes

    trail = PgTrail(dsn, load_signing_key_bytes(pem), node)
    start.wait()  # type: ignore[attr-defined]
    for i in range(count):
        trail.append(AuditEvent(kind="login", outcome="ok", actor=f"{node}-{i}",
                                details={"attempt": i}))
    trail.close()


def test_two_writer_processes_make_one_valid_chain(pg_dsn: str,
                                                   key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    create_trail(pg_dsn, key, "init")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    writers = [ctx.Process(target=_writer, args=(pg_dsn, pem, node, 200, start))
               for node in ("node-a", "node-b")]
    for w in writers:
        w.start()
    time.sleep(1.5)  # both connected and waiting
    start.set()
    for w in writers:
        w.join(timeout=100)
        assert w.exitcode == 0
    result = verify_trail(pg_dsn, key.public_key())
    assert result.ok, result.message
    assert result.nodes == ("init", "node-a", "node-b")
    with psycopg.connect(pg_dsn) as conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM audit_records ORDER BY seq")]
        by_node = dict(conn.execute("SELECT node, count(*) FROM audit_records "
                                    "WHERE kind = 'login' GROUP BY node").fetchall())
        interleaved = [r[0] for r in conn.execute(
            "SELECT node FROM audit_records WHERE kind = 'login' ORDER BY seq")]
    assert seqs == list(range(len(seqs)))  # no gaps, no duplicates
    assert by_node == {"node-a": 200, "node-b": 200}
    assert sum(1 for a, b in itertools.pairwise(interleaved) if a != b) > 2


@pytest.mark.parametrize(("records", "tamper", "bad_seq", "says"), [
    (8, "UPDATE audit_records SET line = replace(line, 'teacher4', 'teacher9') WHERE seq = 5",
     5, "Record 5 was changed"),
    (5, "UPDATE audit_records SET actor = 'someone-else' WHERE seq = 3", 3, "search columns"),
    (8, "DELETE FROM audit_records WHERE seq = 4", 4, "Record 4 is missing"),
    (8, "DELETE FROM audit_records WHERE seq >= 6", 6, "removed from the end"),  # signed head
], ids=["edited-record", "edited-search-column", "deleted-middle", "cut-end"])
def test_tampering_is_found_and_named(trail: PgTrail, pg_dsn: str,
                                      key: ec.EllipticCurvePrivateKey, records: int,
                                      tamper: str, bad_seq: int, says: str) -> None:
    for i in range(records):
        trail.append(event(i))
    sql(pg_dsn, tamper)
    result = verify_trail(pg_dsn, key.public_key())
    assert not result.ok and result.first_bad_seq == bad_seq
    assert says in result.message


def test_a_forged_head_row_is_found(trail: PgTrail, pg_dsn: str,
                                    key: ec.EllipticCurvePrivateKey) -> None:
    for i in range(4):
        trail.append(event(i))
    # Cut the last record and re-point the head at the one before, signed with another key.
    sql(pg_dsn, "DELETE FROM audit_records WHERE seq = 4")
    with psycopg.connect(pg_dsn) as conn:
        log_id = conn.execute("SELECT log_id FROM audit_head").fetchone()[0]
        line = conn.execute("SELECT line FROM audit_records WHERE seq = 3").fetchone()[0]
    last_hash = json.loads(line)["hash"]
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = chain.make_head(forger, log_id, 3, last_hash, 0)
    sql(pg_dsn, "UPDATE audit_head SET seq = 3, hash = %s, signature = %s", last_hash,
        forged.signature)
    result = verify_trail(pg_dsn, key.public_key())
    assert not result.ok
    assert "signed head row of the trail does not verify" in result.message


def test_a_missing_head_row_is_found(trail: PgTrail, pg_dsn: str,
                                     key: ec.EllipticCurvePrivateKey) -> None:
    trail.append(event(1))
    sql(pg_dsn, "DELETE FROM audit_head")
    result = verify_trail(pg_dsn, key.public_key())
    assert not result.ok and "head row is missing" in result.message


def test_an_empty_database_has_no_trail(pg_dsn: str, key: ec.EllipticCurvePrivateKey) -> None:
    result = verify_trail(pg_dsn, key.public_key())
    assert not result.ok and "no audit trail" in result.message


def test_database_down_fails_the_append_and_it_recovers(
        key: ec.EllipticCurvePrivateKey) -> None:
    server = start_postgres()
    try:
        dsn = server.create_database()
        create_trail(dsn, key, "init")
        trail = PgTrail(dsn, key, "node-a")
        trail.append(event(1))
        pg_ctl(server, "stop")
        started = time.monotonic()
        with pytest.raises(AuditWriteFailed) as failed:
            trail.append(event(2))
        assert time.monotonic() - started < 15
        message = str(failed.value)
        assert message.startswith("The audit trail in PostgreSQL cannot be written (")
        assert message.endswith(").") and "\n" not in message
        assert server.password not in message
        assert trail.write_error == message
        pg_ctl(server, "start")
        record = trail.append(event(3))  # the same chain, nothing to repair
        assert record.seq == 2 and trail.write_error is None
        trail.close()
        result = verify_trail(dsn, key.public_key())
        assert result.ok, result.message
    finally:
        stop_postgres(server)


def test_opening_an_unreachable_database_is_one_sentence(
        key: ec.EllipticCurvePrivateKey) -> None:
    from tests.fixtures.gateway import free_port

    dsn = f"postgresql://staffroom:pw@127.0.0.1:{free_port()}/x"
    with pytest.raises(AuditLogError, match=r"^The audit trail in PostgreSQL cannot be written"):
        PgTrail(dsn, key, "a")
    result = verify_trail(dsn, key.public_key())
    assert not result.ok and result.message.startswith("The audit trail in PostgreSQL cannot be "
                                                        "read (")
