"""A session another node resumed, seen from the node that still held it detached
(gateway.live.session's clock at the end of the reconnect grace, `let_go`): it lets go without
ending it when the registry names another node — the fallback when the node bus's session.moved
was missed — and ends it as before otherwise."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gateway.audit.kinds import SessionEnded, TypedEvent
from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline
from gateway.live import session_events as ev
from gateway.live.session import Limits, LiveSession


class Desktop:
    """The session's RFB connection, as far as ending a session touches it."""

    closed = False

    async def close(self) -> None:
        self.closed = True


def detached(moved_to: str | None) -> tuple[LiveSession, list[TypedEvent], list[str]]:
    audited: list[TypedEvent] = []
    ended: list[str] = []

    async def audit(event: TypedEvent) -> None:
        audited.append(event)

    session = LiveSession(
        id="aa01", user_id="t.a", name="佐藤 花子", school="kita-es", cert_serial="a0",
        remote="192.0.2.1", posture="", started_at=datetime.now(UTC),
        rfb=Desktop(),  # type: ignore[arg-type]
        pipeline=DisplayPipeline(Framebuffer()), limits=Limits(900, 28800, 0.05), audit=audit,
        on_end=lambda s: ended.append(s.id), moved_to=lambda: moved_to)
    return session, audited, ended


async def run_grace(session: LiveSession) -> None:
    """Attached, the tunnel lost, then the session's own clock until the grace is over."""
    await session.feed(ev.Attached())
    await session.feed(ev.Detached())
    await asyncio.wait_for(session._clock(), 5)


async def test_the_grace_ends_in_a_hand_over_when_another_node_holds_the_session() -> None:
    session, audited, ended = detached("b")
    await run_grace(session)
    assert session.ended and session.handed_over and ended == ["aa01"]
    assert audited == []  # no session.end: it goes on, on node b
    assert session.rfb.closed  # type: ignore[attr-defined]


async def test_the_grace_ends_the_session_when_no_other_node_took_it() -> None:
    session, audited, ended = detached(None)
    await run_grace(session)
    assert session.ended and not session.handed_over and ended == ["aa01"]
    assert [type(e) for e in audited] == [SessionEnded]
    assert "not resumed" in audited[0].reason  # type: ignore[attr-defined]


async def test_letting_go_twice_or_after_the_end_does_nothing() -> None:
    session, audited, ended = detached(None)
    await session.let_go("b")
    await session.let_go("c")
    await session.end(0, "too late")
    assert ended == ["aa01"] and audited == []
