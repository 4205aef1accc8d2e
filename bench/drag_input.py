"""Where a client-driven drag's input goes (bench.drag_workloads.PageDrag): the client's page,
where a teacher's mouse and keyboard would be (bench.run), or an RFB connection, as a gateway
forwards a viewer's input (bench.display_cpu record).

Nothing here is attacker-facing: it drives the bench's own desktop.
"""

from __future__ import annotations

from typing import Protocol

from playwright.async_api import Page

#: Where each client draws the desktop in its page (bench.clients' pages).
CANVAS = {"novnc": "#screen canvas", "staffroom": "#screen"}


def page_point(rect: dict[str, float], width: int, height: int, x: int, y: int
               ) -> tuple[float, float]:
    """The page position (CSS pixels) of desktop pixel (x, y)'s centre on a canvas of
    width × height desktop pixels shown in ``rect`` (getBoundingClientRect: left, top, width,
    height), as the viewers map it back (viewer/canvas.js toDesktop floors the same)."""
    return (rect["left"] + (x + 0.5) * rect["width"] / width,
            rect["top"] + (y + 0.5) * rect["height"] / height)


async def canvas_rect(page: Page, client: str) -> tuple[dict[str, float], int, int]:
    """(getBoundingClientRect, width, height) of the client's canvas in its page."""
    rect, width, height = await page.evaluate(
        "(sel) => { const c = document.querySelector(sel), r = c.getBoundingClientRect();"
        " return [{left: r.left, top: r.top, width: r.width, height: r.height},"
        " c.width, c.height]; }", CANVAS["novnc" if client == "novnc" else "staffroom"])
    return rect, width, height


async def hand_pointer_to_page(page: Page, client: str, pointer: tuple[int, int]) -> None:
    """Move the page's mouse onto the desktop's pointer, as a teacher's hand rests on it.

    The workloads drive the desktop with xdotool, on its own side. TigerVNC then draws the
    pointer into the pixels it sends every client whose last pointer event was elsewhere
    (VNCSConnectionST::needRenderedCursor), and a scroll step re-sends the box under it. A
    teacher scrolls with the pointer her own mouse put there, which her viewer shows as its
    own cursor; after this move the client's last pointer event is at the pointer too, so
    TigerVNC stops drawing it, for every client alike (issue 11 part AS)."""
    rect, width, height = await canvas_rect(page, client)
    await page.mouse.move(*page_point(rect, width, height, *pointer))


class DragInput(Protocol):
    """Where a client-driven drag's input goes: the client's page, or an RFB connection."""

    async def move(self, x: int, y: int) -> None: ...
    async def hold(self, down: bool) -> None: ...  # Alt and button 1 together


class PageInput:
    """Mouse and keyboard in the client's page (Playwright), at each desktop pixel's place."""

    def __init__(self, page: Page, rect: dict[str, float], width: int, height: int) -> None:
        self.page, self.rect, self.width, self.height = page, rect, width, height

    async def move(self, x: int, y: int) -> None:
        await self.page.mouse.move(*page_point(self.rect, self.width, self.height, x, y))

    async def hold(self, down: bool) -> None:
        if down:
            await self.page.keyboard.down("Alt")
            await self.page.mouse.down()
        else:
            await self.page.mouse.up()
            await self.page.keyboard.up("Alt")


class RfbInput:
    """KeyEvents and PointerEvents on an RFB connection (gateway.rfb.connection), as a viewer's
    gateway sends them: bench.display_cpu record drives the drag through its own client."""

    ALT_L = 0xFFE9

    def __init__(self, conn: object) -> None:
        self.conn = conn
        self.x = self.y = 0
        self.buttons = 0

    async def move(self, x: int, y: int) -> None:
        self.x, self.y = x, y
        await self.conn.pointer(x, y, self.buttons)  # type: ignore[attr-defined]

    async def hold(self, down: bool) -> None:
        if down:
            await self.conn.key(self.ALT_L, True)  # type: ignore[attr-defined]
            self.buttons = 1
            await self.conn.pointer(self.x, self.y, 1)  # type: ignore[attr-defined]
        else:
            self.buttons = 0
            await self.conn.pointer(self.x, self.y, 0)  # type: ignore[attr-defined]
            await self.conn.key(self.ALT_L, False)  # type: ignore[attr-defined]
