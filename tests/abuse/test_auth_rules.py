"""Against a real gateway: no oracle on /api/v1/login, a stranger's failures lock only their
own address (429 with Retry-After, audited once per burst), a resume while connected (or by the
printed session id) is refused, and changing one's own password needs the current one and ends
one's other operator sessions; the agent's Hello is throttled per address like the API."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from websockets.asyncio.client import connect

from agent.login import LoginDenied
from gateway.wire.login import Hello, encode
from tests.abuse.helpers import POLICY, api, records, teacher_key, tls, tunnel
from tests.fixtures.gateway import World, running_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("auth-rules")
    root.chmod(0o711)  # the desktop's account passes through to DATA_DIR
    with running_world(root, policy_overrides=POLICY) as w:
        yield w


async def test_a_teachers_right_password_answers_like_a_wrong_one(world: World) -> None:
    world.add_teacher("t.oracle")
    right = await api(world, "POST", "/api/v1/login", local="127.0.0.7", body={
        "user": "t.oracle", "password": "teacher-password-1", "totp": "123456"})
    wrong = await api(world, "POST", "/api/v1/login", local="127.0.0.7", body={
        "user": "t.oracle", "password": "teacher-password-X", "totp": "123456"})
    nobody = await api(world, "POST", "/api/v1/login", local="127.0.0.7", body={
        "user": "nobody.here", "password": "teacher-password-X", "totp": "123456"})
    assert right[:2] == wrong[:2] == nobody[:2] == (
        401, {"error": "bad-credentials", "message": "The user id, password or code is wrong."})


async def test_a_stranger_locks_only_their_own_address(world: World) -> None:
    body = {"user": "admin", "password": "not the password", "totp": "000000"}
    answers = [await api(world, "POST", "/api/v1/login", body=body, local="127.0.0.9")
               for _ in range(7)]
    assert [a[0] for a in answers] == [401] * 5 + [429] * 2
    assert answers[4][1]["error"] == "locked"
    assert answers[5][1]["error"] == "locked" and "wait 15 minutes" in answers[5][1]["message"]
    assert 800 < int(answers[5][2]["Retry-After"]) <= 900
    # The administrator at the office (another address) signs in as usual.
    status, data, _ = await api(world, "POST", "/api/v1/login", body={
        "user": "admin", "password": "admin-password-2026",
        "totp": pyotp.parse_uri(world.gateway.totp_uri).at(time.time() + 30)})
    assert status == 200, data
    locks = [r for r in records(world, "account.locked") if r["subject"] == "admin"]
    throttled = [r for r in records(world, "login.throttled") if r["subject"] == "admin"]
    assert len(locks) == 1 and locks[0]["source"] == "127.0.0.9"
    assert len(throttled) == 1  # two refusals, one burst, one record


async def test_a_resume_while_connected_or_by_the_printed_id_is_refused(world: World) -> None:
    world.add_teacher("t.resume")
    with teacher_key(world, "t.resume") as key:
        async with tunnel(world, key) as (_, welcome):
            assert welcome.resume_token and welcome.resume_token != welcome.session
            with pytest.raises(LoginDenied) as e:
                async with tunnel(world, key, resume=welcome.resume_token):
                    pass
            assert e.value.code == "session-connected"
            with pytest.raises(LoginDenied) as e:  # the id the watermark prints is no secret
                async with tunnel(world, key, resume=welcome.session):
                    pass
            assert e.value.code == "resume-expired"
        await asyncio.sleep(1.0)  # the gateway sees the tunnel close
        async with tunnel(world, key, resume=welcome.resume_token) as (_, again):
            assert again.resumed and again.session == welcome.session
            assert again.resume_token not in (None, welcome.resume_token)  # new every time


async def test_changing_ones_own_password_needs_it_and_ends_other_sessions(
        world: World, tmp_path: Path) -> None:
    pw = tmp_path / "off.pw"
    pw.write_text("officer-password-1\n")
    info = world.admin.run("users", "add", "sec.change", "--name", "担当", "--role", "officer",
                           "--password-file", str(pw), "--json").json()
    totp = pyotp.parse_uri(info["totp_uri"])  # type: ignore[index]
    tokens = []
    for at in (time.time(), time.time() + 30):  # two sessions (a code is single use)
        status, data, _ = await api(world, "POST", "/api/v1/login", body={
            "user": "sec.change", "password": "officer-password-1", "totp": totp.at(at)})
        assert status == 200, data
        tokens.append(data["token"])
    path = "/api/v1/users/sec.change/password"
    status, data, _ = await api(world, "POST", path, token=tokens[0],
                                body={"password": "officer-password-2"})
    assert (status, data["error"]) == (400, "current-password-needed")
    status, data, _ = await api(world, "POST", path, token=tokens[0], body={
        "password": "officer-password-2", "current_password": "a wrong guess!"})
    assert (status, data["error"]) == (403, "bad-current-password")
    status, data, _ = await api(world, "POST", "/api/v1/users/sec.change/totp",
                                token=tokens[0], body={})
    assert (status, data["error"]) == (400, "current-password-needed")
    status, data, _ = await api(world, "POST", path, token=tokens[0], body={
        "password": "officer-password-2", "current_password": "officer-password-1"})
    assert status == 200, data
    assert (await api(world, "GET", "/api/v1/me", token=tokens[0]))[0] == 200
    status, data, _ = await api(world, "GET", "/api/v1/me", token=tokens[1])
    assert (status, data["error"]) == (401, "no-session")  # the other session ended
    ended = [r for r in records(world, "operator.sessions_ended")
             if r["subject"] == "sec.change"]
    assert len(ended) == 1 and ended[0]["details"]["count"] == 1  # type: ignore[index]


async def test_the_tunnel_hello_is_throttled_per_address(world: World) -> None:
    url = world.gateway.url.replace("https://", "wss://") + "/tunnel"
    hello = encode(Hello(user="t.nobody", certificate=b"not a certificate"))
    replies = []
    while len(replies) < 40 and (not replies or replies[-1]["type"] == "challenge"):
        async with connect(url, ssl=tls(world), local_addr=("127.0.0.11", 0)) as ws:
            await ws.send(hello)
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    # 20 at once, then one every 3 s: the refusal comes after 20 (or a few more on a slow
    # machine, whose attempts are spread over more time).
    assert 20 < len(replies) < 40, replies[-1]
    assert replies[-1]["type"] == "denied" and replies[-1]["code"] == "too-many-attempts"
    assert re.fullmatch(r"Too many login attempts from your network: wait [123] seconds and "
                        r"try again\.", replies[-1]["message"])
    # Another address is not affected.
    async with connect(url, ssl=tls(world), local_addr=("127.0.0.12", 0)) as ws:
        await ws.send(hello)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "challenge"
