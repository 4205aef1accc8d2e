"""This node among the others: acts on what the node bus says, and re-reads the state after a
gap in it. The broker publishes (gateway.live.broker: terminate, end_user_sessions); this
module is the receiving end.

Attacker-controlled here: signals from the bus — already validated by gateway.cluster.signals
(fields, character sets, lengths); a session id or user that this node does not hold is a no-op.
Who audits: the node where the officer acted records the action (SessionTerminated before it
publishes; KeyRevoked, UserDisabled as on one node); the node holding the session records only
its end (SessionEnded, with the reason), so each fact is in the trail once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gateway.cluster import signals
from gateway.cluster.bus import NodeBus
from gateway.cluster.signals import Signal
from gateway.live.recheck import attach_refusal
from gateway.wire import display as wire

log = logging.getLogger(__name__)

ENDED_ELSEWHERE = "Your school's IT lead ended this session."
# A node publishes user.end before it writes the revocation (ending comes first, so a failing
# write never keeps a teacher connected). A login here that read the key in between would pass:
# this long after the signal, the user's sessions are checked against the store again.
RECHECK_AFTER = 1.5


class NodeLink:
    def __init__(self, broker: Any, bus: NodeBus,  # gateway.live.broker.SessionBroker
                 recheck_after: float = RECHECK_AFTER) -> None:
        self.broker = broker
        self.bus = bus
        self.node = bus.node
        self.recheck_after = recheck_after
        self._rechecks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Listen until cancelled (the composition root starts and cancels this)."""
        try:
            await self.bus.listen(self.on_signal, self.resync)
        finally:
            for task in list(self._rechecks):
                task.cancel()

    async def on_signal(self, signal: Signal) -> None:
        if signal.origin == self.node:
            return  # the publisher already acted here
        if signal.topic == signals.SESSION_END:
            if signal.payload["node"] == self.node:
                log.info("node %s asked to end session %s", signal.origin,
                         signal.payload["session"])
                await self.broker.terminate(signal.payload["session"], signal.payload["reason"]
                                            or ENDED_ELSEWHERE)
        elif signal.topic == signals.SESSION_MOVED:
            if signal.payload["node"] == self.node and signal.payload["to"] == signal.origin:
                await self.broker.hand_over(signal.payload["session"], signal.origin)
        elif signal.topic == signals.USER_END:
            await self.broker.end_user_sessions(signal.payload["user"],
                                                signal.payload["reason"] or ENDED_ELSEWHERE,
                                                publish=False)
            task = asyncio.create_task(self._recheck_user(signal.payload["user"]))
            self._rechecks.add(task)
            task.add_done_callback(self._rechecks.discard)

    async def _recheck_user(self, user_id: str) -> None:
        await asyncio.sleep(self.recheck_after)
        try:
            await self._end_refused(lambda s: s.user_id == user_id)
        except Exception:
            log.exception("re-checking %s's sessions after a revoke or disable failed", user_id)

    async def resync(self) -> None:
        """Signals may have been missed: end what the state says must not run on (a revoked
        key, a disabled account, an end another node asked for)."""
        asked = {r.id: r.end_reason for r in self.broker.registry.mine() if r.end_reason}
        await self._end_refused(lambda s: True, asked)

    async def _end_refused(self, which: Callable[[Any], bool],
                           asked: dict[str, str | None] | None = None) -> None:
        for session in list(self.broker.sessions.values()):
            if session.ended or not which(session):
                continue
            refusal = attach_refusal(self.broker.ctx.store, session.user_id,
                                     session.cert_serial)
            reason = refusal.reason if refusal is not None else (asked or {}).get(session.id)
            if reason is not None:
                log.info("session %s ended on re-reading the state", session.id)
                await session.end(wire.EndCode.TERMINATED, reason)
