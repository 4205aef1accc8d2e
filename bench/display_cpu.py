"""CPU and memory of the gateway's display path, offline and deterministic: `bench.display_cpu`.

    python -m bench.display_cpu record [--duration 20] [--workloads typing scrolling ...] [--out F]
    python -m bench.display_cpu replay F [--profile OUT.prof] [--memory] [--json] [--clean-start]
    python -m bench.display_cpu compare F [--baseline main] [--rounds 2] [--clean-start]

``record`` starts the bench desktop (bench.desktop: Xvnc 1920x1080 + openbox), runs the
workloads one after the other and saves every byte Xvnc sends to one RFB client, with the time
it arrived and a marker where each workload starts. The client asks for ZRLE (a compact file:
tens of MB, not the GBs Raw would take) and runs the real pipeline and encoder between updates,
so Xvnc's updates arrive at the pace a gateway asks for them.

``replay`` decodes that file (untimed) and turns every update back into the Raw + CopyRect +
Cursor update a gateway on the desktop's host receives (LOOPBACK_ENCODINGS), then times, per
update, exactly what a live session does on its display path: the RFB client parsing the Raw
bytes into the Framebuffer (fed in the connection's READ_SIZE chunks), the pipeline's
take_frame (damage, scroll detection, watermark bookkeeping, snapshots), encode_frame, and the
viewer's Ack (sent back at once). The watermark is the default policy's (template and opacity of
policies/default.toml), at a fixed clock that changes minute 30 s into the replay, in UTC: the
same bytes in, the same work done, on every run. CPU is process time (the whole path runs in
this one thread). ``--memory`` adds tracemalloc: what the session's objects hold at the end and
the largest transient allocation of one update (Python and numpy allocations; Pillow's image
buffers are not traced, so the process's VmHWM growth is reported beside it). By default the
workloads run on in one session, as a teacher's would, so each starts from the watermark's
drift map the one before left; ``--clean-start`` starts each from a key frame instead (as after
a reconnect, tallied apart as "(clean start)"), so that a change's per-workload figures compare.

``compare`` runs ``replay`` in subprocesses, alternating the working tree's gateway/ with
``--baseline``'s (a git revision, exported with `git archive` into a temporary directory put
first on PYTHONPATH), ``--rounds`` times each, and prints the best (least CPU) round per side:
least CPU is the least disturbed by other processes on a shared machine.

This module is the command line; the work is in bench.display_record (the file format and
``record``), bench.display_replay and bench.display_compare.

Nothing here is attacker-facing: the recording is the bench's own file.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # run by path (compare's subprocesses): gateway may come first

from bench.display_compare import compare, markdown  # noqa: E402
from bench.display_record import DEFAULT_WORKLOADS, record  # noqa: E402
from bench.display_replay import OFFICE_MIX, replay, summary  # noqa: E402

CLEAN_HELP = ("each workload starts from a key frame, as after a reconnect (its figures then "
              "do not depend on the workload before it); the key frames are counted apart")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.display_cpu", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--duration", type=float, default=20.0)
    rec.add_argument("--workloads", nargs="+", default=list(DEFAULT_WORKLOADS))
    rec.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "office.rfbrec")
    rep = sub.add_parser("replay")
    rep.add_argument("recording", type=Path)
    rep.add_argument("--profile", type=Path)
    rep.add_argument("--profile-workloads", nargs="+", default=list(OFFICE_MIX))
    rep.add_argument("--memory", action="store_true")
    rep.add_argument("--workloads", nargs="+", default=[], help="stop once these have ended")
    rep.add_argument("--json", action="store_true")
    rep.add_argument("--clean-start", action="store_true", help=CLEAN_HELP)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("recording", type=Path)
    cmp_.add_argument("--baseline", default="main")
    cmp_.add_argument("--rounds", type=int, default=2)
    cmp_.add_argument("--out", type=Path)
    cmp_.add_argument("--workloads", nargs="+", default=list(OFFICE_MIX),
                      help="replay until these have ended ('all': the whole recording)")
    cmp_.add_argument("--memory", action="store_true", help="one more run each with tracemalloc")
    cmp_.add_argument("--clean-start", action="store_true", help=CLEAN_HELP)
    args = parser.parse_args()
    if args.cmd == "record":
        asyncio.run(record(args.out, args.workloads, args.duration))
    elif args.cmd == "replay":
        prof = cProfile.Profile() if args.profile else None
        result = summary(replay(args.recording, profile=prof, memory=args.memory,
                                profiled=tuple(args.profile_workloads),
                                workloads=tuple(args.workloads),
                                clean_start=args.clean_start))
        print(json.dumps(result, indent=None if args.json else 2))
        if prof is not None:
            prof.dump_stats(args.profile)
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    else:
        wl = [] if args.workloads == ["all"] else args.workloads
        result = compare(args.recording, args.baseline, args.rounds, wl, args.memory,
                         clean_start=args.clean_start)
        text = markdown(result)
        print(text)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            args.out.with_suffix(".md").write_text(text + "\n")


if __name__ == "__main__":
    main()
