"""Reports API: work hours (勤務情報) per school and month, and work-receipt checks.

Attacker-controlled here: the query (school, month, user: bounded and parsed) and a receipt
handed in for checking (at most 4 KiB, verified byte for byte by gateway.wire.receipt). Officers
and CIOs see only their own school; board-level officers and admins name one. Every report read
and every receipt check is audited (work hours are personal data).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace

from aiohttp import web

from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import bad_request, field_str, json_body
from gateway.audit.kinds import HoursReported, ReceiptChecked, ReceiptInvalid
from gateway.audit.open import iter_audit_records
from gateway.reports import hours, receipt_key
from gateway.wire import receipt

MAX_RECEIPT_TEXT = receipt.MAX_FILE


async def work_hours(request: web.Request) -> web.Response:
    a = actor(request)
    q = request.query
    school = q.get("school") or a.school or None  # naming another school is refused below
    if school is None:
        raise bad_request("Name the school: add --school SCHOOL (or ?school=).")
    await require(request, "reports.read", school=school)
    try:
        month = hours.Month.parse(q.get("month", ""))
    except ValueError as e:
        raise bad_request(str(e)) from None
    user = q.get("user") or None
    if user is not None and len(user) > 64:
        raise bad_request("user must be at most 64 characters.")
    c = ctx(request)
    since, until = hours.search_window(month)

    def run() -> list[hours.WorkSession]:
        records = iter_audit_records(c.audit, c.data, school=school, user=user,
                                     kind="session", since=since, until=until)
        return hours.work_sessions(records, month, school=school, user=user)

    names: dict[str, str] = {}
    for w in (rows := await asyncio.to_thread(run)):
        if w.user not in names:
            found = c.store.get_user(w.user)
            names[w.user] = found.name if found else ""
    rows = [replace(w, name=names[w.user]) for w in rows]
    await audit(request, HoursReported(month=f"{month.year:04d}-{month.month:02d}",
                                       sessions=len(rows)), subject=user, school=school)
    if q.get("format") == "csv":
        name = f"work-hours-{school}-{month.year:04d}-{month.month:02d}.csv"
        return web.Response(text=hours.to_csv(rows), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return web.json_response({"school": school, "month": f"{month.year:04d}-{month.month:02d}",
                              "sessions": [asdict(w) for w in rows],
                              "totals": hours.totals(rows)})


async def verify_receipt(request: web.Request) -> web.Response:
    a = actor(request)
    await require(request, "reports.read", school=a.school)
    body = await json_body(request, max_bytes=4 * MAX_RECEIPT_TEXT)
    text = field_str(body, "receipt", max_len=MAX_RECEIPT_TEXT) or ""
    c = ctx(request)
    key = receipt_key.for_gateway(c.extras, c.data.root)
    try:
        fields = receipt.verify(text.encode(), [key.public_key()])
    except receipt.ReceiptError as e:
        await audit(request, ReceiptInvalid(error=str(e)))
        return web.json_response({"valid": False, "message": str(e)})
    await audit(request, ReceiptChecked(session=str(fields["session"])),
                subject=str(fields["user"]), school=fields.get("school"))
    return web.json_response({"valid": True, "receipt": fields})


async def receipt_public_key(request: web.Request) -> web.Response:
    """The receipt key's public half (PEM), to check receipts away from the gateway."""
    a = actor(request)
    await require(request, "reports.read", school=a.school)
    c = ctx(request)
    pem = receipt_key.public_pem(receipt_key.for_gateway(c.extras, c.data.root))
    return web.Response(body=pem, content_type="application/x-pem-file")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/reports/hours", work_hours)
    app.router.add_post("/api/v1/reports/receipts/verify", verify_receipt)
    app.router.add_get("/api/v1/reports/receipt-key", receipt_public_key)
