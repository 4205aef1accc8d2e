"""``python -m bench.viewer_copy``: what one Copy message costs the viewer, both ways.

The viewer (viewer/canvas.js) applies a Copy on its 1920x1080 canvas. drawImage with the canvas
as its own source makes Chromium snapshot the whole canvas first, whatever the copy's size;
getImageData + putImageData reads back only the region (issue 11 part AM). This times both in
the system Chromium the bench uses (no GPU here, as on a teacher's PC without one), for a
dragged window's strip (15x60) and a scrolled view (1000x800), on a canvas made as canvas.js
makes it and on a default one. Nothing here is attacker-facing: it draws its own canvas.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from playwright.async_api import async_playwright

from bench.run import CHROMIUM, CHROMIUM_ARGS

#: The canvas options canvas.js uses, and Chromium's default.
CANVASES = {"viewer": {"alpha": False, "willReadFrequently": True}, "default": {}}

TIMES = """
async ({opts, rounds}) => {
  const c = document.createElement("canvas");
  c.width = 1920; c.height = 1080; document.body.appendChild(c);
  const ctx = c.getContext("2d", opts);
  ctx.fillStyle = "#e0c0a0"; ctx.fillRect(0, 0, 1920, 1080);
  for (let i = 0; i < 2000; i++) {
    ctx.fillStyle = `rgb(${i % 255},${(i * 7) % 255},90)`;
    ctx.fillRect((i * 37) % 1900, (i * 53) % 1060, 12, 12);
  }
  await new Promise((r) => requestAnimationFrame(r));
  // Each copy is followed by a 1-pixel draw, as a frame's tiles follow its copies; the last
  // read waits for everything drawn to land.
  const self = (sx, sy, w, h, dx, dy) => ctx.drawImage(c, sx, sy, w, h, dx, dy, w, h);
  const readBack = (sx, sy, w, h, dx, dy) =>
    ctx.putImageData(ctx.getImageData(sx, sy, w, h), dx, dy);
  const time = (copy, n, box) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      copy(box[0] + (i % 50), box[1], box[2], box[3], box[4], box[5] + (i % 30));
      ctx.fillRect(5, 5, 1, 1);
    }
    ctx.getImageData(0, 0, 1, 1);
    return (performance.now() - t) / n;
  };
  const strip = [100, 200, 15, 60, 900, 300], view = [0, 100, 1000, 800, 0, 80];
  return {
    strip_self_ms: time(self, rounds, strip),
    strip_read_back_ms: time(readBack, rounds, strip),
    view_self_ms: time(self, rounds / 10, view),
    view_read_back_ms: time(readBack, rounds / 10, view),
  };
}
"""


async def measure(rounds: int) -> dict[str, dict[str, float]]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto("about:blank")
            return {name: {k: round(v, 3) for k, v in (await page.evaluate(
                TIMES, {"opts": opts, "rounds": rounds})).items()}
                for name, opts in CANVASES.items()}  # fmt: skip
        finally:
            await browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200,
                    help="copies timed per case (of a scrolled view: a tenth)")
    ap.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = ap.parse_args()
    result = asyncio.run(measure(args.rounds))
    text = json.dumps({"chromium": CHROMIUM, "ms_per_copy": result}, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
