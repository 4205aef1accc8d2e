"""Reading the audit trail in PostgreSQL: search for officers and exports, and `verify`.

Attacker-controlled here: every row of audit_records and audit_head (an officer verifies a trail
that someone with database access may have edited) and the search filters. Limits: rows are
streamed through a server-side cursor FETCH rows at a time, so memory does not grow with the
trail; a line is checked like a file line (64 KiB, exact canonical form); filters are bound
parameters, never SQL text; malformed rows end in a failed result, never an exception.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import chain, pgschema
from gateway.audit.events import AuditRecord, RecordFormatError, format_time, parse_record
from gateway.audit.verify import Broken, ChainChecker, VerifyResult, checkpoint_words

FETCH = 500
_COLUMNS = "seq, node, time, kind, actor, subject, school, line"


def iter_records(conn: Any, *, user: str | None = None, school: str | None = None,
                 kind: str | None = None, since: datetime | None = None,
                 until: datetime | None = None) -> Iterator[AuditRecord]:
    """Records in order matching every filter, with the file query's meaning (gateway.audit.
    query.iter_records); read from one snapshot. RecordFormatError at a damaged row."""
    where, args = [], []
    if since is not None:
        where.append("time >= %s")
        args.append(format_time(since))
    if until is not None:
        where.append("time < %s")
        args.append(format_time(until))
    if user is not None:
        where.append("(actor = %s OR subject = %s)")
        args += [user, user]
    if school is not None:
        where.append("school = %s")
        args.append(school)
    if kind is not None:
        where.append("(kind = %s OR starts_with(kind, %s))")
        args += [kind, kind + "."]
    sql = f"SELECT {_COLUMNS} FROM audit_records"
    if where:
        sql += " WHERE " + " AND ".join(where)
    with conn.transaction(), conn.cursor(name="audit_search") as cur:
        cur.itersize = FETCH
        cur.execute(sql + " ORDER BY seq", args)
        for row in cur:
            try:
                yield parse_record(row[7].encode("utf-8") + b"\n")
            except RecordFormatError as exc:
                raise RecordFormatError(f"audit record {row[0]} in PostgreSQL is damaged: "
                                        f"{exc}") from None


def verify_trail(dsn: str, public_key: ec.EllipticCurvePublicKey) -> VerifyResult:
    """Check every node's records, the chain, its checkpoints and the signed head row, from one
    snapshot (safe while nodes append)."""
    chain.require_p256(public_key)
    checker = ChainChecker(public_key)
    nodes: Counter[str] = Counter()
    try:
        with pgschema.connect(dsn) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                _scan(conn, checker, nodes)
    except Broken as broken:
        return VerifyResult(False, checker.count, broken.seq, broken.message,
                            checker.last_checkpoint, tuple(sorted(nodes)))
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no answer"
        return VerifyResult(False, checker.count, None,
                            f"The audit trail in PostgreSQL cannot be read ({reason}).", None)
    names = ", ".join(sorted(nodes))
    return VerifyResult(
        True, checker.count, None,
        f"All {checker.count} records of {len(nodes)} node(s) ({names}) are intact; "
        f"{checkpoint_words(checker.last_checkpoint)}.",
        checker.last_checkpoint, tuple(sorted(nodes)))


def _scan(conn: Any, checker: ChainChecker, nodes: Counter[str]) -> None:
    tables = conn.execute("SELECT to_regclass('audit_records'), to_regclass('audit_head')")
    if None in tables.fetchone():
        raise Broken(None, "There is no audit trail in this PostgreSQL database.")
    head = pgschema.read_head(conn)
    with conn.cursor(name="audit_verify") as cur:
        cur.itersize = FETCH
        cur.execute(f"SELECT {_COLUMNS} FROM audit_records ORDER BY seq")
        for row in cur:
            record = checker.feed(row[7].encode("utf-8") + b"\n", complete=True)
            _check_columns(record, row)
            nodes[row[1]] += 1
    if head is None:
        raise Broken(None, "The audit trail's signed head row is missing: removal of records "
                     "from its end cannot be ruled out.")
    checker.finish(head, head_name="signed head row of the trail")


def _check_columns(record: AuditRecord, row: tuple[Any, ...]) -> None:
    """The search columns must say what the hashed line says (else search would mislead)."""
    node = record.details.get("node")
    if not isinstance(node, str):
        raise Broken(record.seq, f"Record {record.seq} does not name the node that wrote it: "
                     "it was not written by a gateway node.")
    e = record.event
    if tuple(row[:7]) != (record.seq, node, record.time, e.kind, e.actor, e.subject, e.school):
        raise Broken(record.seq, f"Record {record.seq} was changed: its search columns "
                     "(seq, node, time, kind, actor, subject, school) differ from the hashed "
                     "record.")
