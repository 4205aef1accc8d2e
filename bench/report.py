"""The results as Markdown, with issue 11's aims beside each figure:
`python -m bench.report RUN.json [RUN2.json ...] [--labels before after] [CAPACITY.json ...]`.

Input: result files this bench wrote (`bench.run` and `bench.capacity` JSON); only read, never
trusted for more than their numbers. One run file gives one column per client; several (e.g. the
"before" and "after" of a change) give those columns per run, side by side, each Staffroom
variant as a ratio to noVNC *from the same run*. Pure functions of the JSON: unit-tested.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE = "novnc"

# Issue 11, with the watermark on, as ratios to noVNC in one run.
BYTES_AIM = {"xterm-typing": 1.0, "xterm-scroll": 1.0, "window-drag": 1.0,
             "window-drag-page": 1.0, "scrolling": 0.8, "photo": 0.3}
UPDATES_AIM = 1.0  # visible updates per second, at least noVNC's (every workload but idle)
LATENCY_AIM = 1.0  # key-to-pixel median at most noVNC's
IDLE_AIM_BYTES_PER_S = 1000.0  # under 1 KB/s while nothing happens
SESSIONS_PER_CORE_AIM, SESSIONS_PER_CORE_GOAL = 25.0, 40.0  # office mix, one session
MIB_PER_SESSION_AIM = 20.0  # per active 1080p session
# Other processes using more than this much of a core during a measured window make its figures
# suspect (a build or a replay beside the bench, another engineer's run): the aims table marks
# them, and the ratios of a Staffroom variant whose noVNC window was disturbed too.
DISTURBED_OTHERS_PCT = 25.0
DISTURBED = "⚠"


@dataclass(frozen=True, slots=True)
class Check:
    """One figure against its aim: ``value`` compared with ``limit`` (at most / at least)."""

    value: float | None
    limit: float
    at_most: bool

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    @property
    def mark(self) -> str:
        return {True: "✔", False: "✘", None: "?"}[self.passed]


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs; None when either is missing or noVNC's figure is zero."""
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def ratios(rows: list[dict[str, Any]], ours: str, theirs: str = REFERENCE) -> list[dict[str, Any]]:
    """ours/theirs per workload and metric (a ratio below 1 means Staffroom used less)."""
    by = {(r["client"], r["workload"]): r for r in rows}
    out = []
    for (client, workload), a in by.items():
        b = by.get((theirs, workload))
        if client != ours or b is None:
            continue
        entry: dict[str, Any] = {"workload": workload}
        pairs = [(k, a[k], b[k]) for k in ("bytes_received", "updates_per_s", "gateway_cpu_s",
                                           "gateway_peak_rss_mib", "gateway_peak_pss_mib")]
        if a["latency"] and b["latency"]:
            pairs += [(f"latency_{k}", a["latency"][k], b["latency"][k])
                      for k in ("median_ms", "p95_ms")]
        for key, x, y in pairs:
            r = ratio(x, y)
            entry[key] = None if r is None else round(r, 3)
        out.append(entry)
    return out


def variants(result: dict[str, Any]) -> list[str]:
    """The clients compared with noVNC, in the order they ran."""
    seen: list[str] = []
    for r in result["results"]:
        if r["client"] != REFERENCE and r["client"] not in seen:
            seen.append(r["client"])
    return seen


