"""Who may do what in the admin API: roles and school scope (pure, table-tested).

Attacker-controlled here: nothing directly — the actor comes from a verified operator session,
the target from the request. Deny wins; a school-scoped role acts only within its own school.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    CIO = "cio"
    OFFICER = "officer"
    TEACHER = "teacher"
    HELPDESK = "helpdesk"  # the call centre: joins a live session when its teacher asks for help


ROLES = tuple(r.value for r in Role)
# Roles that may exist without a school: board-level administrators, security officers and the
# board's call centre. With a school they act only within it.
BOARD_ROLES = frozenset({Role.ADMIN, Role.OFFICER, Role.HELPDESK})

# action -> roles allowed to perform it (before the school-scope check).
PERMISSIONS: dict[str, frozenset[Role]] = {
    "users.read": frozenset({Role.ADMIN, Role.CIO, Role.OFFICER}),
    "users.write": frozenset({Role.ADMIN, Role.CIO}),
    "keys.read": frozenset({Role.ADMIN, Role.CIO, Role.OFFICER}),
    "keys.issue": frozenset({Role.ADMIN, Role.CIO}),
    "keys.revoke": frozenset({Role.ADMIN, Role.CIO, Role.OFFICER}),
    "audit.read": frozenset({Role.ADMIN, Role.OFFICER}),
    "workspaces.write": frozenset({Role.ADMIN, Role.CIO}),
    "sessions.read": frozenset({Role.ADMIN, Role.OFFICER, Role.CIO}),
    "sessions.terminate": frozenset({Role.ADMIN, Role.OFFICER}),
    "sessions.watch": frozenset({Role.ADMIN, Role.OFFICER}),
    "recordings.read": frozenset({Role.ADMIN, Role.OFFICER}),
    "recordings.delete": frozenset({Role.ADMIN}),
    # Two-person replay: a request is answered by a second, different officer (the API checks
    # that the approver is not the requester).
    "recordings.approve": frozenset({Role.ADMIN, Role.OFFICER}),
    # Call-centre help: see who asks for help and join their session (view-only until the
    # teacher hands over control in the viewer).
    "help.read": frozenset({Role.ADMIN, Role.HELPDESK}),
    "help.join": frozenset({Role.ADMIN, Role.HELPDESK}),
    "reports.read": frozenset({Role.ADMIN, Role.OFFICER, Role.CIO}),
}

# Roles a CIO may hand out: CIOs manage their teachers, not other CIOs or board roles.
CIO_GRANTABLE = frozenset({Role.TEACHER})


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    role: str
    school: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


def authorize(
    actor: Actor, action: str, *, school: str | None = None, grants_role: str | None = None
) -> Decision:
    """May `actor` do `action` on something belonging to `school` (None = board level)?"""
    allowed = PERMISSIONS.get(action)
    if allowed is None:
        return Decision(False, f"Unknown action {action!r}.")
    role = Role(actor.role) if actor.role in ROLES else None
    if role is None or role not in allowed:
        return Decision(False, f"Your role ({actor.role}) may not do this ({action}).")
    if role is Role.ADMIN or (role in BOARD_ROLES and actor.school is None):
        return Decision(True)
    if school != actor.school:
        where = f"school {school}" if school else "the whole board"
        return Decision(
            False, f"You can act only within your own school ({actor.school}), not {where}."
        )
    if grants_role is not None and role is Role.CIO and grants_role not in CIO_GRANTABLE:
        return Decision(False, f"A CIO cannot create or change {grants_role} accounts.")
    return Decision(True)
