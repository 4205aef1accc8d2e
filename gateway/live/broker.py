"""The session broker: starts, resumes, lists and ends live sessions.

Attacker-controlled here: nothing directly — it runs after the login decision; the resume id
comes from the agent and is honoured only for the same user and the same certificate, within the
reconnect grace, after a fresh key signature.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from gateway.audit.events import AuditEvent
from gateway.audit.keys import load_signing_key
from gateway.context import GatewayContext
from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline, SessionInfo, clipboard_flags
from gateway.display.watermark import Watermark
from gateway.live.login import LoginDecision
from gateway.live.observers import RecorderSink
from gateway.live.session import Limits, LiveSession
from gateway.recording.store import recordings_root
from gateway.recording.writer import AsyncRecordingWriter, RecordingFailed, RecordingWriter
from gateway.rfb.connection import open_rfb
from gateway.rfb.errors import RfbError
from gateway.store.base import User
from gateway.wire import display as wire
from gateway.wire.login import Denied, Hello, LoginConnection, Welcome
from gateway.wire.posture import PostureReport
from gateway.workspace.base import Assignment, WorkspaceError
from gateway.workspace.manager import WorkspaceManager

log = logging.getLogger(__name__)

DESKTOP_UNAVAILABLE = ("The school desktop is not answering: try again in a minute, and tell "
                       "your school's IT lead if it keeps happening.")


def _seconds(value: Any, default: float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else default


@dataclass(frozen=True, slots=True)
class SessionSummary:
    id: str
    user: str
    school: str | None
    started_at: str
    remote: str | None
    posture: str
    attached: bool
    bytes_sent: int
    frames_sent: int


def posture_summary(report: PostureReport | None) -> str:
    """One line for session listings: OS and antivirus products with their definition dates."""
    if report is None:
        return ""
    products = ", ".join(
        a.product + (f" ({a.definitions_time:%Y-%m-%d})" if a.definitions_time else "")
        for a in report.antivirus) or "no antivirus"
    return f"{report.os} {report.os_version}; {products}"


class SessionBroker:
    def __init__(self, ctx: GatewayContext, workspaces: WorkspaceManager) -> None:
        self.ctx = ctx
        self.workspaces = workspaces
        self.sessions: dict[str, LiveSession] = {}

    def count(self, user_id: str) -> int:
        return sum(1 for s in self.sessions.values() if s.user_id == user_id and not s.ended)

    def can_resume(self, user_id: str, session_id: str | None, serial: str) -> bool:
        s = self.sessions.get(session_id or "")
        return bool(s and not s.ended and s.user_id == user_id and s.cert_serial == serial)

    def summaries(self) -> list[SessionSummary]:
        return [SessionSummary(s.id, s.user_id, s.school, s.started_at.isoformat(), s.remote,
                               s.posture, s.ws is not None, s.bytes_sent, s.frames_sent)
                for s in self.sessions.values() if not s.ended]

    async def run(self, ws: web.WebSocketResponse, *, conn: LoginConnection, hello: Hello,
                  user: User | None, policy: Any, decision: LoginDecision,
                  remote: str | None) -> None:
        assert user is not None
        session = self.sessions.get(hello.resume or "")
        if session is not None and self.can_resume(user.id, hello.resume, decision.cert_serial
                                                   or ""):
            await ws.send_str(conn.send(self._welcome(session, policy, resumed=True)))
            await session.audit("session.resume", "ok", {"remote": remote})
            await session.attach(ws)
            return
        session = await self._start(ws, conn, user, policy, decision, remote)
        if session is not None:
            await session.attach(ws)

    async def _start(self, ws: web.WebSocketResponse, conn: LoginConnection, user: User,
                     policy: Any, decision: LoginDecision,
                     remote: str | None) -> LiveSession | None:
        session_id = secrets.token_hex(10)  # hex: never starts with '-' on a command line
        assigned = self.ctx.store.get_assignment(user.id)
        assignment = Assignment() if assigned is None or assigned.provider == "xvnc" else \
            Assignment("vnc", assigned.host, assigned.port, assigned.password)

        async def audit(kind: str, outcome: str, details: dict[str, object]) -> None:
            await self.ctx.audit.aappend(AuditEvent(
                kind=kind, outcome=outcome, actor=user.id, subject=user.id, school=user.school,
                session=session_id, source=remote, details=details))

        try:
            endpoint = await self.workspaces.attach(user.id, assignment)
        except WorkspaceError as e:
            await audit("session.start", "error", {"error": str(e)})
            await self._deny(ws, conn, "desktop-unavailable", str(e))
            return None
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
            await audit("session.start", "error", {"error": str(e)[:200]})
            await self._deny(ws, conn, "desktop-unavailable", DESKTOP_UNAVAILABLE)
            return None
        flags = clipboard_flags(clipboard) | (
            wire.HelloFlags.RECORDED if policy.recording.enabled else 0)
        pipeline = DisplayPipeline(fb, watermark=self._watermark(policy, user, session_id),
                                   session=SessionInfo(session_id, self._info(user), flags))
        recorder = None
        if policy.recording.enabled:
            try:
                recorder = RecorderSink(AsyncRecordingWriter(RecordingWriter.create(
                    recordings_root(self.ctx.data.root), session_id=session_id, user=user.id,
                    school=user.school or "", width=fb.width, height=fb.height,
                    signing_key=self._signing_key(), clock=time.time)))
            except RecordingFailed as e:
                await rfb.close()
                self.workspaces.detach(user.id)
                await audit("recording.failed", "error", {"error": str(e)})
                await self._deny(ws, conn, "recording-failed", f"{e} Sessions must be "
                                 "recorded, so none can start now: tell your school's IT lead.")
                return None
        s = policy.session
        posture = posture_summary(decision.posture)
        session = LiveSession(
            id=session_id, user_id=user.id, name=user.name, school=user.school,
            cert_serial=decision.cert_serial, remote=remote, posture=posture,
            started_at=self.ctx.clock(), rfb=rfb, pipeline=pipeline,
            limits=Limits(_seconds(s.idle_timeout, 900), _seconds(s.max_duration, 28800),
                          _seconds(s.reconnect_grace, 45)),
            audit=audit, on_end=self._ended, recorder=recorder, clipboard=clipboard,
            clipboard_max_bytes=policy.redirection.clipboard_max_bytes,
        )
        await audit("session.start", "ok", {"desktop": endpoint.display or
                                            f"{endpoint.host}:{endpoint.port}"})
        self.sessions[session_id] = session
        session.start()
        await ws.send_str(conn.send(self._welcome(session, policy, resumed=False)))
        return session

    @staticmethod
    async def _deny(ws: web.WebSocketResponse, conn: LoginConnection, code: str,
                    message: str) -> None:
        await ws.send_str(conn.send(Denied(code, message)))
        await ws.close()

    def _signing_key(self) -> Any:
        key = self.ctx.extras.get("recording_key")
        if key is None:
            key = self.ctx.extras["recording_key"] = load_signing_key(self.ctx.data.audit_key)
        return key

    def _ended(self, session: LiveSession) -> None:
        self.sessions.pop(session.id, None)
        self.workspaces.detach(session.user_id)

    @staticmethod
    def _info(user: User) -> str:
        return f"Staffroom — {user.name}" + (f" ({user.school})" if user.school else "")

    @staticmethod
    def _watermark(policy: Any, user: User, session_id: str) -> Watermark | None:
        w = policy.watermark
        if not w.enabled:
            return None
        template = w.template.replace("{datetime}", "{time}")
        return Watermark(template, {"user": user.id, "name": user.name,
                                    "school": user.school or "", "session": session_id},
                         opacity=w.opacity)

    @staticmethod
    def _welcome(session: LiveSession, policy: Any, *, resumed: bool) -> Welcome:
        r = policy.redirection
        disabled = [k for k in ("printing", "drives", "devices", "file_transfer", "audio")
                    if not getattr(r, k)]
        if r.clipboard == "off":
            disabled.append("clipboard")
        return Welcome(session=session.id, user=session.user_id, name=session.name,
                       school=session.school, resumed=resumed, policy={
                           "disabled": disabled, "clipboard": r.clipboard,
                           "watermark": bool(policy.watermark.enabled),
                           "reconnect_grace_seconds": session.limits.reconnect_grace,
                           "idle_timeout_seconds": session.limits.idle_timeout,
                           "max_duration_seconds": session.limits.max_duration})

    async def terminate(self, session_id: str, reason: str) -> bool:
        session = self.sessions.get(session_id)
        if session is None:
            return False
        await session.end(wire.EndCode.TERMINATED, reason)
        return True

    async def end_user_sessions(self, user_id: str, reason: str) -> int:
        """A revoked key or a disabled account ends that user's live sessions at once."""
        ended = 0
        for session in [s for s in self.sessions.values() if s.user_id == user_id]:
            await session.end(wire.EndCode.TERMINATED, reason)
            ended += 1
        return ended

    async def shutdown(self) -> None:
        for session in list(self.sessions.values()):
            await session.end(wire.EndCode.SERVER_SHUTDOWN, "The gateway is shutting down for "
                              "maintenance: connect again in a few minutes.")
        await self.workspaces.shutdown()
