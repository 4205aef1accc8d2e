"""The shell of call-centre help: the operator's live view with (granted) input. The teacher's
Help buttons and every decision about the operator (join, input, leave) are the session
machine's (gateway/live/session_machine.py, with the rules of gateway/live/help.py).

Attacker-controlled here: every byte the operator's console sends on its WebSocket (decoded by
the display codec, bounded; only Key and Pointer are passed on, and the machine lets them reach
the desktop only while the teacher has granted control; anything else is ignored, a protocol
error closes the operator's view). Limits: the machine audits at most MAX_HELP_ASKS requests for
help per session and an operator's refused input once per view. Every transition is audited
before it takes effect and marked in the recording.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from gateway.live import help as rules
from gateway.live import session_events as ev
from gateway.wire import display as wire

if TYPE_CHECKING:
    from gateway.live.session import LiveSession

log = logging.getLogger(__name__)


def can_join(session: LiveSession, helper: str, name: str) -> rules.Transition:
    return rules.join(session.help, helper, name)


async def serve_helper(session: LiveSession, ws: web.WebSocketResponse, helper: str,
                       name: str) -> None:
    """The operator's view until they leave, the teacher ends the help or the session ends."""
    sink = await session.admit_helper(ws, helper, name)
    if sink is None:  # the state changed between the API's check and the upgrade
        return
    session.wake()
    try:
        await _read_input(session, ws, helper)
    finally:
        await session.helper_gone(helper, sink)


async def _read_input(session: LiveSession, ws: web.WebSocketResponse, helper: str) -> None:
    decoder = wire.DisplayDecoder(wire.Direction.TO_GATEWAY)
    async for msg in ws:
        if msg.type != WSMsgType.BINARY or session.ended:
            break
        if not msg.data:
            continue  # an empty frame carries nothing (and b"" would be the codec's EOF)
        decoder.feed(msg.data)
        try:
            while not isinstance(event := decoder.next_event(), wire.Sentinel):
                if isinstance(event, wire.Key | wire.Pointer):
                    await session.feed(ev.HelperInput(helper, event))
                # acks, pings, clipboard…: an operator's view has no use for them
        except wire.ProtocolError as e:
            await session.feed(ev.HelperBroke(helper, str(e)))
            return
