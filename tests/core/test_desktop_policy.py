"""A teacher's desktop settings come from her own policy: the shipped default.toml, a school's
file and a teacher's file in a real policy folder, users in a real SQLite store."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.live.desktop_policy import settings_lookup
from gateway.policy.load import load_policies
from gateway.store.base import User
from gateway.store.sqlite import SqliteStore

SHIPPED = Path(__file__).resolve().parents[2] / "policies"

MINAMI = """
[match]
schools = ["minami-es"]

[workspace]
home_url = "https://grades.minami.example/"
allowed_hosts = ["grades.minami.example:443"]
stop_unattached_after = "5m"

[redirection]
printing = true
"""

ONE_TEACHER = """
[match]
users = ["t.ito"]

[workspace]
session_command = "xterm -title 'Ito sensei'"
"""


@pytest.fixture
def lookup(tmp_path: Path):  # type: ignore[no-untyped-def]
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(SHIPPED / "default.toml", policies / "default.toml")
    (policies / "20-minami.toml").write_text(MINAMI)
    (policies / "50-ito.toml").write_text(ONE_TEACHER)
    store = SqliteStore(tmp_path / "state.db")
    store.add_users([User("t.kita", "北 花子", "teacher", "kita-es"),
                     User("t.minami", "南 太郎", "teacher", "minami-es"),
                     User("t.ito", "伊藤 一", "teacher", "minami-es")])
    context = SimpleNamespace(store=store, policies=load_policies(policies))
    yield context, settings_lookup(context)  # type: ignore[arg-type]
    store.close()


def test_each_teacher_gets_her_schools_and_her_own_settings(lookup) -> None:  # type: ignore[no-untyped-def]
    _, settings_for = lookup
    kita, minami, ito = (settings_for(u) for u in ("t.kita", "t.minami", "t.ito"))
    assert kita.session_command == ("staffroom-session",)
    assert (kita.home_url, kita.allowed_hosts, kita.printing) == ("", (), False)
    assert kita.stop_unattached_after == 1800
    assert minami.home_url == "https://grades.minami.example/"
    assert minami.allowed_hosts == ("grades.minami.example:443",) and minami.printing
    assert minami.stop_unattached_after == 300
    assert minami.session_command == ("staffroom-session",)
    # The teacher's own file on top of her school's: split like a shell.
    assert ito.session_command == ("xterm", "-title", "Ito sensei")
    assert ito.home_url == minami.home_url and ito.printing


def test_an_unknown_user_gets_the_teachers_defaults(lookup) -> None:  # type: ignore[no-untyped-def]
    _, settings_for = lookup
    assert settings_for("t.gone") == settings_for("t.kita")
