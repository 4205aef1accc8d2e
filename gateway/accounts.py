"""Account fields and the school-year roster (CSV): validation in one place (pure).

Attacker-controlled here: every field of a request or roster line (ids, names, schools). Ids are
restricted to a safe alphabet; a roster is at most 20,000 lines and is validated whole before any
account is created, so nothing is half-imported.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from gateway.policy.access import BOARD_ROLES, ROLES

USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
SCHOOL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_NAME = 100
MAX_ROSTER_LINES = 20_000
ROSTER_COLUMNS = ("id", "name", "school", "role")


class AccountError(ValueError):
    """A field is invalid; the message is one sentence naming it."""


@dataclass(frozen=True, slots=True)
class AccountSpec:
    id: str
    name: str
    school: str | None
    role: str


def validate(user_id: str, name: str, school: str | None, role: str) -> AccountSpec:
    if not USER_ID.match(user_id):
        raise AccountError(
            f"The user id {user_id[:70]!r} is not valid: use 1-64 letters, digits, '.', '_', "
            "'@' or '-'."
        )
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise AccountError(f"The name for {user_id} must be 1-{MAX_NAME} printable characters.")
    if role not in ROLES:
        raise AccountError(f"The role {role[:20]!r} is not one of: {', '.join(ROLES)}.")
    school = (school or "").strip() or None
    if school is None and role not in BOARD_ROLES:
        raise AccountError(f"A {role} account needs a school (--school).")
    if school is not None and not SCHOOL_ID.match(school):
        raise AccountError(
            f"The school {school[:70]!r} is not valid: use letters, digits, '.', '_' or '-'."
        )
    return AccountSpec(user_id, name, school, role)


def parse_roster(text: str) -> list[AccountSpec]:
    """Parse a roster CSV (header id,name,school[,role]); errors name the line."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise AccountError("The roster is empty: it needs a header line id,name,school,role.")
    if len(rows) > MAX_ROSTER_LINES:
        raise AccountError(f"The roster has more than {MAX_ROSTER_LINES} lines: split it.")
    header = [h.strip().lower() for h in rows[0]]
    if header[:3] != ["id", "name", "school"] or len(header) > 4 or (
        len(header) == 4 and header[3] != "role"
    ):
        raise AccountError("Line 1: the header must be id,name,school or id,name,school,role.")
    specs: list[AccountSpec] = []
    seen: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise AccountError(
                f"Line {number}: expected {len(header)} fields ({','.join(header)}), "
                f"found {len(row)}."
            )
        cells = [c.strip() for c in row]
        role = cells[3] if len(cells) == 4 and cells[3] else "teacher"
        try:
            spec = validate(cells[0], cells[1], cells[2], role)
        except AccountError as e:
            raise AccountError(f"Line {number}: {e}") from None
        if spec.id in seen:
            raise AccountError(f"Line {number}: the user id {spec.id} appears twice.")
        seen.add(spec.id)
        specs.append(spec)
    return specs
