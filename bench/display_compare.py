"""``bench.display_cpu compare``: the working tree's gateway/ against a baseline's, replayed.

Runs ``bench.display_cpu replay`` in subprocesses, alternating the working tree's gateway/ with
``baseline``'s (a git revision, exported with `git archive` into a temporary directory put first
on PYTHONPATH), ``rounds`` times each, and keeps the best (least CPU) round per side: least CPU
is the least disturbed by other processes on a shared machine. Both sides run the display path
from source (STAFFROOM_PURE_PYTHON): an exported baseline has no compiled modules, so a compiled
working tree would win by the build, not by the change (gateway.display.compiled).

Nothing here is attacker-facing: the recording is the bench's own file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(__file__).resolve().with_name("display_cpu.py")  # run by path: see its sys.path


def run_side(rec: Path, gateway_root: Path | None, memory: bool, workloads: list[str],
             clean_start: bool = False) -> dict[str, object]:
    env = dict(os.environ, STAFFROOM_PURE_PYTHON="1")
    if gateway_root is not None:
        env["PYTHONPATH"] = str(gateway_root) + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, str(CLI), "replay", str(rec), "--json"]
    if memory:
        argv.append("--memory")
    if workloads:
        argv += ["--workloads", *workloads]
    if clean_start:
        argv.append("--clean-start")
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"replay failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def compare(rec: Path, baseline: str, rounds: int, workloads: list[str], memory: bool,
            clean_start: bool = False) -> dict[str, object]:
    from bench.baseline import alternate, baseline_tree  # the parent's side only

    with baseline_tree(baseline, "display-cpu-") as tmp:
        def side_root(side: str) -> Path | None:
            return tmp if side == "before" else None

        sides = alternate(rounds, lambda side: run_side(rec, side_root(side), False, workloads,
                                                        clean_start))
        mem = {side: run_side(rec, side_root(side), True, workloads, clean_start)
               for side in ("before", "after")} if memory else {}  # fmt: skip
    best = {side: min(runs, key=lambda r: r["office_mix"]["cpu_s"])  # type: ignore[index]
            for side, runs in sides.items()}
    return {"baseline": baseline, "rounds": rounds, "recording": str(rec),
            "clean_start": clean_start, "load": os.getloadavg(), "before": best["before"],
            "after": best["after"],
            "all_cpu": {s: [r["office_mix"]["cpu_s"] for r in runs]  # type: ignore[index]
                        for s, runs in sides.items()},
            "memory": {s: m["memory"] for s, m in mem.items()} or None}


def markdown(result: dict[str, object]) -> str:
    b, a = result["before"], result["after"]
    lines = ["| workload | s | before CPU s | after CPU s | before s/min | after s/min | "
             "before KB out | after KB out |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in a["workloads"].items():  # type: ignore[index]
        old = b["workloads"].get(name)  # type: ignore[index]
        if old is None or not row["seconds"]:
            continue
        lines.append(f"| {name} | {row['seconds']:.1f} | {old['cpu_s']:.2f} | {row['cpu_s']:.2f} "
                     f"| {old['cpu_s_per_min']:.2f} | {row['cpu_s_per_min']:.2f} "
                     f"| {old['bytes_out'] / 1e3:.1f} | {row['bytes_out'] / 1e3:.1f} |")
    bm, am = b["office_mix"], a["office_mix"]  # type: ignore[index]
    lines.append(f"\nOffice mix (typing + scrolling): {bm['cpu_s_per_min']} → "
                 f"{am['cpu_s_per_min']} CPU s per minute of session; display path alone "
                 f"{bm['sessions_per_core']} → {am['sessions_per_core']} sessions per core.")
    mem = result["memory"]
    if mem:
        lines.append(f"Memory (tracemalloc; VmHWM growth): before {mem['before']}, "  # type: ignore[index]
                     f"after {mem['after']}.")  # type: ignore[index]
    lines.append(f"All rounds' office-mix CPU s: {result['all_cpu']}; load {result['load']}.")
    return "\n".join(lines)
