"""Where a live gateway's CPU goes, stage by stage: `python -m bench.stage_cpu`.

Runs bench.capacity's office mix (typing, then GTK scrolling, ``--duration`` seconds each) for
one Staffroom session, with a hook in the gateway process (bench/stage_hook/sitecustomize.py,
loaded through PYTHONPATH) that adds each call's CPU time on the calling thread
(time.thread_time) to its stage. Per workload it prints the cores each stage kept busy, and the
rest: the process's CPU that no stage holds (the event loop, the tasks' hand-offs, TLS reads, the
kernel's copies of the socket reads, timers), as

    stage core-s/s = (stage total at the window's end - at its start) / wall seconds

Stages (STAGES; ``take.*`` are parts of ``take``, which is part of ``machine``):

    parse      RfbClient.next_event: the desktop's updates into the framebuffer
    machine    SessionMachine.handle: the session's decisions, with take_frame inside
    take       DisplayPipeline.take_frame: scroll detection, the stamps, the snapshot
    encode     the frame's encoding (inline or on the encoder threads)
    send       aiohttp's websocket write: framing, TLS, the socket write
    record     the recording's append (hash chain)
    receive    RfbStream.buffer_updated: the socket's bytes handed to the parser

Why not a sampling profiler: py-spy, as parts AO and AP used it, pauses the process for every
sample (or reads it while it runs, with --nonblocking, and then counts a thread blocked in a
system call as busy), and its samples of the encoder threads were few. On the same GTK scroll it
put encoding at 4 % of the gateway and scroll detection at 23 %; the threads' own clocks say 36 %
and 14 % (docs/PERFORMANCE.md, issue 11 part AQ).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import bench.capacity as capacity
from bench.desktop import add_animations_option, add_staffroom_desktop_option
from bench.run import RESULTS_DIR

HOOK_DIR = Path(__file__).with_name("stage_hook")
LOG_ENV = "STAFFROOM_STAGE_LOG"
STAGES_ENV = "STAFFROOM_STAGES"  # the stages, as JSON, for the hook
#: stage -> (module, class or "", function), as the hook wraps them.
STAGES: dict[str, tuple[str, str, str]] = {
    "parse": ("gateway.rfb.client", "RfbClient", "next_event"),
    "machine": ("gateway.live.session_machine", "SessionMachine", "handle"),
    "take": ("gateway.display.pipeline", "DisplayPipeline", "take_frame"),
    "take.detect": ("gateway.display.pipeline", "DisplayPipeline", "_detect_scroll"),
    "take.hash": ("gateway.display.scroll", "RowHashes", "_hash_into"),
    "take.settle": ("gateway.display.canvas_stamps", "CanvasStamps", "settle"),
    "take.snapshot": ("gateway.display.pipeline", "", "snapshot"),
    "encode": ("gateway.monitoring.metrics", "Metrics", "timed_encode"),
    "send": ("aiohttp._websocket.writer", "WebSocketWriter", "_write_websocket_frame"),
    "record": ("gateway.recording.writer", "RecordingWriter", "write_frame"),
    "receive": ("gateway.rfb.stream", "RfbStream", "buffer_updated"),
}
#: Stages that hold no other (their sum and the rest make the process's CPU).
DISJOINT = ("parse", "machine", "encode", "send", "record", "receive")


def rates(lines: list[dict[str, float]], start: float, end: float) -> dict[str, float]:
    """Cores each stage kept busy within wall times ``start`` .. ``end``, from the hook's
    cumulative lines (between the first and the last line inside the window: it loses at most
    the hook's half second at each end), with ``process`` and ``rest``."""
    inside = [line for line in lines if start <= line["_wall"] <= end]
    if len(inside) < 2:
        raise ValueError("the hook wrote no figures for the window (was the gateway hooked?)")
    first, last = inside[0], inside[-1]
    wall = last["_wall"] - first["_wall"]
    out = {stage: round((last.get(stage, 0.0) - first.get(stage, 0.0)) / wall, 5)
           for stage in STAGES}
    out["process"] = round((last["_process"] - first["_process"]) / wall, 5)
    out["rest"] = round(out["process"] - sum(out[s] for s in DISJOINT), 5)
    return out


async def measure(duration: float, staffroom_desktop: str, animations: bool = False
                  ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="staffroom-stage-cpu-") as tmp:
        log_path = Path(tmp) / "stages.jsonl"
        saved = {k: os.environ.get(k) for k in (LOG_ENV, STAGES_ENV, "PYTHONPATH")}
        os.environ[LOG_ENV] = str(log_path)
        os.environ[STAGES_ENV] = json.dumps(STAGES)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(HOOK_DIR), *filter(None, [saved["PYTHONPATH"]])])
        try:
            run = await capacity.measure("staffroom", 1, duration, staffroom_desktop,
                                         animations=animations)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        lines = [json.loads(line) for line in log_path.read_text().splitlines()] \
            if log_path.exists() else []
    stages = {name: rates(lines, *span) for name, span in run["windows"].items()}
    return {"run": run, "stages": stages}


def table(stages: dict[str, dict[str, float]]) -> str:
    names = list(stages)
    rows = [f"| stage | {' | '.join(names)} |", f"|---|{'---:|' * len(names)}"]
    for stage in [*STAGES, "rest", "process"]:
        cells = []
        for name in names:
            value, total = stages[name][stage], stages[name]["process"]
            cells.append(f"{value:.4f} ({100 * value / total:.0f} %)" if total else f"{value:.4f}")
        rows.append(f"| {stage} | {' | '.join(cells)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.stage_cpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per mix part (20)")
    add_staffroom_desktop_option(p)
    add_animations_option(p)
    p.add_argument("--out", help="JSON path (default bench/results/stage-cpu-<time>.json)")
    args = p.parse_args(argv)
    result = asyncio.run(measure(args.duration, args.staffroom_desktop, args.desktop_animations))
    out = Path(args.out) if args.out else \
        RESULTS_DIR / f"stage-cpu-{time.strftime('%Y-%m-%dT%H-%M-%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(table(result["stages"]) + "\n")
    run = result["run"]
    print(f"results: {out}")
    print(f"gateway, as bench.capacity measures it: {run['cpu_per_session_by_workload']} "
          f"core-s/s; frames drawn a second: {run['updates_per_s_per_session']}")
    print()
    print(table(result["stages"]))


if __name__ == "__main__":
    main()
