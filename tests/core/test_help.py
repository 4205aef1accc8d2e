"""Call-centre help rules (gateway/live/help.py), table-tested: only the teacher's request lets an
operator join, one operator at a time, view-only until the teacher allows control, and the
teacher takes control back or ends the help at any time."""

from __future__ import annotations

import pytest

from gateway.live import help as h
from gateway.wire.display import HelpAction as A
from gateway.wire.display import HelpStatus as S

NONE = h.HelpCase()
ASKED = h.HelpCase(S.ASKED)
WATCHING = h.HelpCase(S.WATCHING, "help.1", "窓口 (help.1)")
CONTROL = h.HelpCase(S.CONTROL, "help.1", "窓口 (help.1)")


@pytest.mark.parametrize(("before", "action", "after", "audit", "disconnect"), [
    (NONE, A.ASK, ASKED, "help.request", False),
    (ASKED, A.END, NONE, "help.cancel", False),
    (WATCHING, A.ALLOW_CONTROL, CONTROL, "help.control", False),
    (CONTROL, A.VIEW_ONLY, WATCHING, "help.view_only", False),
    (WATCHING, A.END, NONE, "help.end", True),
    (CONTROL, A.END, NONE, "help.end", True),
    # Anything else changes nothing and is not audited (repeated or stale clicks).
    (ASKED, A.ASK, ASKED, None, False),
    (ASKED, A.ALLOW_CONTROL, ASKED, None, False),  # nobody to give control to yet
    (NONE, A.ALLOW_CONTROL, NONE, None, False),
    (NONE, A.END, NONE, None, False),
    (WATCHING, A.ASK, WATCHING, None, False),
    (WATCHING, A.VIEW_ONLY, WATCHING, None, False),
    (CONTROL, A.ALLOW_CONTROL, CONTROL, None, False),
])  # fmt: skip
def test_teacher_actions(before: h.HelpCase, action: A, after: h.HelpCase, audit: str | None,
                         disconnect: bool) -> None:
    t = h.teacher(before, action)
    assert (t.state, t.audit, t.disconnect_helper) == (after, audit, disconnect)


def test_an_operator_joins_only_a_request_and_only_one_at_a_time() -> None:
    refused = h.join(NONE, "help.1", "x")
    assert (refused.state, refused.outcome) == (NONE, "denied")
    assert "not asked for help" in refused.reason
    joined = h.join(ASKED, "help.1", "窓口 (help.1)")
    assert (joined.state, joined.audit, joined.outcome) == (WATCHING, "help.join", "ok")
    second = h.join(WATCHING, "help.2", "y")
    assert second.outcome == "denied" and "help.1 is already helping" in second.reason
    assert h.join(CONTROL, "help.2", "y").state == CONTROL


def test_input_only_with_control_and_only_from_that_operator() -> None:
    assert not h.may_input(WATCHING, "help.1")
    assert h.may_input(CONTROL, "help.1")
    assert not h.may_input(CONTROL, "help.2")
    assert not h.may_input(NONE, "help.1") and not h.may_input(ASKED, "help.1")


def test_the_operator_leaving_ends_the_help() -> None:
    assert h.leave(CONTROL, "help.1") == h.Transition(NONE, "help.leave")
    assert h.leave(CONTROL, "help.2").audit is None  # someone else's view closing: nothing
    assert h.leave(NONE, "help.1").audit is None
