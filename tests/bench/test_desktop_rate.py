"""bench.desktop_rate against a real desktop: the bench's Xvnc + openbox, one RFB client asking
for every update, while a workload repaints the root window a known number of times."""

from __future__ import annotations

import asyncio

import pytest

from bench.desktop import Desktop
from bench.desktop_rate import CLIENTS, count_updates, table
from bench.workloads import show_on_root

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FULL_SCREEN_RAW_MB = 1920 * 1080 * 4 / 1e6  # one Raw update of the whole 1080p screen


class Repaints:
    """Paints the root window a solid colour ``times`` times, 0.3 s apart."""

    name = "repaints"

    def __init__(self, times: int) -> None:
        self.times = times

    async def run(self, desktop: Desktop, duration: float) -> None:
        colours = []
        for i, colour in enumerate(("#102030", "#c0e0f0")):
            path = desktop.workdir / f"solid-{i}.ppm"
            await desktop.run("convert", "-size", "1920x1080", f"xc:{colour}", "-depth", "8",
                              str(path))
            colours.append(path)
        for i in range(self.times):
            await show_on_root(desktop, colours[i % 2])
            await asyncio.sleep(0.3)


async def test_each_repaint_of_the_screen_is_one_counted_update() -> None:
    desktop = Desktop()
    desktop.start()
    try:
        result = await count_updates(desktop, CLIENTS["raw (the gateway's)"], Repaints(4), 0)
    finally:
        desktop.stop()
    # Four whole-screen repaints: four Raw updates of the screen (a repaint Xvnc catches half
    # drawn may add one), counted per second of the workload's run, and their bytes.
    screens = result["mb"] / FULL_SCREEN_RAW_MB
    assert 4 <= round(screens) <= 6, result
    assert result["updates_per_s"] > 0 and result["gap_median_ms"] is not None
    assert result["gap_median_ms"] > 200  # one update per repaint, 0.3 s apart


def test_the_table_shows_a_missing_gap_as_a_dash() -> None:
    md = table({"idle": {"raw (the gateway's)": {"updates_per_s": 0.0, "mb": 0.0,
                                                 "gap_median_ms": None}}})
    assert md.splitlines()[-1] == "| idle | raw (the gateway's) | 0.0 | 0.00 | – |"
