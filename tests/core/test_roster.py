"""Account validation and the school-year roster CSV."""

from __future__ import annotations

import pytest

from gateway.accounts import AccountError, parse_roster, validate


def test_roster_parses_with_default_role_and_bom() -> None:
    specs = parse_roster("\ufeffid,name,school\nt.sato,佐藤 花子,school-a\n\nt.ito,伊藤,school-a\n")
    assert [(s.id, s.name, s.school, s.role) for s in specs] == [
        ("t.sato", "佐藤 花子", "school-a", "teacher"), ("t.ito", "伊藤", "school-a", "teacher")]


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("user,name\n", "Line 1: the header"),
    ("id,name,school,role\nt1,A,s1,teacher\nt2,B,s1\n", "Line 3: expected 4 fields"),
    ("id,name,school,role\nt1,A,s1,teacher\nt 2,B,s1,teacher\n", "Line 3: The user id"),
    ("id,name,school,role\nt1,A,s1,wizard\n", "Line 2: The role"),
    ("id,name,school,role\nt1,A,,teacher\n", "Line 2: A teacher account needs a school"),
    ("id,name,school\nt1,A,s1\nt1,B,s1\n", "Line 3: the user id t1 appears twice"),
])
def test_malformed_roster_names_the_line(text: str, message: str) -> None:
    with pytest.raises(AccountError, match=message):
        parse_roster(text)


def test_board_roles_need_no_school_but_teachers_do() -> None:
    assert validate("off", "Officer", None, "officer").school is None
    with pytest.raises(AccountError, match="needs a school"):
        validate("t", "T", "", "teacher")
