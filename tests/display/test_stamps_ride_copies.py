"""Stamps ride along with copies: a scrolled terminal or a dragged window keeps its stamps (moved
with it) instead of re-sending them, and the canvas a viewer builds still equals the desktop plus
the watermark as the pipeline says it sits (per tile: the layer's grid moved by that tile's drift,
never by a pitch or more, so no stamp row goes missing)."""

from __future__ import annotations

import random

import pytest

from gateway.display.encoder import EncodeSettings
from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline
from gateway.display.stamp_drift import outside
from gateway.display.watermark import Watermark
from gateway.wire import display as w
from tests.display.canvas_model import CanvasModel, diff_pixels, expected, random_ops
from tests.display.test_stamp_drift import pieces

T0 = 1_700_000_000.0
W, H = 640, 480
LINE = 16


def stamp() -> Watermark:
    return Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=11,
                     spacing=(160, 110), opacity=0.4)  # fmt: skip


def text_line(fb: Framebuffer, x: int, y: int, w_: int, rng: random.Random) -> None:
    fb.fill(x, y, w_, LINE, b"\xff\xff\xff\x00")
    for gx in range(x + 2, x + w_ - 8, 8):
        if rng.random() < 0.8:
            glyph = bytes(rng.choice((0, 255)) for _ in range(6 * 11))
            fb.blit(gx, y + 2, 6, 11, b"".join(bytes((v, v, v, 0)) for v in glyph))


