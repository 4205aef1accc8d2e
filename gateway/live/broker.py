"""The session broker: starts, resumes, lists and ends live sessions.

Its parts: resume.py (the resume secrets and which session one names), listing.py (the summaries
operators see), session_parts.py (a session's watermark, limits, re-check verifier and welcome).

Attacker-controlled here: nothing directly — it runs after the login decision; the resume id
secret comes from the agent and is honoured (gateway.live.login decides) only for the same user
and certificate, for a session with no tunnel attached, within the reconnect grace, after a fresh
key signature; secrets are kept as SHA-256 and replaced at every resume.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import web

from gateway.audit.kinds import (
    RecordingStopped,
    SessionRecovered,
    SessionRefused,
    SessionResumed,
    SessionStarted,
    SessionStartFailed,
    TypedEvent,
    Who,
    to_event,
)
from gateway.cluster import signals
from gateway.cluster.bus import BusError, NodeBus
from gateway.context import GatewayContext
from gateway.display.frame_job import encode_frame
from gateway.display.framebuffer import Framebuffer
from gateway.display.pacing import frame_gap
from gateway.display.pipeline import DisplayPipeline, SessionInfo, clipboard_flags
from gateway.health import Health, health_of
from gateway.live.listing import SessionSummary, all_summaries, posture_summary
from gateway.live.login import LoginDecision, ResumeTarget
from gateway.live.observers import RecorderSink
from gateway.live.posture_watch import PostureWatch
from gateway.live.recheck import Refusal, attach_refusal
from gateway.live.registry import SessionRegistry
from gateway.live.resume import ResumeRights
from gateway.live.session import LiveSession
from gateway.live.session_parts import (
    posture_verifier,
    session_limits,
    watermark_for,
    welcome,
    window_title,
)
from gateway.live.tunnel import server_cert_hash
from gateway.monitoring.metrics import metrics_of
from gateway.recording.keys import load_or_create_recording_key
from gateway.recording.store import recordings_root
from gateway.recording.writer import AsyncRecordingWriter, RecordingFailed, RecordingWriter
from gateway.reports import receipt_key
from gateway.rfb.connection import open_rfb
from gateway.rfb.errors import RfbError
from gateway.store.base import User
from gateway.store.desktops import ResumeTicket
from gateway.wire import display as wire
from gateway.wire import receipt
from gateway.wire.login import Denied, Hello, LoginConnection, Welcome
from gateway.workspace.base import Assignment, WorkspaceError
from gateway.workspace.manager import WorkspaceManager

log = logging.getLogger(__name__)

ENDED_WHILE_STARTING = ("Your school's IT lead ended your sessions while this one was "
                        "starting: ask them before you connect again.")
DESKTOP_UNAVAILABLE = ("The school desktop is not answering: try again in a minute, and tell "
                       "your school's IT lead if it keeps happening.")


class SessionBroker:
    def __init__(self, ctx: GatewayContext, workspaces: WorkspaceManager) -> None:
        self.ctx = ctx
        self.workspaces = workspaces
        self.sessions: dict[str, LiveSession] = {}
        self.closing = False  # shutting down: not ready for new sessions
        self.metrics = metrics_of(ctx.extras)
        self._fences: dict[str, int] = {}  # user -> count of revokes/disables (bounded by users)
        self.health: Health = health_of(ctx.extras)
        # Resume secrets: which session each names, here and in the Store (resume.py).
        self.resume = ResumeRights(ctx.store, ctx.node)
        # The other nodes (gateway.live.nodes): the registry of live sessions every node sees,
        # and the bus that asks the node holding a session to end it.
        self.registry = SessionRegistry(ctx.store, ctx.node)
        self.bus: NodeBus | None = None
        self._handovers: set[asyncio.Task[None]] = set()

    def count(self, user_id: str) -> int:
        return sum(1 for s in self.sessions.values() if s.user_id == user_id and not s.ended)

    def resume_target(self, secret: str | None) -> ResumeTarget | None:
        """The session a resume secret names, live here or left by a dead gateway process."""
        return self.resume.target(secret, self.sessions)

    def _connected(self) -> list[str]:
        return [s.id for s in self.sessions.values() if s.ws is not None and not s.ended]

    def all_summaries(self, school: str | None = None) -> list[SessionSummary]:
        """Every node's live sessions (the registry), this node's with their live counters."""
        return all_summaries(self.sessions.values(), self.ctx.node, self.registry, school)

    def fence_mark(self, user_id: str) -> int:
        """Taken when a login begins; a revoke or disable after it refuses that login's attach."""
        return self._fences.get(user_id, 0)

    async def run(self, ws: web.WebSocketResponse, *, conn: LoginConnection, hello: Hello,
                  user: User | None, policy: Any, decision: LoginDecision,
                  remote: str | None, fence: int | None = None) -> None:
        assert user is not None
        fence = self.fence_mark(user.id) if fence is None else fence
        if decision.resume_session is not None:
            # Taken whether the session lives here or not: a secret resumes once, on one node.
            ticket = self.resume.take(hello.resume) if hello.resume else None
            session = self.sessions.get(decision.resume_session)
            if session is None and ticket is not None \
                    and ticket.session_id == decision.resume_session:
                # Its gateway process died: the same session, on the desktop it left running.
                recovered = await self._start(ws, conn, user, policy, decision, remote, hello,
                                              fence, ticket=ticket)
                if recovered is not None:
                    if ticket.node != self.ctx.node:  # that node may live on: it lets go
                        await self._publish(signals.SESSION_MOVED, {
                            "session": recovered.id, "node": ticket.node,
                            "to": self.ctx.node})
                    await recovered.attach(ws)
                return
            if session is None or session.ended or session.ws is not None:
                # Ended or re-attached while the decision ran.
                await self._deny(ws, conn, "resume-refused", "The session could not be "
                                 "resumed: run `staffroom agent connect` again.")
                return
            refusal = self._refusal(user.id, decision.cert_serial, fence)
            if refusal is not None:
                await session.end(wire.EndCode.TERMINATED, refusal.reason)
                await self._refuse(ws, conn, refusal, self._who(user, session.id, remote))
                return
            await ws.send_str(conn.send(self._welcome(session, policy, resumed=True)))
            await self._record(SessionResumed(remote), self._who(user, session.id, remote))
            if session.posture_watch is not None:
                session.posture_watch.resumed(time.monotonic())  # the resume's posture passed
            await self._attach(session, ws)
            return
        session = await self._start(ws, conn, user, policy, decision, remote, hello, fence)
        if session is not None:
            await self._attach(session, ws)

    async def _attach(self, session: LiveSession, ws: web.WebSocketResponse) -> None:
        """Serve the tunnel; the registry shows whether a tunnel is attached."""
        self.registry.state(session.id, "attached")
        try:
            await session.attach(ws)
        finally:
            if not session.ended and session.ws is None:
                self.registry.state(session.id, "detached")

    async def _start(self, ws: web.WebSocketResponse, conn: LoginConnection, user: User,
                     policy: Any, decision: LoginDecision, remote: str | None,
                     hello: Hello, fence: int,
                     ticket: ResumeTicket | None = None) -> LiveSession | None:
        """A new session, or with ``ticket`` the one a dead gateway process held (same id)."""
        # hex: never starts with '-' on a command line
        session_id = ticket.session_id if ticket is not None else secrets.token_hex(10)
        assigned = self.ctx.store.get_assignment(user.id)
        assignment = Assignment() if assigned is None or assigned.provider == "xvnc" else \
            Assignment("vnc", assigned.host, assigned.port, assigned.password)

        who = self._who(user, session_id, remote)

        async def audit(event: TypedEvent) -> None:
            """The session's own hook (gateway.live.session)."""
            if isinstance(event, RecordingStopped):  # mid-session: health says so until fixed
                self.health.failed("recording", event.error)
            await self.ctx.audit.aappend(to_event(event, who))

        running = assignment.provider == "xvnc" and any(
            d.spec.user_id == user.id for d in self.workspaces.xvnc.desktops())
        try:
            endpoint = await self.workspaces.attach(user.id, assignment)
        except WorkspaceError as e:
            self.metrics.desktop_starts.labels("failed").inc()
            await self._record(SessionStartFailed(str(e)), who)
            await self._deny(ws, conn, "desktop-unavailable", str(e))
            return None
        self.metrics.desktop_starts.labels(
            "reused" if running or assignment.provider != "xvnc" else "started").inc()
        fb = Framebuffer()
        clipboard = policy.redirection.clipboard
        try:
            # The UTF-8 clipboard is always negotiated so the gateway sees (and audits) every
            # copy in the desktop; policy decides whether any of it goes anywhere.
            rfb = await open_rfb(endpoint.host, endpoint.port, endpoint.password, fb,
                                 clipboard=True, path=endpoint.path,
                                 allow_none=endpoint.allow_none_auth)
        except (RfbError, OSError) as e:
            self.workspaces.detach(user.id)
            await self._record(SessionStartFailed(str(e)[:200]), who)
            await self._deny(ws, conn, "desktop-unavailable", DESKTOP_UNAVAILABLE)
            return None
        # The desktop took seconds to start: read the key and the account again now.
        refusal = self._refusal(user.id, decision.cert_serial, fence)
        if refusal is not None:
            await rfb.close()
            self.workspaces.detach(user.id)
            await self._refuse(ws, conn, refusal, who)
            return None
        flags = clipboard_flags(clipboard) | wire.HelloFlags.HELP | (
            wire.HelloFlags.RECORDED if policy.recording.enabled else 0)
        pipeline = DisplayPipeline(fb, watermark=watermark_for(policy, user, session_id),
                                   session=SessionInfo(session_id, window_title(user), flags),
                                   quality=policy.display.quality,
                                   min_frame_gap=frame_gap(policy.display.max_frame_rate))
        recorder = None
        if policy.recording.enabled:
            try:
                recorder = RecorderSink(AsyncRecordingWriter(RecordingWriter.create(
                    recordings_root(self.ctx.data.root, self.ctx.config.recordings_dir),
                    session_id=session_id, user=user.id,
                    school=user.school or "", width=fb.width, height=fb.height,
                    signing_key=self._signing_key(), clock=time.time)))
            except RecordingFailed as e:
                await rfb.close()
                self.workspaces.detach(user.id)
                self.health.failed("recording", str(e))
                await self._record(RecordingStopped(str(e)), who)
                await self._deny(ws, conn, "recording-failed", f"{e} Sessions must be "
                                 "recorded, so none can start now: tell your school's IT lead.")
                return None
            self.health.ok("recording")
        posture = posture_summary(decision.posture)
        session = LiveSession(
            id=session_id, user_id=user.id, name=user.name, school=user.school,
            cert_serial=decision.cert_serial, remote=remote, posture=posture,
            started_at=self.ctx.clock(), rfb=rfb, pipeline=pipeline,
            limits=session_limits(policy.session),
            audit=audit, on_end=self._ended, recorder=recorder, clipboard=clipboard,
            clipboard_max_bytes=policy.redirection.clipboard_max_bytes,
            encode=partial(self.metrics.timed_encode, encode_frame),
            posture_watch=PostureWatch(policy.posture, last_report=time.monotonic()),
            verify_posture=self._posture_verifier(hello.certificate, session_id),
            on_recheck=lambda outcome: self.metrics.posture_rechecks.labels(outcome).inc(),
            make_receipt=partial(self._receipt, user, session_id),
            moved_to=partial(self._moved_to, session_id),
        )
        # Listed before the audit's await, so a revoke or disable landing now ends it too.
        self.sessions[session_id] = session
        desktop = endpoint.display or f"{endpoint.host}:{endpoint.port}"
        self.registry.add(session)
        try:
            if ticket is None:
                await self._record(SessionStarted(desktop), who)
            else:
                await self._record(SessionRecovered(ticket.node, self.ctx.node, desktop), who)
                await self._record(SessionResumed(remote), who)
        except BaseException:
            await session.end(wire.EndCode.SERVER_SHUTDOWN, "The session could not be audited.")
            raise
        if session.ended:
            refusal = self._refusal(user.id, decision.cert_serial, fence) or Refusal(
                "ended", ENDED_WHILE_STARTING)
            await self._deny(ws, conn, refusal.code, refusal.reason)
            return None
        session.start()
        await ws.send_str(conn.send(self._welcome(session, policy, resumed=ticket is not None)))
        return session

    def _refusal(self, user_id: str, cert_serial: str | None, fence: int) -> Refusal | None:
        refusal = attach_refusal(self.ctx.store, user_id, cert_serial)
        if refusal is None and self._fences.get(user_id, 0) != fence:
            refusal = Refusal("ended", ENDED_WHILE_STARTING)
        return refusal

    async def _record(self, typed: TypedEvent, who: Who) -> None:
        await self.ctx.audit.aappend(to_event(typed, who))

    @staticmethod
    def _who(user: User, session_id: str, remote: str | None) -> Who:
        return Who(actor=user.id, subject=user.id, school=user.school, session=session_id,
                   source=remote)

    async def _refuse(self, ws: web.WebSocketResponse, conn: LoginConnection, refusal: Refusal,
                      who: Who) -> None:
        """Refuse at attach: the teacher hears why even when the refusal cannot be audited."""
        try:
            await self._record(SessionRefused(refusal.code), who)
        finally:
            await self._deny(ws, conn, refusal.code, refusal.reason)

    @staticmethod
    async def _deny(ws: web.WebSocketResponse, conn: LoginConnection, code: str,
                    message: str) -> None:
        await ws.send_str(conn.send(Denied(code, message)))
        await ws.close()

    def _signing_key(self) -> Any:
        key = self.ctx.extras.get("recording_key")
        if key is None:
            key = self.ctx.extras["recording_key"] = load_or_create_recording_key(
                self.ctx.data.root)
        return key

    def _posture_verifier(self, certificate_der: bytes,
                          session_id: str) -> Callable[[int, dict[str, Any], bytes], bool]:
        """The token-signature check of this session's re-checks (the login's certificate)."""
        return posture_verifier(certificate_der, session_id, server_cert_hash(self.ctx))

    def _receipt(self, user: User, session_id: str, work: dict[str, Any]) -> bytes:
        key = receipt_key.for_gateway(self.ctx.extras, self.ctx.data.root)
        return receipt.sign(receipt.WorkReceipt(
            session=session_id, user=user.id, school=user.school, start=work["started_at"],
            end=work["ended_at"], active_minutes=work["active_minutes"],
            idle_minutes=work["idle_minutes"], gateway=self.ctx.config.hostnames[0]), key)

    def _ended(self, session: LiveSession) -> None:
        if self.sessions.pop(session.id, None) is not None:
            self.metrics.sessions.session_ended(session.frames_sent, session.bytes_sent)
        self.registry.remove(session.id)
        self.resume.drop(session.id)
        self.workspaces.detach(session.user_id)
        if session.handed_over:  # the desktop is the other node's now: leave it running
            task = asyncio.create_task(self.workspaces.hand_over(session.user_id))
            self._handovers.add(task)
            task.add_done_callback(self._handovers.discard)

    def _moved_to(self, session_id: str) -> str | None:
        """The node that took this session over (the registry names it), else None."""
        holder = self.registry.holder(session_id)
        return holder if holder is not None and holder != self.ctx.node else None

    async def hand_over(self, session_id: str, node: str) -> bool:
        """`node` resumed this session (the agent reconnected there while it was detached
        here): let go of it without ending it — no second session.end in the trail, the
        registry row and the desktop stay the other node's. False when not held here."""
        session = self.sessions.get(session_id)
        if session is None or session.ended:
            return False
        if self.registry.holder(session_id) != node:  # the taker replaced the row first
            log.warning("session %s: node %s says it took it over, but the registry does not "
                        "name it: kept", session_id, node)
            return False
        await session.let_go(node)
        return True

    def _welcome(self, session: LiveSession, policy: Any, *, resumed: bool) -> Welcome:
        secret = self.resume.renew(session, self._fences.get(session.user_id, 0), self._connected)
        return welcome(session, policy, resumed=resumed, resume_token=secret)

    async def terminate(self, session_id: str, reason: str) -> bool:
        """End a session of any node: here at once, or by asking the node that holds it
        (marked in the registry, then said on the node bus). False when no node has it."""
        session = self.sessions.get(session_id)
        if session is not None:
            await session.end(wire.EndCode.TERMINATED, reason)
            return True
        row = self.registry.get(session_id)
        if row is not None and row.node == self.ctx.node:  # ours, yet not live: a stale row
            self.registry.remove(session_id)
            return False
        if row is None or not self.registry.request_end(session_id, reason):
            return False
        await self._publish(signals.SESSION_END, {"session": session_id, "node": row.node,
                                                  "reason": reason[:300]})
        return True

    async def end_user_sessions(self, user_id: str, reason: str, *,
                                publish: bool = True) -> int:
        """A revoked key or a disabled account ends that user's live sessions at once, and
        fences the logins still in flight (their attach is refused). Called before anything
        else in those actions, so it never waits on a write that can fail. `publish`: tell
        the other nodes too (their sessions of this user end within the bus's delay)."""
        self._fences[user_id] = self._fences.get(user_id, 0) + 1
        ended = 0
        for session in [s for s in self.sessions.values() if s.user_id == user_id]:
            await session.end(wire.EndCode.TERMINATED, reason)
            ended += 1
        if publish:
            await self._publish(signals.USER_END, {"user": user_id, "reason": reason[:300]})
        return ended

    async def _publish(self, topic: str, payload: dict[str, str]) -> None:
        """Tell the other nodes; a bus that cannot be reached is logged (each node also
        re-reads revocations and end requests when its bus reconnects)."""
        if self.bus is None:
            return
        try:
            await self.bus.publish(topic, payload)
        except (BusError, signals.BadSignal) as e:
            log.error("could not tell the other nodes (%s): %s", topic, e)

    async def shutdown(self) -> None:
        """Sessions end (their teachers are told to connect again); desktops that are recorded
        in the Store keep running for the next gateway (docs/ADMINS.md, "Gateway restarts")."""
        self.closing = True
        await self.resume.stop()
        for session in list(self.sessions.values()):
            await session.end(wire.EndCode.SERVER_SHUTDOWN, "The gateway is shutting down for "
                              "maintenance: connect again in a few minutes.")
        await self.workspaces.shutdown(keep_desktops=True)
