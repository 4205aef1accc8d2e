"""Call-centre help inside one live session: the session machine's help state and the outputs
each step needs (gateway/live/session_machine.py calls it; the transition table is
gateway/live/help.py). Pure: no I/O, no clock.

Attacker-controlled here: the teacher's Help actions (from the viewer) and which operator
joins, leaves or sends input (from the helpdesk console). Limits: at most MAX_HELP_ASKS requests
audited per session; an operator's refused input is audited once per view. Every step's `Audit`
comes before its effects in the same list, as everywhere in the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.audit.kinds import HELP_STEPS, HelpInputBlocked
from gateway.live import help as rules
from gateway.live.session_events import (
    AdmitHelper,
    Audit,
    DropHelper,
    MarkRecording,
    Output,
    PostHelper,
    RefuseHelper,
    SendViewer,
    WakeFrames,
)
from gateway.wire import display as wire

MAX_HELP_ASKS = 20  # help requests audited per session (a looping page cannot flood the log)


def help_state(case: rules.HelpCase) -> bytes:
    return wire.encode(wire.HelpState(case.status, case.helper_name))


@dataclass(eq=False)
class SessionHelp:
    case: rules.HelpCase = field(default_factory=rules.HelpCase)
    asks: int = 0
    helper_view: bool = False  # the operator's view is attached
    helper_refused: bool = False  # their input was refused (audited once per view)

    def reloaded(self) -> list[Output]:
        """A (re)attached page shows the help as it stands."""
        return [SendViewer(help_state(self.case))] if self.case != rules.HelpCase() else []

    def teacher(self, action: wire.HelpAction, recording: bool) -> list[Output]:
        if action is wire.HelpAction.ASK and self.asks >= MAX_HELP_ASKS:
            return []
        t = rules.teacher(self.case, action)
        if t.audit is None:
            return [SendViewer(help_state(self.case))]  # a stale page: show it the truth
        if action is wire.HelpAction.ASK:
            self.asks += 1
        return self._step(t, action.name.lower(), recording)

    def join(self, helper: str, name: str, recording: bool) -> list[Output]:
        t = rules.join(self.case, helper, name)
        if t.outcome != "ok":  # the state changed between the API's check and the upgrade
            return [RefuseHelper(t.reason)]
        self.case, self.helper_view, self.helper_refused = t.state, True, False
        data = help_state(t.state)
        out: list[Output] = [AdmitHelper(), PostHelper(data), SendViewer(data)]
        if recording:
            out.append(MarkRecording("help", f"help.join {helper}"))
        return [*out, WakeFrames()]

    def left(self, helper: str, recording: bool) -> list[Output]:
        if not self.helper_view:
            return []  # the teacher's end already let them go
        self.helper_view = False
        t = rules.leave(self.case, helper)
        return [] if t.audit is None else self._step(t, None, recording)

    def let_go(self) -> None:
        """The session ends or moves on: the operator's view is closed with it."""
        self.helper_view = False

    def refuse_input(self, helper: str) -> list[Output] | None:
        """None if ``helper`` may send input now; else what to output instead (an audit, once
        per view)."""
        if rules.may_input(self.case, helper):
            return None
        if self.helper_refused:
            return []
        self.helper_refused = True
        return [Audit(HelpInputBlocked(helper=helper, reason="the teacher has not given control"))]

    def _step(self, t: rules.Transition, action: str | None, recording: bool) -> list[Output]:
        """Audit, then change the state, mark the recording and tell both sides."""
        assert t.audit is not None
        before = self.case
        out: list[Output] = [Audit(HELP_STEPS[t.audit](helper=t.state.helper or before.helper,
                                                        action=action))]
        self.case = t.state
        if recording:
            out.append(MarkRecording("help", f"{t.audit} {before.helper or ''}".strip()))
        data = help_state(t.state)
        out.append(SendViewer(data))
        if self.helper_view:
            out.append(PostHelper(data))
            if t.disconnect_helper:
                self.helper_view = False
                out.append(DropHelper())
        return out
