"""Pipeline, receive side of the clipboard: what the Hello flags allow, refusals, Blocked reports.

The pipeline does not apply the policy (the session does); it only refuses clipboard traffic the
session's Hello never offered, and limits Blocked/refusal reports to one a second per kind.
"""

from __future__ import annotations

import pytest

from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline, SessionInfo, clipboard_flags
from gateway.display.viewer_actions import (
    BlockedAttempt,
    ClipboardInput,
    ClipboardRefused,
    KeyInput,
)
from gateway.wire import display as w

T0 = 1_700_000_000.0
F = w.HelloFlags
TEXT = "成績表 grades.xlsx"


def attached(flags: int = 0) -> DisplayPipeline:
    p = DisplayPipeline(Framebuffer(64, 64), session=SessionInfo("s", "", flags))
    p.receive_data(w.encode(w.Resume(w.VERSION, 0)), T0)
    return p


@pytest.mark.parametrize("flags", [F.CLIPBOARD_TO_REMOTE, F.CLIPBOARD_TO_REMOTE | F.RECORDED,
                                   clipboard_flags("both")])  # fmt: skip
def test_clipboard_in_becomes_input_when_the_hello_allows_to_remote(flags: int) -> None:
    p = attached(flags)
    data = w.encode(w.ClipboardIn(TEXT)) + w.encode(w.Key(0xFFE3, True))
    assert p.receive_data(data, T0) == [ClipboardInput(TEXT), KeyInput(0xFFE3, True)]


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (0, "clipboard to the desktop is off"),
        (F.CLIPBOARD_TO_LOCAL, "clipboard to the desktop is off"),
        (F.VIEW_ONLY | F.CLIPBOARD_TO_REMOTE, "input not allowed (view-only or before Resume)"),
    ],
)
def test_clipboard_in_the_flags_do_not_allow_is_refused_with_its_size_only(flags, reason) -> None:
    p = attached(flags)
    out = p.receive_data(w.encode(w.ClipboardIn(TEXT)), T0)
    assert out == [ClipboardRefused(len(TEXT.encode()), reason)]
    assert TEXT not in repr(out)  # the text itself goes nowhere, not even into the audit


def test_clipboard_in_before_resume_is_refused() -> None:
    p = DisplayPipeline(Framebuffer(64, 64), session=SessionInfo(flags=F.CLIPBOARD_TO_REMOTE))
    assert p.receive(w.ClipboardIn("x"), T0) == [
        ClipboardRefused(1, "input not allowed (view-only or before Resume)")
    ]


def test_blocked_becomes_an_attempt_even_in_view_only_sessions() -> None:
    p = attached(F.VIEW_ONLY)
    assert p.receive(w.Blocked(w.BlockedKind.PRINT), T0) == [BlockedAttempt(w.BlockedKind.PRINT)]
    assert p.receive(w.Blocked(77), T0) == [BlockedAttempt(77)]  # unknown kinds too


def test_blocked_reports_are_limited_to_one_a_second_per_kind_and_counted() -> None:
    p = attached()
    paste, drop = w.encode(w.Blocked(w.BlockedKind.PASTE)), w.encode(w.Blocked(w.BlockedKind.DROP))
    assert p.receive_data(paste * 50 + drop, T0) == [BlockedAttempt(1), BlockedAttempt(3)]
    assert p.receive_data(paste, T0 + 0.9) == []
    assert p.receive_data(paste, T0 + 1.0) == [BlockedAttempt(1, repeats=50)]
    assert p.receive_data(paste, T0 + 2.5) == [BlockedAttempt(1, repeats=0)]
    assert p.receive_data(paste, T0 + 1.0) == [BlockedAttempt(1)]  # the clock went back: report


def test_refused_clipboard_floods_are_limited_too() -> None:
    p = attached()
    flood = w.encode(w.ClipboardIn("y" * 1000)) * 20
    assert p.receive_data(flood, T0) == [ClipboardRefused(1000, "clipboard to the desktop is off")]
    assert p.receive_data(flood[: len(flood) // 20], T0 + 1.5) == [
        ClipboardRefused(1000, "clipboard to the desktop is off", repeats=19)
    ]


def test_clipboard_out_only_with_to_local_and_an_attached_viewer() -> None:
    assert attached(F.CLIPBOARD_TO_LOCAL).clipboard_out(TEXT) == w.encode(w.ClipboardOut(TEXT))
    assert attached(F.CLIPBOARD_TO_REMOTE).clipboard_out(TEXT) is None
    assert attached(0).clipboard_out(TEXT) is None
    idle = DisplayPipeline(Framebuffer(8, 8), session=SessionInfo(flags=F.CLIPBOARD_TO_LOCAL))
    assert idle.clipboard_out(TEXT) is None  # no viewer attached yet
    with pytest.raises(ValueError):
        attached(F.CLIPBOARD_TO_LOCAL).clipboard_out("x" * (w.MAX_CLIPBOARD + 1))


def test_policy_setting_maps_to_hello_flags() -> None:
    assert clipboard_flags("off") == 0
    assert clipboard_flags("to-remote") == F.CLIPBOARD_TO_REMOTE
    assert clipboard_flags("to-local") == F.CLIPBOARD_TO_LOCAL
    assert clipboard_flags("both") == F.CLIPBOARD_TO_REMOTE | F.CLIPBOARD_TO_LOCAL
    with pytest.raises(KeyError):
        clipboard_flags("on")


def test_hello_carries_the_clipboard_flags_to_the_viewer() -> None:
    p = attached(clipboard_flags("to-local"))
    data = p.produce_frame(T0)
    assert data is not None
    hello = w.decode_all(data, w.Direction.TO_VIEWER)[0]
    assert isinstance(hello, w.Hello) and hello.flags == F.CLIPBOARD_TO_LOCAL
