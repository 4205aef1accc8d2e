"""The frozen agent's footprint: size on disk and the time to `staffroom-agent --version`, cold
(page cache dropped before each run, needs root) and warm (median of runs after a warm-up).

    .venv/bin/python -m bench.agent_bundle [--bundle OUT_DIR/staffroom-agent] [--runs 7]

Without --bundle it builds one with `bash packaging/build-agent` into a temporary folder.
Figures go to stdout as a table and JSON; docs/PERFORMANCE.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def disk_usage(folder: Path) -> tuple[int, int, int]:
    """(bytes on disk as du counts them, apparent bytes, files)."""
    du = subprocess.run(["du", "-s", "-B1", str(folder)], capture_output=True, text=True,
                        check=True).stdout.split()[0]
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return int(du), sum(p.stat().st_size for p in files), len(files)


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    bundle = args.bundle
    if bundle is None:
        out = Path(tempfile.mkdtemp(prefix="staffroom-bench-agent-"))
        subprocess.run(["bash", "packaging/build-agent", str(out)], cwd=ROOT, check=True)
        bundle = out / "staffroom-agent"
    exe = [str(bundle / "staffroom-agent"), "--version"]
    on_disk, apparent, files = disk_usage(bundle)
    cold = []
    for _ in range(args.runs):
        if not drop_caches():
            print("cannot drop the page cache (not root?): no cold figure", file=sys.stderr)
            break
        cold.append(timed(exe))
    timed(exe)
    warm = [timed(exe) for _ in range(args.runs)]
    venv = [str(Path(sys.executable).with_name("staffroom-agent")), "--version"]
    timed(venv)
    warm_venv = [timed(venv) for _ in range(args.runs)]
    result = {
        "bundle": str(bundle), "disk_bytes": on_disk, "apparent_bytes": apparent,
        "files": files, "runs": args.runs,
        "cold_median_s": statistics.median(cold) if cold else None,
        "cold_max_s": max(cold) if cold else None,
        "warm_median_s": statistics.median(warm), "warm_max_s": max(warm),
        "venv_warm_median_s": statistics.median(warm_venv),
        "load_average": os.getloadavg()[0],
    }
    print(f"bundle on disk      {on_disk / 2**20:.1f} MiB ({apparent / 2**20:.1f} MiB in "
          f"{files} files)")
    if cold:
        print(f"--version cold      median {result['cold_median_s']:.2f} s, "
              f"max {result['cold_max_s']:.2f} s ({len(cold)} runs, page cache dropped)")
    print(f"--version warm      median {result['warm_median_s']:.3f} s, "
          f"max {result['warm_max_s']:.3f} s ({args.runs} runs)")
    print(f"venv script warm    median {result['venv_warm_median_s']:.3f} s (for comparison)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
