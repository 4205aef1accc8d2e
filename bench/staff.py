"""A whole staff at once, measured: `python -m bench.staff [--teachers 40] [--hold 25] [--out F]`.

Starts a fresh gateway (tests.fixtures: `staffroom init`, an admin and the CIO of kita-es; each
teacher's desktop runs an xterm). The CIO imports a roster of N teachers and issues each of them
a key on her own SoftHSM2 token. Then N `staffroom agent connect` start at once on this machine,
and each teacher's page (her agent's loopback viewer endpoint) reads its first frame.

It reports:
- the seconds until every agent was connected and every page had its first frame;
- the gateway's CPU seconds over that;
- the gateway's RSS and PSS before, right after, and `--hold` seconds later, by when the pages
  malloc holds free have been given back (gateway.malloc_arenas.trim), and per session.
Everything it started is stopped. tests/abuse/test_whole_staff.py asserts the same run's
correctness; the figures go to docs/PERFORMANCE.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


async def measure(teachers: int, hold: float) -> dict[str, object]:
    from bench.measure import cpu_seconds
    from tests.abuse.helpers import POLICY
    from tests.fixtures.agent import Agent, freshclam_conf
    from tests.fixtures.gateway import running_world
    from tests.fixtures.staff import enrol, first_frame, gateway_memory_mib

    with tempfile.TemporaryDirectory(prefix="staffroom-bench-staff-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # the desktop accounts pass through to DATA_DIR
        with running_world(root, policy_overrides=POLICY) as world:
            users = [f"t.staff{i:02d}" for i in range(teachers)]
            enrol(world, users)
            fresh = freshclam_conf(root, 0.25)
            assert world.gateway.process is not None
            pid = world.gateway.process.pid
            before = gateway_memory_mib(world)
            cpu0, start = cpu_seconds(pid), time.monotonic()
            agents = [Agent(world, user, fresh) for user in users]
            try:
                urls = [await asyncio.to_thread(a.viewer_url, 300) for a in agents]
                connected = time.monotonic() - start
                await asyncio.gather(*(first_frame(url) for url in urls))
                shown = time.monotonic() - start
                cpu = cpu_seconds(pid) - cpu0
                after = gateway_memory_mib(world)
                await asyncio.sleep(hold)
                held = gateway_memory_mib(world)
            finally:
                for agent in agents:
                    agent.stop()

    def rss_per_session(now: tuple[float, float]) -> float:
        return round((now[0] - before[0]) / teachers, 1)

    return {
        "teachers": teachers, "load": os.getloadavg(), "cpus": os.cpu_count(),
        "all_connected_s": round(connected, 1), "all_first_frames_s": round(shown, 1),
        "gateway_cpu_s": round(cpu, 1),
        "gateway_mib": {"before": before, "after": after, f"after_{hold:.0f}_s": held},
        "rss_mib_per_session": {"right_after": rss_per_session(after),
                                f"after_{hold:.0f}_s": rss_per_session(held)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.staff", description=__doc__.split("\n")[0])
    parser.add_argument("--teachers", type=int, default=40)
    parser.add_argument("--hold", type=float, default=25.0,
                        help="seconds to wait before the last memory reading (25)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    result = asyncio.run(measure(args.teachers, args.hold))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
