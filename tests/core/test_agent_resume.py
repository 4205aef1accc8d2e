"""The agent's resume loop when its gateway is gone (agent/connect.py): it keeps trying the same
address with backoff until the grace ends, printing a status line per attempt, and gives up with
one sentence; a refusal for good stops it at once. Real sockets on loopback (a closed port); the
gateway coming back mid-grace is tests/e2e/test_gateway_restart.py."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest

from agent import connect
from agent.cli_support import CliError
from agent.connect import NOT_RESUMED, ConnectOptions, Identity, next_delay, resume_status


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def options(port: int, ca: Path) -> ConnectOptions:
    return ConnectOptions(gateway=f"https://127.0.0.1:{port}", ca=str(ca), open_browser=False)


def identity() -> Identity:
    return Identity("t.sato", b"", lambda data: b"")


def test_status_line_and_backoff() -> None:
    assert resume_status(3, 40.7) == (
        "Connection to the gateway lost; resuming… (attempt 3, 40 s left)")
    assert resume_status(9, -1).endswith("(attempt 9, 0 s left)")
    delays = [0.5]
    for _ in range(6):
        delays.append(next_delay(delays[-1]))
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


async def test_retries_the_same_address_until_the_grace_ends(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fixtures.gateway import init_gateway

    gw = init_gateway(tmp_path, closed_port())  # a real school CA to verify against
    started = time.monotonic()
    result = await connect._resume(identity(), options(closed_port(), gw.ca), "secret", 4.0)
    took = time.monotonic() - started
    assert result is None and 3.5 <= took <= 6.0
    lines = capsys.readouterr().err.splitlines()
    attempts = [int(m.group(1)) for line in lines
                if (m := re.fullmatch(r"Connection to the gateway lost; resuming… \(attempt "
                                      r"(\d+), \d+ s left\)", line))]
    assert attempts == list(range(2, len(attempts) + 2)) and 3 <= len(attempts) <= 5
    assert NOT_RESUMED == ("The connection to the gateway was lost and the session could not "
                           "be resumed in time: run `staffroom agent connect` again.")


async def test_a_refusal_for_good_ends_the_retries_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.login import LoginDenied

    calls = []

    async def refused(*_: object, **__: object) -> object:
        calls.append(1)
        raise LoginDenied("resume-expired", "The session could not be resumed.")

    async def opened(_: object) -> object:
        class Ws:
            async def close(self) -> None:
                return None
        return Ws()

    monkeypatch.setattr(connect, "_open", opened)
    monkeypatch.setattr(connect, "_login", refused)
    with pytest.raises(CliError, match=r"The session could not be resumed\."):
        await asyncio.wait_for(connect._resume(identity(), options(1, tmp_path), "s", 30), 5)
    assert calls == [1]


class _Tunnel:
    closed = False

    async def close(self) -> None:
        self.closed = True


def _logins(monkeypatch: pytest.MonkeyPatch, outcomes: list[Exception | str]) -> list[_Tunnel]:
    """``_first_login`` against scripted gateways: each login raises or returns the next
    outcome; waits are cut to 10 ms. Returns the tunnels it opened."""
    opened: list[_Tunnel] = []

    async def fake_open(options: ConnectOptions) -> _Tunnel:
        opened.append(_Tunnel())
        return opened[-1]

    async def fake_login(ws: object, identity: Identity, options: ConnectOptions,
                         resume: str | None) -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(connect, "_open", fake_open)
    monkeypatch.setattr(connect, "_login", fake_login)
    monkeypatch.setattr(connect.random, "uniform", lambda a, b: 0.01)
    return opened


RATE = "Too many login attempts from your network: wait 3 seconds and try again."


async def test_a_first_login_refused_for_the_networks_rate_is_tried_again(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Many teachers behind one address: refused at the Hello (nothing asked for yet), the
    agent waits and asks again, saying so; the refused tunnels are closed."""
    denied = connect.LoginDenied("too-many-attempts", RATE, at_hello=True)
    opened = _logins(monkeypatch, [denied, denied, "welcome"])
    ws, welcome = await connect._first_login(identity(), options(1, Path("ca.pem")))
    assert welcome == "welcome" and ws is opened[-1] and len(opened) == 3
    assert [t.closed for t in opened] == [True, True, False]
    assert capsys.readouterr().err.splitlines() == [
        "Many logins from your network right now; trying again in 0 s…"] * 2


@pytest.mark.parametrize("denied", [
    connect.LoginDenied("too-many-attempts", RATE),  # after the password: not asked again
    connect.LoginDenied("cert-revoked", "Your key has been revoked: ask your school's IT lead "
                        "for a new one.", at_hello=True),
])
async def test_other_refusals_end_the_first_login_at_once(
        monkeypatch: pytest.MonkeyPatch, denied: connect.LoginDenied) -> None:
    opened = _logins(monkeypatch, [denied, "welcome"])
    with pytest.raises(CliError) as e:
        await connect._first_login(identity(), options(1, Path("ca.pem")))
    assert str(e.value) == str(denied) and len(opened) == 1 and opened[0].closed


async def test_the_rate_retry_gives_up_with_the_gateways_sentence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connect, "LOGIN_RETRY_FOR", 0.05)
    denied = connect.LoginDenied("too-many-attempts", RATE, at_hello=True)
    opened = _logins(monkeypatch, [denied] * 100)
    with pytest.raises(CliError) as e:
        await connect._first_login(identity(), options(1, Path("ca.pem")))
    assert str(e.value) == RATE and 2 <= len(opened) < 100
