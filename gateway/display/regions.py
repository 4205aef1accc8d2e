"""The regions a frame re-sends: the damage per tile (gateway/display/framebuffer.py) as runs of
tiles in a tile row, each copied out of the framebuffer as one RegionSnapshot for the encoder.

Pure: the framebuffer is only read. Its damage comes from rectangles the RFB decoder has
bounds-checked.
"""

from __future__ import annotations

from gateway.display.encoder import RegionSnapshot
from gateway.display.framebuffer import Box, Damage, Framebuffer

#: A run of damaged tiles ends where adding the next box would make more than this share of the
#: run's bounding box pixels outside every damaged box (issue 11 part H: window-drag replay
#: 637 -> 419 KB; 0.1 and 0.5 gave 419 and 430 KB).
MAX_RUN_WASTE = 0.25


def _row_major(tile: tuple[int, int]) -> int:
    """Sort key: tile rows top to bottom, columns left to right (a column index is below
    2**16: the desktop is at most 8192 pixels wide, Limits.max_width)."""
    return tile[1] << 16 | tile[0]


def snapshot(fb: Framebuffer, damage: Damage, parts: dict[tuple[int, int], list[Box]] | None = None
         ) -> tuple[RegionSnapshot, ...]:
    """Copy out one region per run of damaged tiles in a tile row: the union of their boxes.
    A tile whose damage is kept in ``parts`` (Framebuffer.parts) is one region per part.

    A run's box may include pixels that did not change; re-sending them is harmless (they are
    the framebuffer's), and one larger image encodes several times faster per pixel than many
    small ones while the exact boxes keep a typed glyph at its 16×18 pixels."""
    out: list[RegionSnapshot] = []
    run: list[tuple[int, int, int, int]] = []
    area = top = bottom = union = 0  # the run's damaged pixels, its box's rows and size
    last_col = last_row = -2
    t = fb.tile
    right = [min(c * t + t, fb.width) for c in range(fb.cols)] if parts else []
    # Plain ints and comparisons in this loop: it sees every re-sent tile (450 for a
    # Page_Down), and tuples and min/max per tile were 3 % of a scrolling gateway's CPU.
    for col, row in sorted(damage, key=_row_major):
        box = damage[(col, row)]
        if parts and (col, row) in parts:
            # One part may run on with the tiles beside it (the best joins both edges: the
            # strip a window uncovered at its top); the others go out alone.
            tile_parts = parts[(col, row)]
            box = max(tile_parts, key=lambda p: (p[0] == col * t) + 2 * (p[2] >= right[col]))
            out.extend(read_run(fb, [p]) for p in tile_parts if p is not box)
        x0, y0, x1, y1 = box
        # A run continues only where damage crosses the tile edge: two glyphs typed in
        # neighbouring tiles stay two small images, a redrawn line stays one.
        # It also ends where its box would be mostly pixels outside the damage: a dragged
        # window's edge (a tall box) beside a tile where only one row changed.
        size = (x1 - x0) * (y1 - y0)
        if run:
            top = y0 if y0 < top else top
            bottom = y1 if y1 > bottom else bottom
            union = (x1 - run[0][0]) * (bottom - top)
            if (col != last_col + 1 or row != last_row or run[-1][2] != col * t
                    or x0 != col * t or union - area - size > MAX_RUN_WASTE * union):
                out.append(read_run(fb, run))
                run, area = [], 0
        if not run:
            top, bottom = y0, y1
        run.append(box)
        area += size
        last_col, last_row = col, row
    if run:
        out.append(read_run(fb, run))
    return tuple(out)


def read_run(fb: Framebuffer, boxes: list[Box]) -> RegionSnapshot:
    """One region: the boxes' union, left to right in one tile row, copied out."""
    x0, x1 = boxes[0][0], boxes[-1][2]
    y0, y1 = min(b[1] for b in boxes), max(b[3] for b in boxes)
    return RegionSnapshot(x0, y0, x1 - x0, y1 - y0, fb.read(x0, y0, x1 - x0, y1 - y0),
                          fb.tile)  # fmt: skip
