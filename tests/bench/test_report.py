"""bench.report: issue 11's aims beside each figure, as ratios to noVNC from the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.report import (
    Check,
    capacity_table,
    capacity_versus,
    capacity_versus_table,
    comparison_table,
    load_table,
    markdown,
    ratios,
    render,
)
from bench.run import parse_args, probe_workload

MACHINE = {"loadavg_start": 1.5, "loadavg_end": 2.25, "cpu_busy_pct": 61.0,
           "others_cpu_s": 4.0, "others_cpu_pct": 20.0, "others_top": ["python 3.1s"]}


def row(client: str, workload: str, mb: float, ups: float, cpu_pct: float = 1.0,
        median: float | None = None, seconds: float = 20.0) -> dict[str, Any]:
    return {"client": client, "workload": workload, "seconds": seconds,
            "bytes_received": int(mb * 1e6), "bytes_sent": 0, "kbit_per_s": mb * 8000 / seconds,
            "updates_per_s": ups, "draw_calls": 0, "gateway_cpu_s": cpu_pct * seconds / 100,
            "gateway_cpu_pct": cpu_pct, "gateway_peak_rss_mib": 100.0,
            "gateway_peak_pss_mib": 90.0, "xvnc_cpu_s": 0.1, "machine": MACHINE,
            "latency": None if median is None else
            {"median_ms": median, "p95_ms": median * 2, "samples": 40, "missed": 0}}


def result(rows: list[dict[str, Any]], started: str = "2026-12-03T09-00-00Z") -> dict[str, Any]:
    return {"meta": {"started": started, "duration_s": 20.0, "geometry": "1920x1080x24",
                     "xvnc": "Xvnc", "chromium": "156", "cpus": 2, "novnc": "1.3"},
            "results": rows}


RUN = result([
    row("novnc", "xterm-typing", 0.10, 8.0, median=12.0),
    row("novnc", "xterm-scroll", 2.00, 10.0),
    row("novnc", "scrolling", 50.0, 20.0),
    row("novnc", "idle", 0.0, 0.0),
    row("staffroom", "xterm-typing", 1.38, 8.0, median=14.0),   # 13.8x: miss
    row("staffroom", "xterm-scroll", 1.00, 12.0),               # 0.5x: pass
    row("staffroom", "scrolling", 41.0, 10.0),                  # 0.82x > 0.8: miss
    row("staffroom", "idle", 0.06, 0.1),                        # 3000 B/s: miss
    row("staffroom-nowm", "xterm-typing", 0.10, 8.0, median=11.0),  # exactly 1.0x: pass
    row("staffroom-nowm", "xterm-scroll", 0.50, 9.0),
    row("staffroom-nowm", "scrolling", 30.0, 20.0),
    row("staffroom-nowm", "idle", 0.0, 0.0),
])


def cells(table: str, workload: str, metric: str) -> list[str]:
    """The cells of one line of a Markdown table, found by its first two columns."""
    for line in table.splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if parts[:2] == [workload, metric]:
            return parts[2:]
    raise AssertionError(f"no line {workload} / {metric} in\n{table}")


def test_a_check_passes_at_its_limit_and_misses_beyond_it() -> None:
    assert Check(1.0, 1.0, at_most=True).mark == "✔"
    assert Check(1.01, 1.0, at_most=True).mark == "✘"
    assert Check(0.99, 1.0, at_most=False).mark == "✘"
    assert Check(None, 1.0, at_most=True).mark == "?"


def test_each_variant_is_a_ratio_to_novnc_with_its_aim_and_mark() -> None:
    table = comparison_table([RUN], [""])
    head = [p.strip() for p in table.splitlines()[0].strip("|").split("|")]
    assert head == ["workload", "metric", "aim", "novnc", "staffroom", "staffroom-nowm"]
    assert cells(table, "xterm-typing", "MB received") == [
        "≤ 1.0x", "0.10", "1.38 (13.80x) ✘", "0.10 (1.00x) ✔"]
    assert cells(table, "xterm-scroll", "MB received")[2] == "1.00 (0.50x) ✔"
    # GTK scrolling has a tighter aim (0.8x): 0.82x misses it.
    assert cells(table, "scrolling", "MB received")[:3] == ["≤ 0.8x", "50.00", "41.00 (0.82x) ✘"]
    assert cells(table, "scrolling", "updates/s")[2:] == ["10.0 (0.50x) ✘", "20.0 (1.00x) ✔"]
    assert cells(table, "xterm-typing", "key-to-pixel median ms") == [
        "≤ noVNC", "12.0", "14.0 (1.17x) ✘", "11.0 (0.92x) ✔"]
    # Latency only where the probe ran; gateway CPU is shown without an aim.
    with pytest.raises(AssertionError):
        cells(table, "xterm-scroll", "key-to-pixel median ms")
    assert cells(table, "xterm-scroll", "gateway CPU % of a core")[0] == "–"
    assert "✔" not in "".join(cells(table, "xterm-scroll", "gateway CPU % of a core"))


def test_idle_is_judged_in_bytes_per_second_not_as_a_ratio() -> None:
    # noVNC sends nothing at idle, so a ratio would be undefined; the aim is < 1 KB/s.
    assert cells(comparison_table([RUN], [""]), "idle", "bytes/s") == [
        "< 1 KB/s", "0", "3000 ✘", "0 ✔"]


def test_a_ratio_is_judged_as_it_is_shown() -> None:
    run = result([row("novnc", "typing", 0.1, 8.0), row("staffroom", "typing", 0.1, 7.98),
                  row("staffroom-nowm", "typing", 0.1, 7.9)])
    assert cells(comparison_table([run], [""]), "typing", "updates/s")[2:] == [
        "8.0 (1.00x) ✔", "7.9 (0.99x) ✘"]


def test_a_missing_novnc_figure_gives_no_ratio_and_no_mark() -> None:
    run = result([row("staffroom", "photo", 2.0, 2.0)])
    assert cells(comparison_table([run], [""]), "photo", "MB received") == ["≤ 0.3x", "–", "2.00"]


def test_before_and_after_runs_sit_side_by_side_each_against_its_own_novnc() -> None:
    after = result([row("novnc", "xterm-typing", 0.20, 8.0, median=12.0),
                    row("staffroom", "xterm-typing", 0.16, 8.0, median=12.0)])
    table = comparison_table([RUN, after], ["before", "after"])
    head = [p.strip() for p in table.splitlines()[0].strip("|").split("|")]
    assert head[3:] == ["novnc before", "staffroom before", "staffroom-nowm before",
                        "novnc after", "staffroom after"]
    # The after-run's ratio uses the after-run's noVNC (0.16 / 0.20), not the before-run's.
    assert cells(table, "xterm-typing", "MB received")[-1] == "0.16 (0.80x) ✔"
    # A workload the second run lacks shows dashes there.
    assert cells(table, "xterm-scroll", "MB received")[-2:] == ["–", "–"]


def test_ratios_in_the_json_are_per_variant_and_none_without_a_reference() -> None:
    out = {r["workload"]: r for r in ratios(RUN["results"], "staffroom")}
    assert out["xterm-typing"]["bytes_received"] == pytest.approx(13.8)
    assert out["xterm-typing"]["latency_median_ms"] == pytest.approx(14 / 12, abs=1e-3)
    assert out["idle"]["bytes_received"] is None  # noVNC's 0 bytes: no ratio


def test_the_load_during_each_window_is_in_the_tables() -> None:
    table = load_table(RUN)
    assert "| xterm-typing | staffroom | 1.50 → 2.25 | 61 | 20 | python 3.1s |" in table
    md = markdown(RUN)
    assert "✘" in md and "Machine load" in md and "| idle | staffroom-nowm |" in md


def test_the_markdown_says_whose_pointer_the_desktop_showed() -> None:
    """Runs before issue 11 part AS (no ``pointer_in_page``) had Xvnc draw the pointer."""
    def header(meta: dict[str, object]) -> str:
        return markdown({**RUN, "meta": {**RUN["meta"], **meta}}).split("\n\n")[1]

    assert "page put its mouse on the desktop's pointer" in header({"pointer_in_page": True})
    for old in ({"pointer_in_page": False}, {}):
        assert "Xvnc drew it into every client's pixels" in header(old)


def test_a_disturbed_window_is_marked_with_its_ratios_and_explained(tmp_path: Path) -> None:
    busy = {**MACHINE, "others_cpu_pct": 101.0, "others_top": ["python3 18.8s", "cc1 1.2s"]}
    run = result([
        row("novnc", "xterm-typing", 0.10, 8.0, median=11.0),
        row("novnc", "scrolling", 50.0, 20.0) | {"machine": busy},       # noVNC's window busy
        row("staffroom", "xterm-typing", 0.08, 8.0, median=13.0) | {"machine": busy},
        row("staffroom", "scrolling", 5.0, 10.0),
        row("staffroom-nowm", "xterm-typing", 0.08, 8.0, median=12.0),
        row("staffroom-nowm", "scrolling", 4.0, 10.0),
    ])
    table = comparison_table([run], [""])
    # The busy Staffroom window: every figure of it carries the mark, the other variant's none.
    assert cells(table, "xterm-typing", "key-to-pixel median ms") == [
        "≤ noVNC", "11.0", "13.0 (1.18x) ✘ ⚠", "12.0 (1.09x) ✘"]
    assert cells(table, "xterm-typing", "MB received")[2].endswith("✔ ⚠")
    # noVNC's busy window: its own figure and every ratio taken against it.
    assert cells(table, "scrolling", "MB received") == [
        "≤ 0.8x", "50.00 ⚠", "5.00 (0.10x) ✔ ⚠", "4.00 (0.08x) ✔ ⚠"]
    md = markdown(run)
    assert "⚠: other processes used more than 25 % of a core" in md
    # At 20 % of a core (MACHINE) nothing is marked, and there is no legend.
    assert "⚠" not in comparison_table([RUN], [""]) and "⚠" not in markdown(RUN)
    # `python -m bench.report` over several runs explains the mark once, under the table.
    busy_file, clean_file = tmp_path / "busy.json", tmp_path / "clean.json"
    busy_file.write_text(json.dumps(run))
    clean_file.write_text(json.dumps(RUN))
    assert render([clean_file, busy_file]).count("⚠: other processes used more than") == 1
    assert "⚠" not in render([clean_file])


def test_capacity_against_its_aims() -> None:
    cap = {"runs": [
        {"client": "staffroom", "sessions": 1, "sessions_per_core": 8.0,
         "sessions_per_core_with_desktop": 6.0, "gateway_idle_rss_mib": 115.0,
         "gateway_peak_rss_mib": 132.0, "machine": MACHINE},
        {"client": "staffroom", "sessions": 4, "sessions_per_core": 30.0,
         "sessions_per_core_with_desktop": 9.4, "gateway_idle_rss_mib": 143.0,
         "gateway_peak_rss_mib": 200.0, "machine": MACHINE,
         "updates_per_s_per_session": {"typing": 8.14, "scrolling": 4.96}}],
        "memory": {"from_sessions": 1, "to_sessions": 4, "mib_per_session_peak_pss": 21.2,
                   "mib_per_session_peak_rss": 22.5}}
    lines = capacity_table([cap]).splitlines()
    assert "updates/s per session, typing / scrolling" in lines[0]
    # a file from before the frame rates were recorded shows dashes
    assert lines[2] == "| staffroom | 1 | 8.0 ✘ | 6.0 | – / – | 115 / 132 | 1.5 → 2.2 | – |"
    assert lines[3].startswith("| staffroom | 4 | 30.0 ✔ | 9.4 | 8.1 / 5.0 |")
    assert lines[3].endswith("| 21.2 / 22.5 ✘ (N=1→4) |")


def cap_run(client: str, chain: float, scrolling: float, sessions: int = 1,
            peak_rss: float = 130.0) -> dict[str, Any]:
    return {"client": client, "sessions": sessions, "sessions_per_core": chain * 2,
            "sessions_per_core_with_desktop": chain, "gateway_idle_rss_mib": 100.0,
            "gateway_peak_rss_mib": peak_rss, "machine": MACHINE,
            "updates_per_s_per_session": {"typing": 8.0, "scrolling": scrolling}}


def test_capacity_versus_the_first_client_uses_each_clients_mean_over_rounds() -> None:
    runs = [cap_run("novnc", 12.0, 19.0), cap_run("staffroom", 5.0, 10.0),
            cap_run("novnc", 10.0, 21.0), cap_run("staffroom", 4.0, 11.0)]
    [v] = capacity_versus(runs)
    assert (v["client"], v["baseline"], v["sessions"], v["rounds"]) == ("staffroom", "novnc", 1, 2)
    assert v["chain_sessions_per_core"] == 4.5 and v["baseline_chain_sessions_per_core"] == 11.0
    assert v["chain_ratio"] == round(4.5 / 11.0, 2)
    assert v["gateway_sessions_per_core"] == 9.0
    assert v["scrolling_updates_ratio"] == round(10.5 / 20.0, 2)
    table = capacity_versus_table([v]).splitlines()
    assert table[2] == "| staffroom | novnc | 1 | 2 | 4.5 | 11.0 | 0.41x | 10.5 | 20.0 | 0.53x |"


def test_capacity_versus_pairs_equal_session_counts_and_survives_missing_figures() -> None:
    runs = [cap_run("novnc", 12.0, 19.0), cap_run("novnc", 30.0, 18.0, sessions=4),
            cap_run("staffroom", 5.0, 10.0), cap_run("staffroom", 9.0, 9.0, sessions=4)]
    runs[3]["updates_per_s_per_session"] = None  # an older file, or a page that drew nothing
    one, four = capacity_versus(runs)
    assert (one["sessions"], one["chain_ratio"]) == (1, round(5 / 12, 2))
    assert (four["sessions"], four["chain_ratio"]) == (4, 0.3)
    assert four["scrolling_updates_ratio"] is None
    assert "| – | 18.0 | –x |" in capacity_versus_table([four])
    assert capacity_versus([]) == [] and capacity_versus(runs[:2]) == []


def test_capacity_of_several_clients_shows_each_clients_memory_on_its_last_row() -> None:
    mem = {"from_sessions": 1, "to_sessions": 4, "mib_per_session_peak_pss": 16.0,
           "mib_per_session_peak_rss": 17.0}
    cap = {"runs": [cap_run("novnc", 12.0, 19.0), cap_run("staffroom", 5.0, 10.0),
                    cap_run("novnc", 30.0, 18.0, 4), cap_run("staffroom", 9.0, 9.0, 4)],
           "memory": {"novnc": None, "staffroom": mem}}
    lines = capacity_table([cap]).splitlines()[2:]
    assert [line.split(" | ")[0] for line in lines] == ["| novnc", "| staffroom"] * 2
    assert lines[3].endswith("| 16.0 / 17.0 ✔ (N=1→4) |")
    assert all(line.endswith("| – |") for line in lines[:3])


def test_render_reads_files_and_needs_one_label_per_run(tmp_path: Path) -> None:
    a, b, cap = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "capacity.json"
    a.write_text(json.dumps(RUN))
    b.write_text(json.dumps(RUN))
    cap.write_text(json.dumps({"runs": [], "memory": None}))
    text = render([a, b, cap], ["before", "after"])
    assert "staffroom before" in text and "staffroom after" in text
    assert "sessions / core, gateway (aim ≥ 25, goal 40)" in text
    assert "staffroom a " not in text
    assert "staffroom a" in render([a, b])  # without labels, the file names
    with pytest.raises(SystemExit, match="one label per file"):
        render([a, b], ["before"])


def test_every_client_runs_by_default_and_the_probe_belongs_to_the_xterm() -> None:
    args = parse_args([])
    assert args.clients == ["novnc", "staffroom", "staffroom-nowm"]
    assert {"xterm-typing", "xterm-scroll", "typing", "scrolling", "browser-scroll", "window-drag",
            "window-drag-page", "photo", "photo-still", "idle"} == set(args.workloads)
    assert probe_workload(["typing", "xterm-typing"]) == "xterm-typing"
    assert probe_workload(["typing", "idle"]) == "typing"
    assert probe_workload(["photo"]) is None


def test_the_raw_table_splits_key_to_pixel_at_the_pages_first_message() -> None:
    """summarize_latency keeps the part after the page's first WebSocket message (the client's
    decode and draw); the all-figures table shows it, and "–" for runs made before it."""
    from bench.measure import summarize_latency
    from bench.report import raw_table

    lat = summarize_latency([10.0, 12.0, 30.0], 0, tail=[0.5, 0.7, 0.9])
    assert (lat.median_ms, lat.tail_median_ms) == (12.0, 0.7)
    assert summarize_latency([], 3, tail=[]).tail_median_ms is None
    with_tail = row("staffroom", "xterm-typing", 0.1, 8.0, median=12.0)
    with_tail["latency"]["tail_median_ms"] = 0.7
    table = raw_table(result([with_tail, row("novnc", "xterm-typing", 0.1, 8.0, median=11.0)]))
    assert "of it, message → draw ms" in table.splitlines()[0]
    assert "| 12.00 | 24.00 | 0.70 |" in table
    assert "| 11.00 | 22.00 | – |" in table  # an older run's row: no split recorded
