"""The shell of call-centre help: the teacher's Help buttons and the operator's live view with
(granted) input, around the pure rules of gateway/live/help.py.

Attacker-controlled here: the teacher's Help actions (through the session's pipeline) and every
byte the operator's console sends on its WebSocket (decoded by the display codec, bounded; only
Key and Pointer are used, and only while the teacher has granted control; anything else is
ignored, a protocol error closes the operator's view). Limits: a session audits at most
MAX_ASKS requests for help (a looping page cannot flood the audit log); an operator's input
refused while view-only is audited once per view. Every transition is audited before it takes
effect and marked in the recording.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from gateway.audit.kinds import HELP_STEPS, HelpInputBlocked, HelpProtocolError
from gateway.live import help as rules
from gateway.live.observers import WatcherSink
from gateway.wire import display as wire

if TYPE_CHECKING:
    from gateway.live.session import LiveSession

log = logging.getLogger(__name__)

MAX_ASKS = 20
CLOSE_HELP_OVER = 4100  # the operator's socket closes with this when the teacher ends the help
CLOSE_REFUSED = 4409


def state_message(case: rules.HelpCase) -> bytes:
    return wire.encode(wire.HelpState(case.status, case.helper_name))


async def _apply(session: LiveSession, t: rules.Transition, action: str | None) -> None:
    """Audit, then change the state, mark the recording and tell both sides."""
    assert t.audit is not None
    before = session.help
    await session.audit(HELP_STEPS[t.audit](helper=t.state.helper or before.helper,
                                            action=action))
    session.help = t.state
    if session.recorder is not None:
        with contextlib.suppress(Exception):  # a failing recording ends the session elsewhere
            await session.recorder.mark("help", f"{t.audit} {before.helper or ''}".strip(),
                                        time.time())
    data = state_message(t.state)
    await session.notify(data)
    sink = session.helper_sink
    if sink is not None:
        sink.post(data)
        if t.disconnect_helper:
            session.helper_sink = None
            if sink in session.watchers:
                session.watchers.remove(sink)
            await sink.close(None, time.time())


async def teacher_action(session: LiveSession, action: wire.HelpAction) -> None:
    """A Help button in the teacher's viewer."""
    if action is wire.HelpAction.ASK and session.help_asks >= MAX_ASKS:
        return
    t = rules.teacher(session.help, action)
    if t.audit is None:
        await session.notify(state_message(session.help))  # a stale page: show it the truth
        return
    if action is wire.HelpAction.ASK:
        session.help_asks += 1
    await _apply(session, t, action.name.lower())


def can_join(session: LiveSession, helper: str, name: str) -> rules.Transition:
    return rules.join(session.help, helper, name)


async def serve_helper(session: LiveSession, ws: web.WebSocketResponse, helper: str,
                       name: str) -> None:
    """The operator's view until they leave, the teacher ends the help or the session ends."""
    t = rules.join(session.help, helper, name)
    if t.outcome != "ok":  # the state changed between the API's check and the upgrade
        await ws.close(code=CLOSE_REFUSED, message=t.reason.encode()[:120])
        return
    sink = WatcherSink(ws)
    session.help = t.state
    session.helper_sink = sink
    session.watchers.append(sink)
    data = state_message(t.state)
    sink.post(data)
    await session.notify(data)
    if session.recorder is not None:
        with contextlib.suppress(Exception):
            await session.recorder.mark("help", f"help.join {helper}", time.time())
    session.wake()
    try:
        await _read_input(session, ws, helper)
    finally:
        if sink in session.watchers:
            session.watchers.remove(sink)
        if session.helper_sink is sink:
            session.helper_sink = None
            left = rules.leave(session.help, helper)
            if left.audit is not None and not session.ended:
                await _apply(session, left, None)
        await sink.close(None, time.time())


async def _read_input(session: LiveSession, ws: web.WebSocketResponse, helper: str) -> None:
    decoder = wire.DisplayDecoder(wire.Direction.TO_GATEWAY)
    refused_once = False
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            break
        decoder.feed(msg.data)
        try:
            while not isinstance(ev := decoder.next_event(), wire.Sentinel):
                if not isinstance(ev, wire.Key | wire.Pointer):
                    continue  # acks, pings, clipboard…: an operator's view has no use for them
                if not rules.may_input(session.help, helper):
                    if not refused_once:
                        refused_once = True
                        await session.audit(HelpInputBlocked(
                            helper=helper, reason="the teacher has not given control"))
                    continue
                await session.helper_input(ev)
        except wire.ProtocolError as e:
            await session.audit(HelpProtocolError(helper=helper, error=str(e)[:200]))
            return
