"""The login handshake against a real gateway refuses what it must (issue 4): a replayed login,
a login relayed through a man-in-the-middle holding another valid TLS certificate, an expired
certificate, and repeated wrong passwords (lockout) — each with its sentence, each audited."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives import serialization
from websockets.asyncio.client import connect

from agent.login import Credentials, LoginDenied, handshake
from agent.token import open_token
from gateway.pki.ca import SchoolCA
from tests.fixtures.gateway import World, free_port, running_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("refusals")) as w:
        yield w


@pytest.fixture(autouse=True)
def _restore_softhsm_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    """login() points SOFTHSM2_CONF at each teacher's token; put it back after each test."""
    monkeypatch.setenv("SOFTHSM2_CONF", os.environ.get("SOFTHSM2_CONF", ""))


def posture() -> dict[str, Any]:
    """A report as the agent's ClamAV collector makes it (definitions 3 hours old)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {"os": "linux", "os_version": "Debian 12", "hostname": "home-pc",
            "collected_at": now.isoformat().replace("+00:00", "Z"),
            "antivirus": [{"product": "ClamAV", "enabled": True, "realtime": None,
                           "definitions_time": (now - timedelta(hours=3)).isoformat()
                           .replace("+00:00", "Z"),
                           "definitions_version": "27832", "source": "clamav"}]}


def tls(world: World) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(world.gateway.ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def login(world: World, user: str, *, password: str | None = None,
                url: str | None = None, cert_der: bytes | None = None,
                spy: list[str] | None = None, local: str | None = None) -> Any:
    teacher = world.teachers[user]
    token = teacher.token
    os.environ["SOFTHSM2_CONF"] = str(token.conf)  # type: ignore[attr-defined]
    with open_token(token.module, token_label=token.label, pin=token.pin) as t:  # type: ignore
        key_id, cert = t.find_identity()
        der = cert_der or cert.public_bytes(serialization.Encoding.DER)

        async def sign(data: bytes) -> bytes:
            return t.sign(key_id, data)

        target = url or world.gateway.url.replace("https://", "wss://") + "/tunnel"
        extra = {"local_addr": (local, 0)} if local else {}
        async with connect(target, ssl=tls(world), **extra) as ws:
            if spy is not None:
                real_send = ws.send

                async def send(message: Any) -> None:
                    spy.append(message)
                    await real_send(message)
                ws.send = send  # type: ignore[method-assign]
            pw = password or Path(teacher.password_file).read_text().strip()
            return await handshake(ws, user=user, certificate_der=der, posture=posture(),
                                   sign=sign, credentials=Credentials(lambda: pw, lambda: None))


def denied(world: World, user: str, code: str) -> int:
    records = world.admin.run("audit", "export", "--json", "--user", user, "--kind",
                              "session.login").json()
    return sum(1 for r in records  # type: ignore[union-attr]
               if r["outcome"] == "denied" and r["details"].get("code") == code)


async def test_a_replayed_login_message_is_refused(world: World) -> None:
    world.add_teacher("t.replay")
    sent: list[str] = []
    # An eavesdropper on the agent's side records a Login (here one refused for its password).
    with pytest.raises(LoginDenied):
        await asyncio.wait_for(login(world, "t.replay", password="wrong password!", spy=sent),
                               30)
    captured_login = sent[1]
    # A new connection gets a new nonce; the captured Login (old nonce's signature) fails.
    async with connect(world.gateway.url.replace("https://", "wss://") + "/tunnel",
                       ssl=tls(world)) as ws:
        await ws.send(sent[0])
        await ws.recv()  # the new challenge
        await ws.send(captured_login)
        reply = await ws.recv()
    assert '"denied"' in reply and "bad-signature" in reply
    assert denied(world, "t.replay", "bad-signature") == 1


async def test_a_relay_with_another_valid_certificate_is_refused(world: World) -> None:
    world.add_teacher("t.relay")
    # The attacker holds a certificate our own CA issued (say, from another server).
    ca = SchoolCA.load(world.gateway.data / "ca")
    cert, key = ca.issue_server_cert(["127.0.0.1"])
    cert_pem, key_pem = world.root / "mitm.pem", world.root / "mitm.key"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    upstream = world.gateway.url.replace("https://", "wss://") + "/tunnel"

    async def relay(request: web.Request) -> web.WebSocketResponse:
        down = web.WebSocketResponse()
        await down.prepare(request)
        async with connect(upstream, ssl=tls(world)) as up:
            async def pump_up() -> None:
                async for msg in down:
                    if msg.type == WSMsgType.TEXT:
                        await up.send(msg.data)
            task = asyncio.create_task(pump_up())
            async for frame in up:
                await down.send_str(frame) if isinstance(frame, str) else None
            task.cancel()
        await down.close()
        return down

    app = web.Application()
    app.router.add_get("/tunnel", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_pem, key_pem)
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_tls).start()
    try:
        with pytest.raises(LoginDenied) as e:
            await asyncio.wait_for(
                login(world, "t.relay", url=f"wss://127.0.0.1:{port}/tunnel"), 30)
    finally:
        await runner.cleanup()
    assert e.value.code == "bad-signature"
    assert "intercepted" in str(e.value)
    assert denied(world, "t.relay", "bad-signature") == 1


async def test_an_expired_certificate_is_refused(world: World) -> None:
    world.add_teacher("t.expired")
    teacher = world.teachers["t.expired"]
    os.environ["SOFTHSM2_CONF"] = str(teacher.token.conf)  # type: ignore[attr-defined]
    with open_token(teacher.token.module, token_label=teacher.token.label,  # type: ignore
                    pin=teacher.token.pin) as t:  # type: ignore[attr-defined]
        _, cert = t.find_identity()
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    ca = SchoolCA.load(world.gateway.data / "ca")
    past = datetime.now(UTC) - timedelta(days=400)
    old = ca.issue_client_cert(spki, user_id="t.expired", name="x", school="kita-es", now=past,
                               not_after=past + timedelta(days=30))
    with pytest.raises(LoginDenied) as e:
        await asyncio.wait_for(login(world, "t.expired",
                                     cert_der=old.public_bytes(serialization.Encoding.DER)), 30)
    assert e.value.code == "cert-expired" and "expired" in str(e.value)
    assert denied(world, "t.expired", "cert-expired") == 1


async def test_wrong_passwords_lock_the_account_at_that_address_only(world: World) -> None:
    world.add_teacher("t.lock")
    codes = []
    for _ in range(5):
        with pytest.raises(LoginDenied) as e:
            await asyncio.wait_for(login(world, "t.lock", password="not my password"), 30)
        codes.append(e.value.code)
    assert codes == ["bad-credentials"] * 4 + ["locked"]
    assert "locked for 15 minutes" in str(e.value)
    with pytest.raises(LoginDenied) as e:  # even the right password, while locked
        await asyncio.wait_for(login(world, "t.lock"), 30)
    assert e.value.code == "locked" and "wait 15 minutes" in str(e.value)
    assert denied(world, "t.lock", "bad-credentials") == 4
    # The teacher at home (another address) is not locked out by whoever did that.
    welcome = await asyncio.wait_for(login(world, "t.lock", local="127.0.0.2"), 60)
    assert welcome.user == "t.lock" and welcome.resume_token
    assert welcome.resume_token != welcome.session  # the secret is not the printed id
