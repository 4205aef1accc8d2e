"""RFB decode CPU cost for one 1920x1080 frame: Raw vs ZRLE vs Tight, encoded by a real Xvnc.

Run: .venv/bin/python bench/rfb_decode.py  (needs Xvnc and ImageMagick's ``display``).
The frame is half text-like (an xterm-ish page) and half photo-like (smooth gradients with
noise). Each encoding's update is captured off the wire once, then replayed into a fresh
client several times; we report the best CPU time and the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageGrab

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.rfb.client import RfbClient
from gateway.rfb.connection import open_rfb
from gateway.rfb.encodings import Encoding, compress_level, quality_level
from gateway.rfb.events import NEED_DATA, UpdateDone
from tests.fixtures.desktops import free_display, free_port, wait_until
from tests.rfb.memsurface import MemorySurface

W, H = 1920, 1080
PSEUDO = (Encoding.DESKTOP_SIZE, Encoding.EXTENDED_DESKTOP_SIZE, Encoding.LAST_RECT)
CONFIGS = {
    "raw": (Encoding.RAW, *PSEUDO),
    "zrle": (Encoding.ZRLE, *PSEUDO),
    "tight (lossless)": (Encoding.TIGHT, compress_level(2), *PSEUDO),
    "tight (jpeg q7)": (Encoding.TIGHT, compress_level(2), quality_level(7), *PSEUDO),
}

# A borderless Tk window showing the frame at 0,0 (ImageMagick's `display` fails here).
SHOW_IMAGE = """
import sys, tkinter as tk
root = tk.Tk()
root.overrideredirect(True)
root.geometry("+0+0")
img = tk.PhotoImage(file=sys.argv[1])
tk.Label(root, image=img, borderwidth=0, highlightthickness=0).pack()
root.mainloop()
"""


def make_frame(path: Path) -> None:
    rng = random.Random(7)
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    for row in range(0, H, 16):  # left half: text
        line = "".join(rng.choice("abcdefghij klmnop qrstu vwxyz 0123 ") for _ in range(150))
        draw.text((8, row), line, fill=(0, 0, 0))
    photo = Image.radial_gradient("L").resize((W // 2, H)).convert("RGB")
    noise = Image.effect_noise((W // 2, H), 40).convert("RGB")
    photo = Image.blend(photo, noise, 0.3).filter(ImageFilter.GaussianBlur(1))
    photo = Image.merge("RGB", (photo.getchannel(0), photo.getchannel(1).point(lambda v: 255 - v),
                                Image.linear_gradient("L").resize((W // 2, H))))  # fmt: skip
    img.paste(photo, (W // 2, 0))
    img.save(path)


async def capture(port: int, encodings: tuple[int, ...]) -> bytes:
    wire = bytearray()
    surface = MemorySurface()
    conn = await open_rfb("127.0.0.1", port, None, surface, encodings=encodings,
                          on_receive=wire.extend)  # fmt: skip
    await conn.request_update(False)
    async for event in conn.events():
        # The first updates may carry only the desktop size; wait for the frame itself.
        if isinstance(event, UpdateDone):
            if surface.rgb(W - 1, H - 1) != (0, 0, 0):
                break
            await conn.request_update(True)
    await conn.close()
    return bytes(wire)


def decode_cpu(wire: bytes, encodings: tuple[int, ...], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        client = RfbClient(MemorySurface(), encodings=encodings)
        start = time.process_time()
        client.feed(wire)
        while client.next_event() is not NEED_DATA:
            pass
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    make_frame(tmp / "frame.png")
    number, port = free_display(), free_port()
    xvnc = subprocess.Popen(
        ["Xvnc", f":{number}", "-rfbport", str(port), "-localhost", "-nolisten", "tcp",
         "-geometry", f"{W}x{H}", "-depth", "24", "-SecurityTypes", "None"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    viewer = None
    try:
        display = f":{number}"
        wait_until(lambda: Path(f"/tmp/.X11-unix/X{number}").exists(), 15, "Xvnc")
        viewer = subprocess.Popen([sys.executable, "-c", SHOW_IMAGE, str(tmp / "frame.png")],
                                  env={**os.environ, "DISPLAY": display})  # fmt: skip
        wait_until(lambda: ImageGrab.grab(xdisplay=display).getpixel((0, 0))[:3] == (255,) * 3,
                   15, "root image")  # fmt: skip
        raw_size = W * H * 4
        print(f"one {W}x{H} frame, decode CPU time (best of 5), Python {sys.version.split()[0]}")
        for name, encodings in CONFIGS.items():
            wire = asyncio.run(capture(port, encodings))
            cpu = decode_cpu(wire, encodings)
            print(f"  {name:18} {cpu * 1000:8.1f} ms   {len(wire) / 1e6:6.2f} MB on the wire "
                  f"({len(wire) / raw_size:6.1%} of raw)")  # fmt: skip
    finally:
        if viewer is not None:
            viewer.terminate()
            viewer.wait(10)
        xvnc.terminate()
        xvnc.wait(10)


if __name__ == "__main__":
    main()
