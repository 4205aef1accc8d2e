"""Audit API for officers and admins: search and export (school-scoped), integrity status.

Attacker-controlled here: the query filters (bounded: limit, 40-character time echoes) and the
export's reader, who may read slowly or vanish; the export streams through a queue of at most
four 64 KiB chunks, so memory stays flat however large the log and however slow the client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from typing import Any, BinaryIO, TextIO, cast

from aiohttp import web

from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import bad_request
from gateway.audit import query
from gateway.audit.events import AuditRecord
from gateway.audit.kinds import AuditExported
from gateway.audit.open import iter_audit_records, record_node
from gateway.audit.status import verify_data_dir

MAX_LIMIT = 100_000
EXPORT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
CHUNK = 64 * 1024
log = logging.getLogger(__name__)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{value[:40]!r} is not an ISO 8601 time.") from None
    # A date or time without a zone means the gateway's local time (a school's day).
    return when if when.tzinfo is not None else when.astimezone()


def _record_json(record: AuditRecord) -> dict[str, Any]:
    e = record.event
    return {"seq": record.seq, "time": record.time, "kind": e.kind, "outcome": e.outcome,
            "actor": e.actor, "subject": e.subject, "school": e.school, "session": e.session,
            "source": e.source, "details": dict(e.details), "prev_hash": record.prev_hash,
            "hash": record.hash, "node": record_node(record)}


async def search(request: web.Request) -> web.Response:
    a = actor(request)
    q = request.query
    school = a.school or q.get("school") or None
    await require(request, "audit.read", school=school if school else a.school)
    try:
        limit = min(int(q.get("limit", "200")), MAX_LIMIT)
    except ValueError:
        raise bad_request("limit must be a number.") from None
    c = ctx(request)
    since, until = _time(q.get("since")), _time(q.get("until"))

    def run() -> list[dict[str, Any]]:
        records = iter_audit_records(c.audit, c.data, user=q.get("user") or None, school=school,
                                     kind=q.get("kind") or None, since=since, until=until)
        if q.get("order") == "tail":
            window: list[Any] = []
            for r in records:
                window.append(r)
                if len(window) > limit:
                    window.pop(0)
            return [_record_json(r) for r in window]
        out = []
        for r in records:
            out.append(_record_json(r))
            if len(out) >= limit:
                break
        return out

    return web.json_response({"records": await asyncio.to_thread(run)})


class _QueueSink:
    """A file the export thread writes (str for CSV, bytes for JSON Lines) that hands 64 KiB
    chunks to the event loop and blocks while the client is slow (backpressure)."""

    def __init__(self, queue: asyncio.Queue[bytes | None], loop: asyncio.AbstractEventLoop,
                 stop: threading.Event) -> None:
        self._queue, self._loop, self._stop = queue, loop, stop
        self._buffer = bytearray()

    def write(self, data: str | bytes) -> int:
        if self._stop.is_set():
            raise ConnectionResetError("the client went away")
        self._buffer += data.encode("utf-8") if isinstance(data, str) else data
        if len(self._buffer) >= CHUNK:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def _put(self, item: bytes | None) -> None:
        future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        while not self._stop.is_set():
            try:
                future.result(timeout=1)
                return
            except TimeoutError:
                continue
        future.cancel()

    def close(self) -> None:
        if self._buffer and not self._stop.is_set():
            self._put(bytes(self._buffer))
        self._put(None)


async def export(request: web.Request) -> web.StreamResponse:
    """`?format=csv|jsonl` plus the search filters: every matching record, streamed."""
    a = actor(request)
    q = request.query
    fmt = q.get("format", "jsonl")
    if fmt not in EXPORT_TYPES:
        raise bad_request("format must be csv or jsonl.")
    school = a.school or q.get("school") or None
    await require(request, "audit.read", school=school if school else a.school)
    since, until = _time(q.get("since")), _time(q.get("until"))
    filters = {k: q[k][:100] for k in ("user", "kind", "since", "until") if q.get(k)}
    await audit(request, AuditExported(format=fmt, **filters), school=school)
    c = ctx(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        sink = _QueueSink(queue, loop, stop)
        try:
            records = iter_audit_records(c.audit, c.data, user=q.get("user") or None,
                                         school=school, kind=q.get("kind") or None,
                                         since=since, until=until)
            if fmt == "csv":
                query.export_csv(records, cast(TextIO, sink))
            else:
                query.export_jsonl(records, cast(BinaryIO, sink))
        finally:
            sink.close()

    response = web.StreamResponse(headers={
        "Content-Type": f"{EXPORT_TYPES[fmt]}; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="staffroom-audit.{fmt}"',
        "X-Content-Type-Options": "nosniff"})
    await response.prepare(request)
    producer = asyncio.ensure_future(asyncio.to_thread(produce))
    failed = False
    try:
        while (chunk := await queue.get()) is not None:
            await response.write(chunk)
    except ConnectionError:
        failed = True  # the client went away
    finally:
        stop.set()
        while not queue.empty():
            queue.get_nowait()
        try:
            await producer
        except Exception as e:
            log.warning("audit export stopped: %s", e)
            failed = True
    if failed:  # headers are sent: cut the stream so that the client sees it fail
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


async def verify(request: web.Request) -> web.Response:
    a = actor(request)
    await require(request, "audit.read", school=a.school)
    result = await asyncio.to_thread(verify_data_dir, ctx(request).data.root)
    return web.json_response({
        "ok": result.ok, "records": result.records, "first_bad_seq": result.first_bad_seq,
        "message": result.message, "nodes": list(result.nodes),
        # (seq, time) of the last signed checkpoint, as JSON (a datetime does not serialise).
        "last_checkpoint": None if result.last_checkpoint is None else {
            "seq": result.last_checkpoint[0],
            "time": result.last_checkpoint[1].isoformat()},
    })
