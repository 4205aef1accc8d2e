"""The console's allowed origins follow what is really served: `init` on one port, the gateway
started on another with `--listen`, and a load balancer's `--public-url` (a header-less TCP
forwarder here) — Chromium signs in through each; init's unserved port is refused; console
responses carry HSTS."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pyotp
import pytest

from tests.abuse.forwarder import start_forwarder
from tests.fixtures.gateway import (
    STAFFROOM,
    Gateway,
    free_port,
    init_gateway,
    stop_gateway,
    wait_for_tls,
)

pytestmark = pytest.mark.slow


@dataclass
class Moved:
    gw: Gateway
    served: int  # the --listen port
    public: int  # the forwarder's port (the public URL)


@pytest.fixture
async def moved(tmp_path: Path) -> AsyncIterator[Moved]:
    gw = init_gateway(tmp_path, free_port())  # init's --listen port: never served here
    served, public = free_port(), free_port()
    gw.log = tmp_path / "gateway.log"
    with gw.log.open("wb") as log:
        gw.process = subprocess.Popen(
            [STAFFROOM, "gateway", "--data", str(gw.data), "--listen", f"127.0.0.1:{served}",
             "--public-url", f"https://localhost:{public}"],
            stdout=log, stderr=log, env=dict(os.environ), start_new_session=True)
    forwarder = await start_forwarder(public, served)
    try:
        await asyncio.to_thread(wait_for_tls, served, gw.ca)
        yield Moved(gw, served, public)
    finally:
        forwarder.close()
        stop_gateway(gw)


async def _sign_in_in_chromium(origin: str, gw: Gateway, code: str) -> None:
    from playwright.async_api import async_playwright

    from tests.fixtures.viewer import CHROMIUM_ARGS

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                          args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(ignore_https_errors=True, locale="en-GB")
            page = await context.new_page()
            response = await page.goto(f"{origin}/console/")
            assert response is not None
            assert response.headers.get("strict-transport-security") == "max-age=31536000"
            await page.wait_for_selector("#signin:not([hidden])")
            await page.fill("input[name=user]", "admin")
            await page.fill("input[name=password]", gw.admin_password)
            await page.fill("input[name=totp]", code)
            await page.click("#signin button[type=submit]")
            # Signed in with the one-time password: the console asks for a new one.
            await page.wait_for_selector("#change-password:not([hidden])", timeout=15000)
            assert await page.is_hidden("#signin-error")
        finally:
            await browser.close()


async def test_sign_in_on_the_served_port_and_through_the_load_balancer(moved: Moved) -> None:
    gw = moved.gw
    totp = pyotp.parse_uri(gw.totp_uri)
    await _sign_in_in_chromium(f"https://127.0.0.1:{moved.served}", gw, totp.now())
    # A code is single use: the next step's (one step of clock skew is accepted).
    await _sign_in_in_chromium(f"https://localhost:{moved.public}", gw,
                               totp.at(time.time() + 30))
    config = json.loads((gw.data / "gateway.json").read_text())
    assert config["public_url"] == f"https://localhost:{moved.public}"  # kept for next starts


async def test_the_port_given_to_init_but_not_served_is_a_foreign_origin(moved: Moved) -> None:
    tls = ssl.create_default_context(cafile=str(moved.gw.ca))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"https://127.0.0.1:{moved.served}/console/session", ssl=tls,
                             headers={"Origin": f"https://127.0.0.1:{moved.gw.port}"},
                             json={"user": "admin", "password": "x" * 12}) as r:
            body = await r.json()
            assert r.status == 403 and body["error"] == "csrf"
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
        async with http.get(f"https://127.0.0.1:{moved.served}/api/v1/health", ssl=tls) as r:
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_public_url_with_a_path_is_refused_in_one_sentence(tmp_path: Path) -> None:
    p = subprocess.run([STAFFROOM, "init", str(tmp_path / "d"), "--hostname", "gw.example",
                        "--public-url", "https://lb.example/staffroom"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "--public-url must look like https://" in p.stderr
    assert "Traceback" not in p.stderr
