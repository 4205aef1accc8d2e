"""Loading a policy folder: every error names file:line and what is allowed; narrowing files
match schools, roles and users and apply in name order, later winning, with provenance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy.load import PolicyError, check_dir, key_lines, load_policies
from tests.fixtures.policy import SHIPPED_POLICIES, default_line

AddPolicy = Callable[[str, str], Path]
HEAD = '# a school\'s policy\n[match]\nschools = ["s1"]\n'  # the body starts on line 4

ERRORS = [
    ("unknown key", '[redirection]\nclipbord = "off"\n',
     "x.toml:5: redirection.clipbord: unknown key 'clipbord' in [redirection]; allowed keys: "
     "clipboard, clipboard_max_bytes, printing, drives, devices, file_transfer, audio"),
    ("wrong type", '[redirection]\nprinting = "no"\n',
     "x.toml:5: redirection.printing: expected true or false, got 'no'"),
    ("wrong choice", '[redirection]\n\n# why\nclipboard = "sideways"\n',
     'x.toml:7: redirection.clipboard: expected one of "off", "to-remote", "to-local", "both", '
     "got 'sideways'"),
    ("unknown display quality", '[display]\nquality = "sharp"\n',
     'x.toml:5: display.quality: expected one of "build-to-lossless", "lossy", "lossless", '
     "got 'sharp'"),
    ("out of range", "[posture]\nmax_definitions_age_days = 400\n",
     "x.toml:5: posture.max_definitions_age_days: expected an integer 0..365, got 400"),
    ("bad duration", '[session]\nidle_timeout = "15 minutes"\n',
     'x.toml:5: session.idle_timeout: expected a duration like "45s", "15m", "8h" or "1h30m" of '
     "at least 1s, got '15 minutes'"),
    ("bad hours", '[session]\nallowed_hours = "21:00-07:00"\n',
     'x.toml:5: session.allowed_hours: expected hours like "07:00-21:00" (start before end; '
     "\"00:00-24:00\" is all day), got '21:00-07:00' (ends before it starts)"),
    ("bad template field", '[watermark]\ntemplate = "{user} {password}"\n',
     "x.toml:5: watermark.template: unknown field {password}; allowed fields: {user}, {name}, "
     "{school}, {datetime}, {session}"),
    ("unknown section", '[sesion]\nidle_timeout = "1m"\n',
     "x.toml:4: [sesion]: unknown section [sesion]; allowed sections: redirection, posture, "
     "session, auth, watermark, display, recording, workspace, keys, match"),
    ("syntax error", "[session]\nidle_timeout = \n",
     "x.toml:5: TOML syntax error: Invalid value (at line 5, column 16)"),
    ("dotted key", 'redirection.clipboard = "sideways"\n',
     "x.toml:4: redirection.clipboard: expected one of"),
    ("quoted key", '[auth]\n"second_factor" = "sms"\n', "x.toml:5: auth.second_factor: "),
    ("nested table", "[session.extra]\nx = 1\n",
     "x.toml:4: session.extra: unknown key 'extra' in [session]"),
    ("key outside a table", 'clipboard = "off"\n',
     "x.toml:3: [clipboard]: 'clipboard' is outside any table; put it under [redirection]"),
    ("array of tables", '[[auth]]\nsecond_factor = "totp"\n',
     "x.toml:1: [auth]: expected a [auth] table, got [[auth]]"),
    ("unknown match key", '[auth]\nsecond_factor = "totp"\n[match.x]\n',
     "x.toml:6: match.x: unknown key 'x' in [match]; allowed keys: schools, roles, users"),
]


@pytest.mark.parametrize("body,expected", [(b, e) for _, b, e in ERRORS],
                         ids=[name for name, _, _ in ERRORS])
def test_errors_name_file_line_and_what_is_allowed(policy_dir: Path, add_policy: AddPolicy,
                                                   body: str, expected: str) -> None:
    text = HEAD + body
    if body.startswith("clipboard"):  # a bare key must come before any table to be bare
        text = body + HEAD.replace("# a school's policy\n", "")
        expected = expected.replace("x.toml:3", "x.toml:1")
    if body.startswith("[[") or body.startswith("redirection."):
        text = body + HEAD.replace("# a school's policy\n", "")
        expected = expected.replace("x.toml:4", "x.toml:1")
    add_policy("x.toml", text)
    with pytest.raises(PolicyError) as e:
        load_policies(policy_dir)
    assert str(e.value).startswith(expected), str(e.value)
    assert check_dir(policy_dir) == [str(e.value)]


def test_every_problem_in_every_file_is_reported_at_once(policy_dir: Path,
                                                         add_policy: AddPolicy) -> None:
    add_policy("10-a.toml", '[match]\nroles = ["teachr"]\n[auth]\nsecond_factor = "sms"\n')
    add_policy("20-b.toml", '[match]\nusers = []\n[session]\nmax_concurrent = 0\n')
    assert check_dir(policy_dir) == [
        "10-a.toml:2: match.roles: expected roles among admin, cio, officer, teacher, helpdesk, "
        "got 'teachr'",
        '10-a.toml:4: auth.second_factor: expected one of "password", "totp", "both", got '
        "'sms'",
        "20-b.toml:2: match.users: expected a non-empty list of names, got []",
        "20-b.toml:4: session.max_concurrent: expected an integer 1..10, got 0",
    ]


def test_default_toml_is_required_and_complete(policy_dir: Path) -> None:
    default = policy_dir / "default.toml"
    text = default.read_text(encoding="utf-8")
    default.write_text(text.replace('second_factor = "password"\n', ""), encoding="utf-8")
    # As an older DATA_DIR's copy reads after an upgrade added a key: what to add is named.
    assert check_dir(policy_dir) == [f"default.toml:{default_line('[auth]')}: auth.second_factor: "
                                     "missing; default.toml must set every key (this version "
                                     'ships `second_factor = "password"` under [auth]: '
                                     "`staffroom policy upgrade` adds it)"]
    default.write_text(text + '\n[match]\nroles = ["cio"]\n', encoding="utf-8")
    assert check_dir(policy_dir) == [f"default.toml:{len(text.splitlines()) + 2}: [match]: "
                                     "default.toml applies to everyone: put [match] in a "
                                     "narrower file"]
    default.unlink()
    assert check_dir(policy_dir) == [f"{policy_dir}: default.toml is missing (it must set every "
                                     "key)"]
    assert check_dir(policy_dir / "nowhere")[0].endswith("default.toml is missing (it must set "
                                                         "every key)")


def test_a_narrowing_file_needs_match(policy_dir: Path, add_policy: AddPolicy) -> None:
    add_policy("x.toml", '[auth]\nsecond_factor = "totp"\n')
    assert check_dir(policy_dir) == ["x.toml:1: a narrowing file needs a [match] table "
                                     "(schools, roles, users); only default.toml applies to all"]


def test_files_that_are_not_policies_are_refused_or_skipped(policy_dir: Path,
                                                            add_policy: AddPolicy) -> None:
    add_policy(".10-draft.toml", "not toml at all [")
    add_policy("README.txt", "not toml at all [")
    add_policy("x.toml.bak", "not toml at all [")
    assert check_dir(policy_dir) == []
    (policy_dir / "bin.toml").write_bytes(b'[match]\nusers = ["\xff"]\n')
    assert check_dir(policy_dir) == ["bin.toml:1: not UTF-8 text"]
    (policy_dir / "bin.toml").write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    assert check_dir(policy_dir) == ["bin.toml:1: larger than 1024 KiB"]


def test_key_lines_skip_multiline_strings() -> None:
    text = '[workspace]\nsession_command = """\nfake = 1\n"""\n[auth]\nsecond_factor = "x"\n'
    lines = key_lines(text)
    assert lines[("workspace", "session_command")] == 2
    assert ("workspace", "fake") not in lines
    assert lines[("auth",)] == 5 and lines[("auth", "second_factor")] == 6
    quoted = key_lines('[ "session" ]\n\'max_concurrent\' = 2\n[redirection]\nx.y = 1\n')
    assert quoted[("session", "max_concurrent")] == 2 and quoted[("redirection", "x")] == 4


NARROWING = {
    "10-kita.toml": '[match]\nschools = ["kita-es"]\n\n[redirection]\nclipboard = "to-remote"\n',
    "20-cio.toml": '[match]\nroles = ["cio"]\nschools = ["kita-es"]\n\n[auth]\n'
                   'second_factor = "both"\n[redirection]\nclipboard = "both"\n',
    "30-mori.toml": '[match]\nusers = ["t.mori"]\n\n[session]\nmax_concurrent = 2\n'
                    '[redirection]\nclipboard = "off"\n',
    "9-first.toml": '[match]\nroles = ["teacher"]\n\n[auth]\nsecond_factor = "totp"\n',
}

CLIP = default_line("clipboard =")
# (user, role, school) -> files applied after default.toml, clipboard, its provenance, factor
RESOLVED = [
    (("t.sato", "teacher", "kita-es"), ("10-kita.toml", "9-first.toml"), "to-remote",
     ("10-kita.toml", 5), "totp"),
    (("cio.kita", "cio", "kita-es"), ("10-kita.toml", "20-cio.toml"), "both",
     ("20-cio.toml", 8), "both"),
    (("cio.minami", "cio", "minami-es"), (), "off", ("default.toml", CLIP), "password"),
    (("t.sato", "teacher", "minami-es"), ("9-first.toml",), "off", ("default.toml", CLIP), "totp"),
    (("t.mori", "teacher", "kita-es"), ("10-kita.toml", "30-mori.toml", "9-first.toml"), "off",
     ("30-mori.toml", 7), "totp"),
    (("admin", "admin", None), (), "off", ("default.toml", CLIP), "password"),
]


@pytest.mark.parametrize("subject,files,clipboard,where,factor", RESOLVED,
                         ids=[r[0][0] + "@" + str(r[0][2]) for r in RESOLVED])
def test_narrowing_and_precedence(policy_dir: Path, add_policy: AddPolicy,
                                  subject: tuple[str, str, str | None], files: tuple[str, ...],
                                  clipboard: str, where: tuple[str, int], factor: str) -> None:
    for name, text in NARROWING.items():
        add_policy(name, text)
    resolved = load_policies(policy_dir).resolve(*subject)
    # "9-first.toml" sorts after "30-…": name order is character order (use two digits).
    assert resolved.files == ("default.toml", *files)
    assert resolved.policy.redirection.clipboard == clipboard
    assert resolved.provenance["redirection.clipboard"] == where
    assert resolved.policy.auth.second_factor == factor
    assert resolved.policy.session.max_concurrent == (2 if subject[0] == "t.mori" else 1)
    # Keys no narrowing file sets keep default.toml's value and line.
    assert resolved.provenance["watermark.opacity"] == ("default.toml", default_line("opacity"))
    assert resolved.policy.redirection.clipboard_max_bytes == 4096


def test_shipped_folder_loads(policy_dir: Path) -> None:
    policies = load_policies(str(policy_dir))
    assert policies.names[0] == "default.toml"
    policy = policies.resolve("t", "teacher", "s").policy
    assert policy.redirection.clipboard == "off" and not policy.redirection.printing
    assert policy.session.idle_timeout.total_seconds() == 900
    assert policy.workspace.home_quota == 2 << 30
    assert policy.posture.allowed_os == ("linux", "windows", "macos")


LINES = st.sampled_from([
    "[match]", 'schools = ["s1"]', "users = []", "[redirection]", 'clipboard = "both"',
    "[session]", 'allowed_hours = "07:00-21:00"', "idle_timeout = 5", "[[auth]]", "[auth.x]",
    'second_factor = """', '"""', "x.y = 1", '"q" = [1, "a"]', "[", "= 3", "# comment", "",
])


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(LINES | st.text(max_size=20), max_size=8))
def test_any_file_loads_or_gives_file_line_problems(lines: list[str]) -> None:
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(SHIPPED_POLICIES, Path(tmp) / "p"))
        (folder / "x.toml").write_text("\n".join(lines), encoding="utf-8", errors="replace")
        for problem in check_dir(folder):
            assert problem.startswith("x.toml:"), problem