class Run:
    def __init__(self, lossless: bool = True) -> None:
        self.fb = Framebuffer(W, H)
        self.fb.fill(0, 0, W, H, b"\xe0\xe0\xe0\x00")
        self.p = DisplayPipeline(self.fb, watermark=stamp(), detect_scroll=False,
                                 settings=EncodeSettings(lossy=not lossless))  # fmt: skip
        self.p.receive_data(w.encode(w.Resume(w.VERSION, 0)), T0)
        self.canvas = CanvasModel()
        self.now = T0
        self.tile_pixels: list[int] = []

    def frame(self) -> None:
        data = self.p.produce_frame(self.now)
        if data is not None:
            msgs = self.canvas.apply_bytes(data)
            self.p.receive(w.Ack(msgs[-1].frame_id), self.now)
            self.tile_pixels.append(sum(m.w * m.h for m in msgs if isinstance(m, w.Tile)))
        self.now += 0.05

    def exact(self) -> None:
        assert self.canvas.image is not None
        want = expected(self.fb, self.p._layer, self.p._drift)
        assert diff_pixels(self.canvas.image, want) == 0
        px, py = self.p._layer.pitch  # type: ignore[union-attr]
        shifts = [d for v in self.p._drift.values()
                  for d in ([v] if isinstance(v[0], int) else [s for _, s in v])]
        assert all(abs(dx) <= px // 2 and abs(dy) <= py // 2 for dx, dy in shifts)


def terminal_scroll(run: Run, x: int, y: int, w_: int, h: int, steps: int,
                    rng: random.Random) -> None:  # fmt: skip
    for _ in range(steps):
        run.fb.copy(x, y + LINE, x, y, w_, h - LINE)  # XCopyArea, as xterm scrolls
        text_line(run.fb, x, y + h - LINE, w_, rng)
        run.frame()
        run.exact()


def test_terminal_scroll_keeps_the_canvas_exact_and_sends_little() -> None:
    run, rng = Run(), random.Random(3)
    run.frame()
    for i in range((H - 40) // LINE):  # fill a terminal window at (40, 20), 560x448 px
        text_line(run.fb, 40, 20 + i * LINE, 560, rng)
    run.frame()
    run.exact()
    run.tile_pixels.clear()
    terminal_scroll(run, 40, 20, 560, 448, 60, rng)
    assert run.p._drift, "the stamps rode along with the copies"
    # Each step re-sends the new line (560x16 plus its boxes) and the tiles that go back to
    # the grid: well under the window's stamped area, which the old way re-sent every step.
    per_step = sum(run.tile_pixels) / len(run.tile_pixels)
    assert per_step < 560 * 448 / 4, per_step


def test_window_drag_moves_its_stamps_and_restores_exposed_ones() -> None:
    run, rng = Run(), random.Random(5)
    for i in range(12):
        text_line(run.fb, 64, 64 + i * LINE, 256, rng)
    run.frame()
    x, y = 64, 64
    for dx, dy in [(16, 8)] * 10 + [(-24, 12)] * 6 + [(64, -64)] * 2:
        run.fb.copy(x, y, x + dx, y + dy, 256, 12 * LINE)
        # the exposed background is redrawn by the desktop
        if dx > 0:
            run.fb.fill(x, y, dx, 12 * LINE, b"\xe0\xe0\xe0\x00")
        else:
            run.fb.fill(x + 256 + dx, y, -dx, 12 * LINE, b"\xe0\xe0\xe0\x00")
        if dy > 0:
            run.fb.fill(x, y, 256, dy, b"\xe0\xe0\xe0\x00")
        else:
            run.fb.fill(x, y + 12 * LINE + dy, 256, -dy, b"\xe0\xe0\xe0\x00")
        x, y = x + dx, y + dy
        run.frame()
        run.exact()


@pytest.mark.parametrize("seed", range(6))
def test_random_copies_and_content_with_the_watermark_stay_exact(seed: int) -> None:
    run, rng = Run(), random.Random(seed)
    run.frame()
    for _ in range(25):
        random_ops(run.fb, rng, rng.randint(1, 6))
        if rng.random() < 0.5:  # a scroll of part of the screen
            x, y = rng.randrange(0, 200), rng.randrange(0, 100)
            terminal_scroll(run, x, y, rng.randint(100, 400), rng.randint(100, 300), 1, rng)
        run.frame()
        run.exact()


def test_a_new_grid_puts_every_stamp_back_on_it() -> None:
    """Stamps that move (``move_every``) get a new grid: the drifts no longer apply to it, so
    every stamp is re-sent on the new grid."""
    run, rng = Run(), random.Random(9)
    run.frame()
    terminal_scroll(run, 40, 20, 560, 448, 5, rng)
    assert run.p._drift
    run.p.watermark = Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=11,
                                spacing=(160, 110), opacity=0.4, move_every=7.0)
    run.now = (run.now // 7 + 1) * 7 + 1  # a slot whose grid sits elsewhere
    run.frame()
    assert run.p._drift == {}
    run.exact()


def test_observer_key_frame_carries_the_same_drift() -> None:
    run, rng = Run(), random.Random(11)
    run.frame()
    terminal_scroll(run, 40, 20, 560, 448, 3, rng)
    run.p.request_observer_key_frame()
    text_line(run.fb, 40, 20, 560, rng)
    job = run.p.take_frame(run.now)
    assert job is not None and job.observer_key is not None and job.observer_key.drift
    from gateway.display.pipeline import encode_frame

    run.canvas.apply_bytes(encode_frame(job))
    watcher = CanvasModel()
    watcher.apply_bytes(encode_frame(job.observer_key))
    assert diff_pixels(watcher.image, run.canvas.image) == 0


def region_copy(run: Run, rng: random.Random, x: int, y: int, w_: int, h: int,
                d: tuple[int, int]) -> None:
    """One update as Xvnc sends a scrolled or dragged region: the CopyRects of one delta cut
    around a hole (a cursor cell, a redrawn button), then the hole and what the move uncovered
    drawn as pixels."""
    hx, hy = x + rng.randrange(w_ - 9), y + rng.randrange(h - 16)
    for op in pieces(x, y, w_, h, d, (hx, hy, 9, 16)):
        run.fb.copy(op.src_x, op.src_y, op.dst_x, op.dst_y, op.w, op.h)
    text_line(run.fb, hx - 2, hy, 16, rng)
    old = (x - d[0], y - d[1], x - d[0] + w_, y - d[1] + h)  # uncovered: the old place
    for ex0, ey0, ex1, ey1 in outside(old, (x, y, x + w_, y + h)):  # minus the new one
        run.fb.fill(ex0, ey0, ex1 - ex0, ey1 - ey0, bytes((rng.randrange(256), 200, 200, 0)))


@pytest.mark.parametrize("seed", range(8))
def test_random_region_copies_in_pieces_and_long_drags_stay_exact(seed: int) -> None:
    """Random frames of: multi-piece same-delta region copies (terminal scrolls with a new
    line, window drags whose drift runs past several pitches), random fills/blits/copies, a
    minute change now and then; after every frame the canvas the wire messages built equals
    the desktop plus the watermark as the pipeline says it sits, and no drift leaves half a
    pitch."""
    run, rng = Run(), random.Random(100 + seed)
    run.frame()
    for i in range((H - 40) // LINE):
        text_line(run.fb, 40, 20 + i * LINE, 560, rng)
    run.frame()
    wx, wy, ww, wh = 100, 120, 200, 150  # a window to drag
    for step in range(70):
        r = rng.random()
        if r < 0.35:  # a terminal scroll: one or two lines, new text at the bottom
            n = rng.choice((1, 1, 2))
            region_copy(run, rng, 40, 20, 560, 448 - n * LINE, (0, -n * LINE))
            for k in range(n):
                text_line(run.fb, 40, 20 + 448 - (n - k) * LINE, 560, rng)
        elif r < 0.8:  # a drag step, always on: the drift runs past several pitches
            dx = rng.randint(-24, 24)
            dy = rng.randint(-16, 16)
            dx = max(-wx, min(W - ww - wx, dx))
            dy = max(-wy, min(H - wh - wy, dy))
            if dx or dy:
                wx, wy = wx + dx, wy + dy
                region_copy(run, rng, wx, wy, ww, wh, (dx, dy))
        else:
            random_ops(run.fb, rng, rng.randint(1, 4))
        if rng.random() < 0.3:  # two updates in one frame now and then
            random_ops(run.fb, rng, 1)
        if step == 50:
            run.now = (run.now // 60 + 1) * 60 + 1  # the watermark's text changes
        run.frame()
        run.exact()


def test_a_new_minute_re_sends_only_the_changed_digits_and_keeps_the_canvas_exact() -> None:
    """At the minute the layer's text changes on the same grid: the viewer gets the pixels where
    the new stamp differs (on the grid and where copies carried stamps, which stay there), and
    its canvas equals the desktop plus the new layer; a full re-send of every stamp would send
    many times that."""
    run, rng = Run(), random.Random(11)
    run.now = T0 - T0 % 60 + 30  # half a minute before the next one
    for i in range(20):
        text_line(run.fb, 40, 20 + i * LINE, 560, rng)
    run.frame()
    terminal_scroll(run, 40, 20, 560, 448, 5, rng)  # some tiles off the grid
    drift_before = dict(run.p._drift)
    assert drift_before
    old_text = run.p._layer.key  # type: ignore[union-attr]
    run.tile_pixels.clear()
    run.now = T0 - T0 % 60 + 60  # the next minute: no desktop change at all
    run.frame()
    assert run.p._layer.key != old_text  # type: ignore[union-attr]
    run.exact()
    assert run.p._drift == drift_before  # the stamps stay where the copies carried them
    assert run.tile_pixels and run.tile_pixels[-1] > 0
    ink = sum((x1 - x0) * (y1 - y0)
              for x0, y0, x1, y1 in run.p._layer.ink_in(0, 0, W, H))  # type: ignore[union-attr]
    assert run.tile_pixels[-1] < ink / 3, (run.tile_pixels[-1], ink)


def draw_changed(fb: Framebuffer, x: int, y: int, rows: list[bytes]) -> None:
    """Draw ``rows`` at (x, y), damaging only the pixels that change in each row, as Xvnc sends
    them: a blank tail that stays blank is not sent again."""
    w_ = len(rows[0]) // 4
    for i, new in enumerate(rows):
        old = fb.read(x, y + i, w_, 1)
        differs = [c for c in range(w_) if old[c * 4 : c * 4 + 3] != new[c * 4 : c * 4 + 3]]
        if differs:
            a, b = differs[0], differs[-1] + 1
            fb.blit(x + a, y + i, b - a, 1, new[a * 4 : b * 4])


def short_line(w_: int, rng: random.Random) -> list[bytes]:
    """A terminal line: glyphs from the left to a random length, then blank to the edge."""
    rows = [bytearray(b"\xff\xff\xff\x00" * w_) for _ in range(LINE)]
    for gx in range(2, rng.randrange(40, w_ // 2), 8):
        for r in range(2, 13):
            for c in range(6):
                if rng.random() < 0.5:
                    rows[r][(gx + c) * 4 : (gx + c) * 4 + 3] = b"\x00\x00\x00"
    return [bytes(r) for r in rows]


def test_a_scrolled_terminal_stays_on_one_drift_when_line_ends_are_not_redrawn() -> None:
    """The blank end of a terminal's last line is neither drawn again nor copied into when the
    terminal scrolls, so it keeps the drift it had; each scroll brings it up into the terminal.
    It takes the drift of the lines around it there (its ink re-sent), instead of every line
    becoming a band of its own drift and every tile of the terminal several parts (issue 11
    part AF); the canvas stays exact."""
    run, rng = Run(), random.Random(4)
    x, y, w_, h = 40, 20, 560, 448
    run.frame()
    for i in range(h // LINE):
        draw_changed(run.fb, x, y + i * LINE, short_line(w_, rng))
    run.frame()
    run.exact()
    for _ in range(40):
        run.fb.copy(x, y + LINE, x, y, w_, h - LINE)
        draw_changed(run.fb, x, y + h - LINE, short_line(w_, rng))
        run.frame()
        run.exact()
        inside = {run.p._drift.get((tx, ty), (0, 0))
                  for tx in range(-(-x // 64), (x + w_) // 64)
                  for ty in range(-(-y // 64), (y + h - LINE) // 64)}
        assert len(inside) == 1 and isinstance(next(iter(inside))[0], int), inside


def test_tiles_a_frame_without_copies_re_sends_whole_go_back_to_the_grid() -> None:
    """A window dragged away leaves tiles off the grid; once a frame without copies redraws
    such a tile whole (the desktop repainted there: a window closed, a view redrawn), its
    stamps are back on the grid, not left as a patchwork of drifts for later copies to meet.
    A tile redrawn in part keeps its drift, and so does one redrawn in a frame with copies
    (there it may be a scrolled view's new line). The canvas stays exact throughout."""
    r, rng = Run(), random.Random(7)
    r.frame()  # key frame
    for i in range(8):
        text_line(r.fb, 64, 64 + i * LINE, 256, rng)
    r.frame()
    r.fb.copy(64, 64, 101, 93, 256, 8 * LINE)  # the window dragged by (37, 29)
    r.frame()
    r.exact()
    drifted = sorted(r.p._drift)
    assert len(drifted) >= 6
    whole, part, other = drifted[0], drifted[1], drifted[2]
    tile = r.fb.tile
    # With a copy elsewhere in the same frame, a tile redrawn whole keeps its drift.
    r.fb.fill(other[0] * tile, other[1] * tile, tile, tile, b"\x20\x40\x60\x00")
    r.fb.copy(500, 400, 520, 410, 40, 30)
    r.frame()
    r.exact()
    assert other in r.p._drift
    # Without copies: the tile redrawn whole goes back to the grid, the one redrawn in part not.
    r.fb.fill(whole[0] * tile, whole[1] * tile, tile, tile, b"\x60\x40\x20\x00")
    r.fb.fill(part[0] * tile + 3, part[1] * tile + 5, 20, 9, b"\x60\x40\x20\x00")
    r.frame()
    r.exact()
    assert whole not in r.p._drift and part in r.p._drift and other in r.p._drift
