"""Roles and school scope of the admin API (table-driven)."""

from __future__ import annotations

import pytest

from gateway.policy.access import Actor, authorize

ADMIN = Actor("admin", "admin", None)
CIO_A = Actor("cio.a", "cio", "school-a")
OFFICER = Actor("off", "officer", None)
OFFICER_A = Actor("off.a", "officer", "school-a")
TEACHER = Actor("t", "teacher", "school-a")
HELP = Actor("help", "helpdesk", None)
HELP_A = Actor("help.a", "helpdesk", "school-a")


@pytest.mark.parametrize("actor,action,school,grants,allowed", [
    (ADMIN, "users.write", "school-b", "cio", True),
    (CIO_A, "users.write", "school-a", "teacher", True),
    (CIO_A, "users.write", "school-b", "teacher", False),
    (CIO_A, "users.write", "school-a", "cio", False),
    (CIO_A, "users.write", None, "officer", False),
    (CIO_A, "keys.issue", "school-a", None, True),
    (CIO_A, "keys.issue", "school-b", None, False),
    (CIO_A, "audit.read", "school-a", None, False),
    (OFFICER, "audit.read", "school-b", None, True),
    (OFFICER_A, "audit.read", "school-a", None, True),
    (OFFICER_A, "audit.read", "school-b", None, False),
    (OFFICER, "keys.issue", "school-a", None, False),
    (TEACHER, "users.read", "school-a", None, False),
    (TEACHER, "keys.issue", "school-a", None, False),
    (ADMIN, "no.such.action", None, None, False),
    (OFFICER, "recordings.approve", "school-b", None, True),
    (OFFICER_A, "recordings.approve", "school-b", None, False),
    (CIO_A, "recordings.approve", "school-a", None, False),
    (HELP, "help.join", "school-b", None, True),
    (HELP_A, "help.join", "school-a", None, True),
    (HELP_A, "help.join", "school-b", None, False),
    (HELP, "help.read", None, None, True),
    (HELP, "sessions.watch", "school-a", None, False),
    (HELP, "recordings.read", "school-a", None, False),
    (HELP, "audit.read", None, None, False),
    (OFFICER, "help.join", "school-a", None, False),
    (TEACHER, "help.join", "school-a", None, False),
    (CIO_A, "users.write", "school-a", "helpdesk", False),
])
def test_authorize(actor: Actor, action: str, school: str | None, grants: str | None,
                   allowed: bool) -> None:
    decision = authorize(actor, action, school=school, grants_role=grants)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason.endswith(".")


def test_cross_school_sentence_names_both_schools() -> None:
    d = authorize(CIO_A, "keys.revoke", school="school-b")
    assert "school-a" in d.reason and "school-b" in d.reason
