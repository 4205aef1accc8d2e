"""Call-centre help of one live session: one transition table, pure (issue 13).

Attacker-controlled here: the teacher's Help actions (any HelpAction, in any order, from the
viewer) and which helpdesk operator tries to join or send input. Rules: only a teacher's request
lets an operator join; one operator at a time; the operator is view-only until the teacher
allows control, and only the teacher can allow it; the teacher can take control back or end the
help at any time. Each transition names the audit record the shell writes before applying it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.wire.display import HelpAction, HelpStatus


@dataclass(frozen=True, slots=True)
class HelpCase:
    status: HelpStatus = HelpStatus.NONE
    helper: str | None = None  # the operator's user id while one is joined
    helper_name: str = ""  # "name (id)", shown to the teacher

    @property
    def control(self) -> bool:
        return self.status is HelpStatus.CONTROL


@dataclass(frozen=True, slots=True)
class Transition:
    state: HelpCase
    audit: str | None = None  # the audit kind ("help.request", …); None = nothing happened
    outcome: str = "ok"
    disconnect_helper: bool = False
    reason: str = ""  # a refusal's sentence for the operator


NEXT: dict[tuple[HelpStatus, HelpAction], tuple[HelpStatus, str]] = {
    # (status, the teacher's action) -> (new status, audit kind); anything else changes nothing.
    (HelpStatus.NONE, HelpAction.ASK): (HelpStatus.ASKED, "help.request"),
    (HelpStatus.ASKED, HelpAction.END): (HelpStatus.NONE, "help.cancel"),
    (HelpStatus.WATCHING, HelpAction.ALLOW_CONTROL): (HelpStatus.CONTROL, "help.control"),
    (HelpStatus.CONTROL, HelpAction.VIEW_ONLY): (HelpStatus.WATCHING, "help.view_only"),
    (HelpStatus.WATCHING, HelpAction.END): (HelpStatus.NONE, "help.end"),
    (HelpStatus.CONTROL, HelpAction.END): (HelpStatus.NONE, "help.end"),
}


def teacher(state: HelpCase, action: HelpAction) -> Transition:
    """The teacher pressed a help button in the viewer."""
    step = NEXT.get((state.status, action))
    if step is None:
        return Transition(state)  # a repeated or stale click: nothing to do, nothing to audit
    status, kind = step
    if status is HelpStatus.NONE:
        return Transition(HelpCase(), kind, disconnect_helper=state.helper is not None)
    return Transition(replace(state, status=status), kind)


def join(state: HelpCase, helper: str, helper_name: str) -> Transition:
    """A helpdesk operator opens the session from the console."""
    if state.status is HelpStatus.NONE:
        return Transition(state, "help.join", "denied",
                          reason="This teacher has not asked for help (or the help has ended).")
    if state.helper is not None:
        return Transition(state, "help.join", "denied",
                          reason=f"{state.helper} is already helping this teacher.")
    return Transition(HelpCase(HelpStatus.WATCHING, helper, helper_name), "help.join")


def leave(state: HelpCase, helper: str) -> Transition:
    """The operator closed their view (or lost the connection): the help is over."""
    if state.helper != helper:
        return Transition(state)
    return Transition(HelpCase(), "help.leave")


def may_input(state: HelpCase, helper: str) -> bool:
    """Keyboard and pointer from this operator reach the desktop only under the teacher's
    control grant."""
    return state.control and state.helper == helper