def workloads(results: Sequence[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for result in results:
        for r in result["results"]:
            if r["workload"] not in seen:
                seen.append(r["workload"])
    return seen


def _row(result: dict[str, Any], client: str, workload: str) -> dict[str, Any] | None:
    return next((r for r in result["results"]
                 if r["client"] == client and r["workload"] == workload), None)


def _median(row: dict[str, Any] | None) -> float | None:
    return (row.get("latency") or {}).get("median_ms") if row else None


def _bytes_per_s(row: dict[str, Any]) -> float:
    return row["bytes_received"] / row["seconds"] if row["seconds"] else 0.0


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def compare_cell(ours: float | None, theirs: float | None, limit: float | None, at_most: bool,
                 digits: int = 2, disturbed: bool = False) -> str:
    """'0.05 (0.72x) ✔': the figure, its ratio to noVNC's and, where there is an aim, pass/miss;
    ' ⚠' after it when this window or noVNC's was disturbed (``disturbed``)."""
    if ours is None:
        return "–"
    r = ratio(ours, theirs)
    text = _num(ours, digits) + ("" if r is None else f" ({r:.2f}x)")
    if limit is not None and r is not None:
        # Judged as shown (two decimals): 0.998x of noVNC's updates is "1.00x", within any noise.
        text = f"{text} {Check(round(r, 2), limit, at_most).mark}"
    return f"{text} {DISTURBED}" if disturbed else text


def disturbed(row: dict[str, Any] | None) -> bool:
    """Whether other processes used more than DISTURBED_OTHERS_PCT of a core in this window."""
    machine = (row or {}).get("machine") or {}
    return float(machine.get("others_cpu_pct", 0.0)) > DISTURBED_OTHERS_PCT


def comparison_rows(result: dict[str, Any], workload: str, clients: Sequence[str]
                    ) -> list[tuple[str, str, list[str]]]:
    """(metric, aim, one cell per client) for one workload of one run; noVNC's cell is its own
    figure, the others' are figure (ratio) pass/miss."""
    ref = _row(result, REFERENCE, workload)
    rows = [_row(result, c, workload) for c in clients]
    out: list[tuple[str, str, list[str]]] = []

    def line(label: str, aim: str, get: Any, limit: float | None, at_most: bool,
             digits: int = 2) -> None:
        theirs = get(ref) if ref else None
        cells = [((_num(get(r), digits) + (f" {DISTURBED}" if disturbed(r) else "")) if r
                  else "–") if c == REFERENCE
                 else compare_cell(get(r) if r else None, theirs, limit, at_most, digits,
                                   disturbed(r) or disturbed(ref))
                 for c, r in zip(clients, rows, strict=True)]
        out.append((label, aim, cells))

    if workload == "idle":
        def idle_cell(r: dict[str, Any] | None) -> str:
            if r is None:
                return "–"
            bps = _bytes_per_s(r)
            mark = "" if r["client"] == REFERENCE else \
                " " + Check(bps, IDLE_AIM_BYTES_PER_S, True).mark
            return f"{bps:.0f}{mark}"
        out.append(("bytes/s", "< 1 KB/s", [idle_cell(r) for r in rows]))
        return out
    limit = BYTES_AIM.get(workload)
    line("MB received", "–" if limit is None else f"≤ {limit:.1f}x",
         lambda r: r["bytes_received"] / 1e6, limit, True)
    line("updates/s", f"≥ {UPDATES_AIM:.1f}x", lambda r: r["updates_per_s"], UPDATES_AIM, False,
         1)
    if any(_median(r) is not None for r in [ref, *rows]):
        line("key-to-pixel median ms", "≤ noVNC", _median, LATENCY_AIM, True, 1)
    line("gateway CPU % of a core", "–", lambda r: r["gateway_cpu_pct"], None, True, 1)
    return out


def comparison_table(results: Sequence[dict[str, Any]], labels: Sequence[str]) -> str:
    """The aims table: one column group per run (noVNC, then each Staffroom variant)."""
    groups = [(result, [REFERENCE, *variants(result)]) for result in results]
    head = ["workload", "metric", "aim"]
    for label, (_, clients) in zip(labels, groups, strict=True):
        head += [f"{c} {label}".strip() for c in clients]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for workload in workloads(results):
        per_run = [comparison_rows(result, workload, clients) for result, clients in groups]
        for i, (metric, aim, _) in enumerate(per_run[0]):
            cells: list[str] = []
            for run_rows, (_, clients) in zip(per_run, groups, strict=True):
                cells += run_rows[i][2] if i < len(run_rows) else ["–"] * len(clients)
            lines.append(f"| {workload} | {metric} | {aim} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_table(result: dict[str, Any]) -> str:
    """The machine's load during each measured window (other people's work shares the cores)."""
    lines = ["| workload | client | load avg 1 min (start → end) | all CPUs busy % | "
             "other processes' CPU % of a core | busiest others |",
             "|---|---|---|---:|---:|---|"]
    for r in result["results"]:
        m = r.get("machine")
        if not m:
            continue
        lines.append(f"| {r['workload']} | {r['client']} | {m['loadavg_start']:.2f} → "
                     f"{m['loadavg_end']:.2f} | {m['cpu_busy_pct']:.0f} | "
                     f"{m['others_cpu_pct']:.0f} | {', '.join(m['others_top']) or '–'} |")
    return "\n".join(lines)


def raw_table(result: dict[str, Any]) -> str:
    lines = ["| workload | client | MB received | kbit/s | updates/s | latency median ms | "
             "latency p95 ms | of it, message → draw ms | gateway CPU s | gateway CPU % | "
             "gateway peak RSS MiB | gateway peak PSS MiB | Xvnc CPU s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["results"]:
        lat = r["latency"] or {}
        lines.append(
            f"| {r['workload']} | {r['client']} | {r['bytes_received'] / 1e6:.2f} | "
            f"{r['kbit_per_s']:.0f} | {r['updates_per_s']:.1f} | {_num(lat.get('median_ms'))} | "
            f"{_num(lat.get('p95_ms'))} | {_num(lat.get('tail_median_ms'))} | "
            f"{r['gateway_cpu_s']:.2f} | {r['gateway_cpu_pct']:.1f} | "
            f"{r['gateway_peak_rss_mib']:.1f} | {r['gateway_peak_pss_mib']:.1f} | "
            f"{r['xvnc_cpu_s']:.2f} |")
    return "\n".join(lines)


def _disturbed_note(result: dict[str, Any]) -> list[str]:
    """The legend of ⚠, when some window of the run carries it."""
    if not any(disturbed(r) for r in result["results"]):
        return []
    return [f"{DISTURBED}: other processes used more than {DISTURBED_OTHERS_PCT:.0f} % of a core "
            "during that window, or during noVNC's window of the same workload (see the machine "
            "load below): measure it again before quoting it.", ""]


def _animations(meta: dict[str, Any]) -> str:
    """Runs from before issue 11 part AR record nothing: their desktops animated."""
    return "on" if meta.get("desktop_animations", True) else "off (as shipped)"


def _pointer(meta: dict[str, Any]) -> str:
    """Runs from before issue 11 part AS record nothing: Xvnc drew the pointer into them."""
    return ("each client's page put its mouse on the desktop's pointer before every workload"
            if meta.get("pointer_in_page", False) else
            "left to the desktop (xdotool's), so Xvnc drew it into every client's pixels")


def markdown(result: dict[str, Any]) -> str:
    """The Markdown file written next to each run's JSON."""
    m = result["meta"]
    return "\n".join([
        f"# Benchmark {m['started']}", "",
        f"Desktop {m['geometry']} Xvnc ({m['xvnc']}), Chromium {m['chromium']}, "
        f"{m['duration_s']} s per workload, {m['cpus']} CPUs. noVNC {m.get('novnc', '?')}. "
        f"Staffroom's {m.get('display_path', 'display path: not recorded')}. "
        f"Desktop for Staffroom: {m.get('staffroom_desktop', 'shared with noVNC')}. "
        f"GTK animations {_animations(m)} in every client's desktop. The pointer: "
        f"{_pointer(m)}.", "",
        "Aims (issue 11, watermark on) as ratios to noVNC from this run; ✔ met, ✘ missed:", "",
        comparison_table([result], [""]), "", *_disturbed_note(result),
        "Machine load during each measurement:", "", load_table(result), "",
        "All figures:", "", raw_table(result), ""])


def capacity_table(captures: Sequence[dict[str, Any]]) -> str:
    """`bench.capacity` files: sessions per core and MiB per extra session against the aims."""
    lines = [f"| client | sessions | sessions / core, gateway (aim ≥ {SESSIONS_PER_CORE_AIM:.0f},"
             f" goal {SESSIONS_PER_CORE_GOAL:.0f}) | sessions / core, gateway + Xvnc | "
             "updates/s per session, typing / scrolling | "
             "gateway RSS idle / peak MiB | load avg 1 min | MiB per extra active session, peak "
             f"PSS / RSS (aim ≤ {MIB_PER_SESSION_AIM:.0f}) |",
             "|---|---:|---:|---:|---|---|---|---|"]
    for cap in captures:
        runs = cap["runs"]
        for i, r in enumerate(runs):
            mem = _memory_of(cap.get("memory"), r["client"])
            last = all(o["client"] != r["client"] for o in runs[i + 1:])
            spc = r["sessions_per_core"]
            core = f"{_num(spc, 1)} {Check(spc, SESSIONS_PER_CORE_AIM, False).mark}"
            m = r.get("machine")
            load = f"{m['loadavg_start']:.1f} → {m['loadavg_end']:.1f}" if m else "–"
            per = "–"
            if mem and last:
                pss, rss = mem["mib_per_session_peak_pss"], mem["mib_per_session_peak_rss"]
                per = (f"{pss:.1f} / {rss:.1f} {Check(pss, MIB_PER_SESSION_AIM, True).mark} "
                       f"(N={mem['from_sessions']}→{mem['to_sessions']})")
            ups = r.get("updates_per_s_per_session") or {}  # older files: not recorded
            rate = " / ".join(_num(ups.get(w), 1) for w in ("typing", "scrolling"))
            lines.append(f"| {r['client']} | {r['sessions']} | {core} | "
                         f"{_num(r['sessions_per_core_with_desktop'], 1)} | {rate} | "
                         f"{r['gateway_idle_rss_mib']:.0f} / {r['gateway_peak_rss_mib']:.0f} | "
                         f"{load} | {per} |")
    return "\n".join(lines)


def _memory_of(memory: dict[str, Any] | None, client: str) -> dict[str, Any] | None:
    """A capture's per-extra-session memory for one client: files of one client hold it as is,
    files of several clients per client name."""
    if not memory or "from_sessions" in memory:
        return memory
    return memory.get(client)


def capacity_versus(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every other client against the first (noVNC, the baseline), per session count, from runs
    of one `bench.capacity` invocation; each client's mean over its rounds.

    The fair figure is the whole chain: with noVNC, Xvnc encodes (Tight) and websockify relays;
    with Staffroom, Xvnc sends Raw and the gateway encodes. So ``chain`` compares sessions per
    core of gateway + Xvnc, and ``scrolling_updates`` the frames each drew per second (a chain
    that draws fewer frames does less work)."""
    if not runs:
        return []
    base = runs[0]["client"]

    def mean(client: str, n: int, get: Any) -> float | None:
        vals = [get(r) for r in runs if r["client"] == client and r["sessions"] == n]
        vals = [v for v in vals if v]
        return sum(vals) / len(vals) if vals else None

    def chain(r: dict[str, Any]) -> float | None:
        return r.get("sessions_per_core_with_desktop")

    def gateway(r: dict[str, Any]) -> float | None:
        return r.get("sessions_per_core")

    def scrolling(r: dict[str, Any]) -> float | None:
        return (r.get("updates_per_s_per_session") or {}).get("scrolling")

    out = []
    clients = list(dict.fromkeys(r["client"] for r in runs))
    for n in dict.fromkeys(r["sessions"] for r in runs):
        theirs = {k: mean(base, n, f) for k, f in (("chain", chain), ("scroll", scrolling))}
        for client in clients[1:]:
            ours = {k: mean(client, n, f) for k, f in
                    (("chain", chain), ("scroll", scrolling), ("gateway", gateway))}
            rounds = sum(r["client"] == client and r["sessions"] == n for r in runs)
            out.append({
                "client": client, "baseline": base, "sessions": n, "rounds": rounds,
                "chain_sessions_per_core": _round(ours["chain"], 1),
                "baseline_chain_sessions_per_core": _round(theirs["chain"], 1),
                "chain_ratio": _ratio(ours["chain"], theirs["chain"]),
                "gateway_sessions_per_core": _round(ours["gateway"], 1),
                "scrolling_updates_per_s": _round(ours["scroll"], 2),
                "baseline_scrolling_updates_per_s": _round(theirs["scroll"], 2),
                "scrolling_updates_ratio": _ratio(ours["scroll"], theirs["scroll"]),
            })
    return out


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


def capacity_versus_table(versus: Sequence[dict[str, Any]]) -> str:
    """capacity_versus as markdown: sessions per core of the whole chain, as a ratio to the
    baseline's in the same run (above 1: more sessions per core than noVNC)."""
    lines = ["| client | vs | sessions | rounds | sessions / core, gateway + Xvnc | "
             "the baseline's | ratio | scrolling updates/s | the baseline's | ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in versus:
        lines.append(
            f"| {v['client']} | {v['baseline']} | {v['sessions']} | {v['rounds']} | "
            f"{_num(v['chain_sessions_per_core'], 1)} | "
            f"{_num(v['baseline_chain_sessions_per_core'], 1)} | "
            f"{_num(v['chain_ratio'])}x | {_num(v['scrolling_updates_per_s'], 1)} | "
            f"{_num(v['baseline_scrolling_updates_per_s'], 1)} | "
            f"{_num(v['scrolling_updates_ratio'])}x |")
    return "\n".join(lines)


def render(paths: Sequence[Path], labels: Sequence[str] | None = None) -> str:
    """What `python -m bench.report` prints for these files."""
    data = [json.loads(p.read_text()) for p in paths]
    runs = [(p, d) for p, d in zip(paths, data, strict=True) if "results" in d]
    captures = [d for d in data if "runs" in d]
    out: list[str] = []
    if runs:
        names = list(labels) if labels else \
            ([""] if len(runs) == 1 else [p.stem for p, _ in runs])
        if len(names) != len(runs):
            raise SystemExit(f"{len(names)} labels for {len(runs)} bench.run files: "
                             "give one label per file.")
        out.append(comparison_table([d for _, d in runs], names))
        notes = [_disturbed_note(d) for _, d in runs]
        out += next((["", *note[:-1]] for note in notes if note), [])
        for name, (p, d) in zip(names, runs, strict=True):
            m = d["meta"]
            out += ["", f"{name or p.name}: {m['duration_s']} s per workload, "
                        f"{m['cpus']} CPUs, started {m['started']}; machine load:", "",
                    load_table(d)]
    if captures:
        out += (["", ""] if out else []) + [capacity_table(captures)]
        versus = [v for cap in captures for v in cap.get("versus") or []]
        if versus:
            out += ["", capacity_versus_table(versus)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path,
                   help="bench.run and/or bench.capacity JSON files (bench/results/)")
    p.add_argument("--labels", nargs="+", help="one name per bench.run file (e.g. before after)")
    args = p.parse_args(argv)
    for f in args.files:
        if not f.is_file():
            raise SystemExit(f"{f} is not a file: give bench.run or bench.capacity JSON results "
                             "(bench/results/*.json).")
    print(render(args.files, args.labels), end="")


if __name__ == "__main__":
    main()
