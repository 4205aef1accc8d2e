"""The Recordings page in system Chromium against a real gateway, on real recordings signed with
the gateway's audit key: the list, the integrity check, the export, and the player — play, pause,
speed, seek (the canvas then equals the recorded screen at that time, pixel for pixel), a resize
inside the recording, playing across replay windows, minute 37 of an hour-long recording within
a second; the replay is audited with the officer as actor; a school-scoped officer sees only
their school's recordings, in Japanese."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.async_api import Browser, Page

from tests.console.pixels import wait_for_picture
from tests.console.watch_stand_in import WatchStandIn
from tests.fixtures.console_media import HOUR_MS, Media, open_page, signed_in_page
from tests.fixtures.recording import record_session

pytestmark = pytest.mark.slow

CANVAS = "#player-canvas"


async def position(page: Page) -> int:
    return int(await page.get_attribute("#player", "data-position") or 0)


async def seek(page: Page, ms: int) -> int:
    """Seek with the slider as a hand does (input, then change); returns what the page measured
    from the seek to the picture being on the canvas, in ms."""
    await page.eval_on_selector("#player-seek", """(s, ms) => {
        s.value = String(ms);
        s.dispatchEvent(new Event('input'));
        s.dispatchEvent(new Event('change'));
    }""", ms)
    await page.wait_for_selector(f"#player[data-seeked-to='{ms}']")
    return int(await page.get_attribute("#player", "data-seek-ms") or 0)


async def open_player(page: Page, rid: str) -> None:
    await page.click(f"#recordings-table tr[data-recording='{rid}'] button[data-action=play]")
    await page.wait_for_selector(f"#player[data-recording='{rid}'][data-state=playing]")


async def replays(media: Media, user: str, rid: str) -> list[dict[str, Any]]:
    me = await media.cw.sign_in(user)
    status, data, _ = await media.cw.request(
        "GET", "/api/v1/audit?kind=recording.replay&limit=500", cookie=me.cookie)
    assert status == 200, data
    return [r for r in data["records"] if r["details"].get("recording") == rid]


async def test_an_officer_lists_checks_exports_and_plays_a_recording(
    console_media: Media, chromium: Browser
) -> None:
    media, rec = console_media, console_media.short
    rid = media.rid(rec)
    c = await signed_in_page(chromium, media.cw, "sec.player", view="recordings")
    page = c.page
    row = f"#recordings-table tr[data-recording='{rid}']"
    await page.wait_for_selector(row)
    listed = await page.locator("#recordings-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.recording)")
    assert {media.rid(r) for r in (media.short, media.hour, media.minami)} <= set(listed)
    cells = await page.locator(f"{row} td").all_text_contents()
    assert cells[0] == "r.kita" and cells[1] == "kita-es"
    assert cells[4] == "0:00:45" and cells[6] == "yes"
    assert await page.get_attribute(f"{row} a[data-action=export]", "href") == (
        f"/api/v1/recordings/{rid}/file")

    await page.click(f"{row} button[data-action=verify]")
    await page.wait_for_selector(f"{row} td.verified[data-ok=true]")
    assert "intact" in (await page.text_content(f"{row} td.verified") or "")
    async with page.expect_download() as download:
        await page.click(f"{row} a[data-action=export]")
    path = await (await download.value).path()
    assert path.read_bytes() == rec.path.read_bytes()

    # Play at 1x, then 8x: the clock runs eight times faster.
    await open_player(page, rid)
    assert await page.text_content("#player-play") == "Pause"
    await page.select_option("#player-speed", "8")
    p0, t0 = await position(page), time.monotonic()
    await page.wait_for_function(
        "p => Number(document.getElementById('player').dataset.position) >= p", arg=p0 + 6000,
        timeout=10_000)
    rate = (await position(page) - p0) / ((time.monotonic() - t0) * 1000)
    assert rate > 3.5, rate  # 8x less page round trips; 1x would be ~1
    # Pause: the clock stops and the canvas is the recorded screen at that very time.
    await page.click("#player-play")
    await page.wait_for_selector("#player[data-state=paused]")
    paused = await position(page)
    await wait_for_picture(page, CANVAS, rec.screen_at(paused))
    assert await position(page) == paused

    # Seeks, backwards and over the resize (frame 20, at 30 s): always the screen at t.
    for t in (4_000, 20_250, 40_000, 31_000, 0):
        await seek(page, t)
        assert await page.get_attribute("#player", "data-state") == "paused"
        await wait_for_picture(page, CANVAS, rec.screen_at(t))
    assert rec.screen_at(40_000).size == (384, 208)

    # Play on from a seek to the end of the recording.
    await seek(page, 38_000)
    await page.click("#player-play")
    await page.wait_for_selector("#player[data-state=ended]", timeout=10_000)
    await wait_for_picture(page, CANVAS, rec.screens[-1][1])
    assert await page.text_content("#player-status") == "End of the recording."

    # Audited once for this replay (the first window), with the officer as the actor.
    (record,) = await replays(media, "sec.player", rid)
    assert record["actor"] == "sec.player" and record["subject"] == "r.kita"
    assert record["school"] == "kita-es" and record["outcome"] == "ok"
    assert c.errors == [] and c.foreign() == []
    await c.context.close()


async def test_minute_37_of_an_hour_shows_within_a_second_and_plays_across_windows(
    console_media: Media, chromium: Browser
) -> None:
    media, rec = console_media, console_media.hour
    rid = media.rid(rec)
    c = await signed_in_page(chromium, media.cw, "sec.hour", view="recordings")
    page = c.page
    await page.wait_for_selector(f"#recordings-table tr[data-recording='{rid}']")
    await open_player(page, rid)
    assert await page.get_attribute("#player-seek", "max") == str(HOUR_MS + 15_000)
    await page.click("#player-play")
    await page.wait_for_selector("#player[data-state=paused]")
    t = 37 * 60_000 + 7_000
    took = await seek(page, t)
    assert took < 1000, f"minute 37 took {took} ms to show"
    await wait_for_picture(page, CANVAS, rec.screen_at(t))
    assert await page.text_content("#player-time") == "0:37:07 / 1:00:15"

    # Play at 8x across the end of that replay window (60 s after 37:07) into the next.
    await page.select_option("#player-speed", "8")
    await page.click("#player-play")
    await page.wait_for_function(
        "p => Number(document.getElementById('player').dataset.position) >= p",
        arg=t + 70_000, timeout=20_000)  # the next frame, 37:07 + 68 s, is in the next window
    await page.click("#player-play")
    await page.wait_for_selector("#player[data-state=paused]")
    await wait_for_picture(page, CANVAS, rec.screen_at(await position(page)))
    assert len(await replays(media, "sec.hour", rid)) == 1
    assert c.errors == [] and c.foreign() == []
    await c.context.close()


async def test_a_school_scoped_officer_sees_only_their_schools_recordings(
    console_media: Media, chromium: Browser
) -> None:
    media = console_media
    c = await signed_in_page(chromium, media.cw, "sec.rec.minami", view="recordings",
                             locale="ja-JP")
    page = c.page
    mine = f"#recordings-table tr[data-recording='{media.rid(media.minami)}']"
    await page.wait_for_selector(mine)
    assert await page.text_content("#view-recordings h1") == "録画"
    assert await page.text_content(f"{mine} button[data-action=play]") == "再生"
    schools = await page.locator("#recordings-table tbody tr td:nth-child(2)").all_text_contents()
    assert set(schools) == {"minami-es"}
    await open_player(page, media.rid(media.minami))
    await page.select_option("#player-speed", "8")
    await page.wait_for_selector("#player[data-state=ended]")
    assert await page.text_content("#player-status") == "録画の最後です。"
    await wait_for_picture(page, CANVAS, media.minami.screens[-1][1])
    assert c.errors == [] and c.foreign() == []
    # Its own requests for another school's recording are refused by the gateway (and audited).
    other = media.rid(media.short)
    answer = await page.evaluate("""id => fetch(`/api/v1/recordings/${id}/window?t=0&first=1`)
        .then(r => r.status)""", other)
    assert answer == 403
    assert all(r["actor"] != "sec.rec.minami" for r in await replays(media, "sec.player", other))
    await c.context.close()


async def test_a_malformed_replay_window_is_refused_whole(
    chromium: Browser, tmp_path: Path, recording_key: ec.EllipticCurvePrivateKey
) -> None:
    """The player's window parser, in the page: items must fit the body exactly."""
    stand = WatchStandIn(record_session(tmp_path / "rec", recording_key, frames=2))
    origin = await stand.start()
    try:
        c = await open_page(chromium, origin)
        await c.page.goto(f"{origin}/console/")
        results = await c.page.evaluate("""async () => {
            const { parseWindow } = await import('/console/static/player.js');
            const item = (t, n) => { const b = new Uint8Array(12 + n);
                const v = new DataView(b.buffer); v.setBigUint64(0, BigInt(t));
                v.setUint32(8, n); b.fill(7, 12); return b; };
            const join = (...parts) => { const out = new Uint8Array(
                parts.reduce((n, p) => n + p.length, 0)); let o = 0;
                for (const p of parts) { out.set(p, o); o += p.length; } return out; };
            const tryParse = (b) => { try { return parseWindow(b).map(i => [i.t, i.bytes.length]); }
                catch (e) { return e.message; } };
            const two = join(item(5, 3), item(9, 0));
            return [tryParse(two), tryParse(two.subarray(0, two.length - 1)),
                    tryParse(item(1, 4).subarray(0, 15)), tryParse(new Uint8Array(0)),
                    tryParse(join(item(2 ** 40, 1)))];
        }""")
        assert results == [[[5, 3], [9, 0]], "the replay window is cut off",
                           "a replay item runs past the window", "the replay window is empty",
                           [[2 ** 40, 1]]]
        assert c.errors == []
        await c.context.close()
    finally:
        await stand.stop()
