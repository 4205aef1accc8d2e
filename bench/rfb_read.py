"""CPU of the gateway's RFB read path, before vs after in one run: `bench.rfb_read`.

    python -m bench.rfb_read [--baseline main] [--rounds 3] [--updates 150] [--json]

A local RFB 3.8 server (its own process, so its CPU is not counted) answers every
FramebufferUpdateRequest with the same recorded-like update a scrolled GTK view makes Xvnc
send: one 1920x450 Raw rectangle (3.5 MB) plus 40 text-sized Raw boxes, over a Unix socket as
from a gateway-started Xvnc. The client is the real ``open_rfb`` + RfbConnection drawing into
the production Framebuffer, asking for the next update after each UpdateDone as a session
does; it reports process CPU per MB received (which other processes on a shared machine do
not change) and wall MB/s (which they do). ``--baseline``'s gateway/ (a git revision, via
`git archive`) and the working tree's run alternately, ``--rounds`` times each, best per side.

Nothing here is attacker-facing: the server is the bench's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
W, H = 1920, 1080
BIG = (0, 300, 1920, 450)  # x, y, w, h: the scrolled band
SMALL = 40  # text boxes of 64x16 around it


def _raw_rect(rng: random.Random, x: int, y: int, w: int, h: int) -> bytes:
    row = rng.randbytes(w * 4)  # rows differ by a rotation: not all one colour
    rows = b"".join(row[(r * 4) % len(row):] + row[: (r * 4) % len(row)] for r in range(h))
    return struct.pack(">HHHHi", x, y, w, h, 0) + rows


def make_update() -> bytes:
    rng = random.Random(11)
    rects = [_raw_rect(rng, *BIG)]
    for i in range(SMALL):
        rects.append(_raw_rect(rng, (i * 97) % (W - 64), 800 + (i * 7) % 200, 64, 16))
    return struct.pack(">BxH", 0, len(rects)) + b"".join(rects)


# -- the server (its own process) -------------------------------------------------------------

def serve(path: str) -> None:
    update = make_update()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    print("ready", flush=True)
    conn, _ = srv.accept()
    with conn, srv:
        conn.sendall(b"RFB 003.008\n")
        _recv(conn, 12)
        conn.sendall(b"\x01\x01")  # one security type: None
        _recv(conn, 1)
        conn.sendall(b"\x00\x00\x00\x00")
        _recv(conn, 1)  # ClientInit
        fmt = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
        conn.sendall(struct.pack(">HH", W, H) + fmt + struct.pack(">I", 5) + b"bench")
        pending = b""
        while True:
            data = conn.recv(65536)
            if not data:
                return
            pending += data
            while pending:  # SetPixelFormat 20, SetEncodings 4+4n, UpdateRequest 10
                kind = pending[0]
                size = {0: 20, 3: 10, 4: 8, 5: 6}.get(kind)
                if kind == 2:
                    if len(pending) < 4:
                        break
                    size = 4 + 4 * struct.unpack(">xxH", pending[:4])[0]
                if size is None or len(pending) < size:
                    break
                pending = pending[size:]
                if kind == 3:
                    try:
                        conn.sendall(update)
                    except (BrokenPipeError, ConnectionResetError):
                        return


def _recv(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise SystemExit("client went away")
        data += chunk
    return data


# -- the client (one side of the comparison) ---------------------------------------------------

async def client(path: str, updates: int) -> dict[str, float]:
    from gateway.display.framebuffer import Framebuffer
    from gateway.rfb.connection import open_rfb
    from gateway.rfb.events import UpdateDone

    fb = Framebuffer()
    conn = await open_rfb("", 0, None, fb, path=path)
    await conn.request_update(False)
    done = 0
    cpu0 = wall0 = 0.0
    async for event in conn.events():
        if isinstance(event, UpdateDone):
            done += 1
            if done == 1:  # the first one warms up; time the rest
                cpu0, wall0 = time.process_time(), time.perf_counter()
            if done > updates:
                break
            await conn.request_update(True)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await conn.close()
    mb = updates * len(make_update()) / 1e6
    return {"updates": updates, "mb": round(mb, 1), "cpu_s": round(cpu, 4),
            "cpu_ms_per_mb": round(1000 * cpu / mb, 3), "wall_mb_per_s": round(mb / wall, 1)}


def run_side(tree: Path | None, updates: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="rfb-read-") as tmp:
        sock = os.path.join(tmp, "rfb.sock")
        server = subprocess.Popen([sys.executable, __file__, "serve", sock],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            env = {**os.environ, "PYTHONPATH": str(tree or ROOT)}
            out = subprocess.run([sys.executable, __file__, "client", sock, str(updates)],
                                 env=env, capture_output=True, text=True, check=False)  # fmt: skip
            if out.returncode:
                raise SystemExit(f"client failed:\n{out.stderr[-3000:]}")
            return json.loads(out.stdout)  # type: ignore[no-any-return]
        finally:
            server.kill()
            server.wait()


def compare(baseline: str, rounds: int, updates: int) -> dict[str, object]:
    from bench.baseline import alternate, baseline_tree  # the parent's side only

    with baseline_tree(baseline, "rfb-read-base-") as tmp:
        sides = alternate(rounds, lambda side: run_side(tmp if side == "before" else None,
                                                         updates))
    best = {s: min(runs, key=lambda r: r["cpu_s"]) for s, runs in sides.items()}
    return {"baseline": baseline, "rounds": rounds, "load": os.getloadavg(),
            "update_bytes": len(make_update()), **best,
            "all_cpu_ms_per_mb": {s: [r["cpu_ms_per_mb"] for r in runs]
                                  for s, runs in sides.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1])
        return
    if argv[:1] == ["client"]:
        print(json.dumps(asyncio.run(client(argv[1], int(argv[2])))))
        return
    p = argparse.ArgumentParser(prog="python -m bench.rfb_read", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default="main", help="git revision to compare with (main)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--updates", type=int, default=150, help="timed updates per round (150)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = compare(args.baseline, args.rounds, args.updates)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    b, a = result["before"], result["after"]
    print(f"{args.updates} updates of {result['update_bytes'] / 1e6:.2f} MB (1920x450 Raw + "
          f"{SMALL} boxes) over a Unix socket; load {result['load'][0]:.1f}")  # type: ignore[index]
    for name, r in (("before", b), ("after", a)):
        print(f"  {name:6} {r['cpu_ms_per_mb']:7.2f} CPU ms/MB  {r['wall_mb_per_s']:7.1f} MB/s"  # type: ignore[index]
              f"  (all rounds: {result['all_cpu_ms_per_mb'][name]})")  # type: ignore[index]
    ratio = a["cpu_ms_per_mb"] / b["cpu_ms_per_mb"]  # type: ignore[index]
    print(f"  after/before CPU: {ratio:.2f}")


if __name__ == "__main__":
    main()
