"""The console in system Chromium against a real gateway: an officer signs in with a real TOTP
code and sees live sessions and the audit log (and ends a session), a school-scoped officer sees
only their school, a teacher is refused, a CIO previews a roster before importing it; the page
talks to no other origin and keeps to its CSP; Japanese and English follow the browser and the
switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.fixtures.console import TEACHER, ConsoleWorld

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@dataclass
class Console:
    context: BrowserContext
    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def sign_in(self, user: str, password: str, totp: str) -> None:
        await self.page.goto(f"{self.origin}/console")
        await self.page.wait_for_selector("#signin:not([hidden])")
        await self.page.fill("input[name=user]", user)
        await self.page.fill("input[name=password]", password)
        await self.page.fill("input[name=totp]", totp)
        await self.page.click("#signin button[type=submit]")

    def foreign(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.origin + "/")
                and not u.startswith(("data:", "blob:"))]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def open_console(browser: Browser, cw: ConsoleWorld, locale: str = "en-GB") -> Console:
    context = await browser.new_context(ignore_https_errors=True, locale=locale)
    page = await context.new_page()
    c = Console(context, page, cw.origin)
    context.on("request", lambda r: c.requests.append(r.url))
    page.on("pageerror", lambda e: c.errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and c.errors.append(m.text))
    return c


async def test_an_officer_signs_in_and_sees_sessions_and_the_audit_log(
    console_world: ConsoleWorld, browser: Browser
) -> None:
    cw = console_world
    session_id = cw.live_session()
    op = cw.operators["sec.board"]
    c = await open_console(browser, cw)
    page = c.page
    await c.sign_in(op.id, op.password, op.totp())
    row = f"#sessions-table tr[data-session='{session_id}']"
    await page.wait_for_selector(row)
    cells = await page.locator(f"{row} td").all_text_contents()
    assert cells[0] == TEACHER and cells[1] == "kita-es" and cells[4] == "127.0.0.1"
    assert cells[5]  # the posture summary the agent reported
    assert await page.locator("#nav a:not([hidden])").all_text_contents() == [
        "Live sessions", "Recordings", "Audit log", "Keys", "Work hours"]
    # The cookie: HttpOnly (the page cannot read it), Secure, SameSite=Strict, host-only.
    (cookie,) = await c.context.cookies()
    assert cookie["name"] == "__Host-staffroom_console"
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""

    # The table refreshes itself (every 5 s, as a background poll).
    stamp = await page.text_content("#sessions-updated")
    await page.wait_for_function(
        "s => document.getElementById('sessions-updated').textContent !== s", arg=stamp,
        timeout=12_000)
    await page.wait_for_selector(row)

    # Audit page: records, the integrity status, export links carrying the filters.
    await page.click("#nav a[data-view=audit]")
    await page.wait_for_selector("#audit-table tbody tr")
    await page.fill("#audit-filter input[name=user]", TEACHER)
    await page.fill("#audit-filter input[name=kind]", "session")
    await page.click("#audit-filter button[type=submit]")
    # The unfiltered first page may hold a session.start too: wait for the filtered answer.
    await page.wait_for_function("""() => {
        const rows = [...document.querySelectorAll('#audit-table tbody tr')];
        return rows.some(r => r.dataset.kind === 'session.start')
            && rows.every(r => r.dataset.kind.startsWith('session'));
    }""")
    kinds = await page.locator("#audit-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)")
    assert kinds and all(k.startswith("session") for k in kinds)
    await page.wait_for_selector("#audit-verify[data-ok='true']")
    assert "intact" in (await page.text_content("#audit-verify-text") or "")
    href = await page.get_attribute("#export-csv", "href")
    assert href == "/api/v1/audit/export?user=t.sato&kind=session&format=csv"
    async with page.expect_download() as download:
        await page.click("#export-jsonl")
    path = await (await download.value).path()
    assert b'"kind":"session.start"' in path.read_bytes()

    # Terminate from the sessions page, with a reason.
    await page.click("#nav a[data-view=sessions]")
    await page.click(f"{row} button[data-action=terminate]")
    await page.fill("dialog textarea[name=reason]", "授業中の確認です")
    await page.click("dialog button[type=submit]")
    await page.wait_for_selector(row, state="detached", timeout=15_000)
    assert session_id not in [s["id"] for s in cw.sessions()]
    assert c.foreign() == [] and c.errors == []
    await c.context.close()


async def test_a_school_scoped_officer_sees_only_their_school_in_japanese(
    console_world: ConsoleWorld, browser: Browser
) -> None:
    cw = console_world
    cw.live_session()  # t.sato of kita-es is connected
    op = cw.operators["sec.minami"]
    c = await open_console(browser, cw, locale="ja-JP")
    page = c.page
    await page.goto(f"{cw.origin}/console/")
    assert await page.text_content("#signin h1") == "サインイン"
    await c.sign_in(op.id, op.password, op.totp())
    await page.wait_for_selector("#sessions-empty:not([hidden])")
    assert await page.locator("#sessions-table tbody tr").count() == 0
    assert await page.text_content("#nav a[data-view=audit]") == "監査ログ"
    await page.click("#nav a[data-view=audit]")
    await page.wait_for_selector("#audit-table tbody tr")
    assert await page.is_hidden("#audit-filter .school-filter")
    schools = await page.locator("#audit-table tbody tr td:nth-child(6)").all_text_contents()
    assert set(schools) == {"minami-es"}
    # Switch to English: remembered across a reload.
    await page.click("#lang")
    assert await page.text_content("#nav a[data-view=audit]") == "Audit log"
    await page.reload()
    await page.wait_for_selector("#view-audit:not([hidden])")
    assert await page.text_content("#view-audit h1") == "Audit log"
    assert await page.evaluate("document.documentElement.lang") == "en"
    # The page's own requests for another school's data get the school-scoped answer too.
    answer = await page.evaluate(
        "fetch('/api/v1/audit?school=kita-es').then(r => r.json())")
    assert {r["school"] for r in answer["records"]} <= {"minami-es"}
    answer = await page.evaluate("fetch('/api/v1/sessions').then(r => r.json())")
    assert answer["sessions"] == []
    assert c.foreign() == [] and c.errors == []
    await c.context.close()


async def test_a_teacher_is_refused_at_sign_in_like_a_wrong_password(
    console_world: ConsoleWorld, browser: Browser
) -> None:
    c = await open_console(browser, console_world)
    await c.sign_in(TEACHER, "teacher-password-1", "123456")
    await c.page.wait_for_selector("#signin-error:not([hidden])")
    text = await c.page.text_content("#signin-error") or ""
    assert text == "The user id, password or code is wrong."  # no hint that it is a teacher
    assert await c.context.cookies() == []
    assert await c.page.is_hidden("#nav")
    await c.context.close()


async def test_a_cio_previews_a_roster_then_imports_and_resets_a_password(
    console_world: ConsoleWorld, browser: Browser
) -> None:
    cw = console_world
    op = cw.operators["cio3.kita"]
    c = await open_console(browser, cw)
    page = c.page
    await c.sign_in(op.id, op.password, op.totp())
    await page.wait_for_selector("#view-keys:not([hidden])")
    assert await page.locator("#nav a:not([hidden])").all_text_contents() == [
        "Keys", "Accounts", "Work hours"]
    await page.wait_for_selector(f"#keys-table tr:has(td:text-is('{TEACHER}'))")
    assert await page.get_attribute("#crl-link", "href") == "/crl/school-ca.crl"
    await page.click("#nav a[data-view=accounts]")
    await page.wait_for_selector(f"#accounts-table tr[data-user='{TEACHER}']")
    schools = await page.locator("#accounts-table tbody tr td:nth-child(4)").all_text_contents()
    assert set(schools) == {"kita-es"}

    await page.fill("#import-csv", f"id,name,school\nt.new1,新人 一郎,kita-es\n"
                                   f"{TEACHER},佐藤 花子,kita-es\n")
    await page.click("#import-preview")
    await page.wait_for_selector("#import-result[data-stage=preview]")
    preview = await page.text_content("#import-result") or ""
    assert "t.new1" in preview and TEACHER in preview
    listed = cw.world.admin.run("users", "list", "--json").json()
    assert "t.new1" not in [u["id"] for u in listed]  # type: ignore[index]
    await page.click("#import-confirm")
    await page.wait_for_selector("#import-result[data-stage=done] tr[data-user='t.new1'] code")
    listed = cw.world.admin.run("users", "list", "--json").json()
    assert "t.new1" in [u["id"] for u in listed]  # type: ignore[index]

    await page.click("#accounts-table tr[data-user='t.new1'] button[data-action=reset]")
    await page.click("dialog button[type=submit]")
    once = await page.wait_for_selector("#one-time-password")
    assert len(await once.text_content() or "") >= 12
    await page.click("dialog button[type=submit]")
    await page.click("#accounts-table tr[data-user='t.new1'] button[data-action=disable]")
    await page.click("dialog button[type=submit]")
    await page.wait_for_selector("#accounts-table tr[data-user='t.new1'][data-disabled=true]")
    assert c.foreign() == [] and c.errors == []
    await c.context.close()
