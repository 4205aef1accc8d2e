"""What the viewer's messages come to (the display pipeline's actions for the session), and the
limiter that keeps reports of blocked attempts and refusals to one a second per kind.

Attacker-controlled: everything here comes from viewer messages the pipeline decoded. Limits: a
report per key (a blocked kind, of at most 256, or a refusal reason) at most every
REPORT_INTERVAL seconds; the attempts between are counted into the next report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.wire import display as wire

REPORT_INTERVAL = 1.0  # seconds between two reports of one blocked kind or refusal reason


@dataclass(frozen=True, slots=True)
class KeyInput:
    keysym: int
    down: bool


@dataclass(frozen=True, slots=True)
class PointerInput:
    x: int
    y: int
    buttons: int  # RFB button mask: bits 0-2 buttons, 3/4 wheel up/down, 5/6 wheel left/right


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes  # encoded messages to send to the viewer now (Pong)


@dataclass(frozen=True, slots=True)
class ClipboardInput:
    text: str  # for RFB ClientCutText; the session still enforces clipboard_max_bytes


@dataclass(frozen=True, slots=True)
class BlockedAttempt:
    kind: int  # wire.BlockedKind, or an unknown number as the viewer sent it
    repeats: int = 0  # more attempts of this kind since the last report, folded in by the limit


@dataclass(frozen=True, slots=True)
class ClipboardRefused:
    """A ClipboardIn the session's flags do not allow (a modified page): dropped, to be audited.
    Carries the size, never the text, so that it stays out of logs and the audit trail."""

    nbytes: int
    reason: str
    repeats: int = 0


@dataclass(frozen=True, slots=True)
class HelpRequest:
    """The teacher pressed a call-centre help button (gateway.live.help decides what it does)."""

    action: wire.HelpAction


Action = (KeyInput | PointerInput | Reply | ClipboardInput | BlockedAttempt | ClipboardRefused
          | HelpRequest)


@dataclass(slots=True)
class ReportLimiter:
    """At most one report per key every REPORT_INTERVAL seconds; the rest are folded in."""

    _last: dict[object, tuple[float, int]] = field(default_factory=dict)  # (report, folded)

    def report(self, key: object, now: float) -> int | None:
        """The count folded into this report, or None to fold it into the next."""
        last, folded = self._last.get(key, (None, 0))
        if last is not None and 0 <= now - last < REPORT_INTERVAL:
            self._last[key] = (last, folded + 1)
            return None
        self._last[key] = (now, 0)
        return folded
