"""The work-hours page (勤務情報) in system Chromium against a real gateway: a CIO of kita-es
reads their school's month in Japanese — the teacher's live session from the audit trail — and
downloads the CSV; another school's figures stay out of reach (page and API)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from playwright.async_api import Browser

from tests.console.test_console_browser import browser, open_console  # noqa: F401 (fixture)
from tests.fixtures.console import TEACHER, ConsoleWorld, add_operator

pytestmark = pytest.mark.slow


async def test_a_cio_reads_their_schools_work_hours_in_japanese(
    console_world: ConsoleWorld, browser: Browser  # noqa: F811 (the fixture above)
) -> None:
    cw = console_world
    session_id = cw.live_session()
    # A CIO of our own: another test signs cio3.kita in, and a TOTP code is good only once.
    if "cio4.kita" not in cw.operators:
        cw.operators["cio4.kita"] = add_operator(cw.world, "cio4.kita", "cio", "kita-es")
    op = cw.operators["cio4.kita"]
    c = await open_console(browser, cw, locale="ja-JP")
    page = c.page
    await c.sign_in(op.id, op.password, op.totp())
    await page.click("#nav a[data-view=hours]")
    assert await page.text_content("#view-hours h1") == "勤務情報"
    # School-scoped: the school is theirs and fixed; the month is this one. The view's module
    # fills the form when it mounts, which may be just after its (static) heading shows. A
    # function, not an expression: Playwright polls an expression with eval inside the page,
    # which the console's CSP refuses (a fresh-Debian failure whenever the form came late).
    await page.wait_for_function(
        "() => document.querySelector('#hours-filter input[name=month]').value !== ''")
    assert await page.input_value("#hours-filter input[name=school]") == "kita-es"
    assert await page.get_attribute("#hours-filter input[name=school]", "readonly") is not None
    month = datetime.now().astimezone().strftime("%Y-%m")
    assert await page.input_value("#hours-filter input[name=month]") == month
    row = f"#hours-table tr[data-session='{session_id}']"
    await page.wait_for_selector(row)
    cells = await page.locator(f"{row} td").all_text_contents()
    assert cells[0] == TEACHER and cells[1] == "佐藤 花子"
    assert cells[3] == "（未終了）"  # still live: no end yet
    totals = await page.text_content("#hours-totals")
    assert totals is not None and f"{TEACHER}：" in totals and "操作あり" in totals
    assert await page.text_content("#hours-table th:nth-child(5)") == "操作あり（分）"

    async with page.expect_download() as download:
        await page.click("#hours-csv")
    sheet = (await (await download.value).path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(sheet)))
    assert session_id in [r["session"] for r in rows]
    assert all(r["school"] == "kita-es" for r in rows)

    # Another school, asked for directly: refused with the reason, and nothing shown.
    me = await cw.sign_in("cio2.kita")
    status, data, _ = await cw.request(
        "GET", f"/api/v1/reports/hours?school=minami-es&month={month}", cookie=me.cookie)
    assert status == 403 and "own school" in data["message"]
    assert c.foreign() == [] and c.errors == []
    await c.context.close()
