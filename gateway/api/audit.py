"""Audit API for officers and admins: search (school-scoped) and the integrity status."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.api.common import actor, ctx, require
from gateway.api.errors import bad_request
from gateway.audit import query
from gateway.audit.events import AuditRecord
from gateway.audit_status import verify_data_dir

MAX_LIMIT = 100_000


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{value[:40]!r} is not an ISO 8601 time.") from None


def _record_json(record: AuditRecord) -> dict[str, Any]:
    e = record.event
    return {"seq": record.seq, "time": record.time, "kind": e.kind, "outcome": e.outcome,
            "actor": e.actor, "subject": e.subject, "school": e.school, "session": e.session,
            "source": e.source, "details": dict(e.details), "prev_hash": record.prev_hash,
            "hash": record.hash}


async def search(request: web.Request) -> web.Response:
    a = actor(request)
    q = request.query
    school = a.school or q.get("school") or None
    await require(request, "audit.read", school=school if school else a.school)
    try:
        limit = min(int(q.get("limit", "200")), MAX_LIMIT)
    except ValueError:
        raise bad_request("limit must be a number.") from None
    directory = ctx(request).data.audit_dir
    since, until = _time(q.get("since")), _time(q.get("until"))

    def run() -> list[dict[str, Any]]:
        records = query.iter_records(directory, user=q.get("user") or None, school=school,
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


async def verify(request: web.Request) -> web.Response:
    a = actor(request)
    await require(request, "audit.read", school=a.school)
    result = await asyncio.to_thread(verify_data_dir, ctx(request).data.root)
    return web.json_response({
        "ok": result.ok, "records": result.records, "first_bad_seq": result.first_bad_seq,
        "message": result.message, "last_checkpoint": result.last_checkpoint,
    })
