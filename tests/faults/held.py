"""Helpers for the fault suite: a desktop that takes its time to start, and the admin API
called straight from the test (no CLI start-up in a timing-sensitive step)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class HeldDesktop:
    """A TCP door in front of a real desktop: the gateway's connection is accepted (the
    desktop is "starting") but nothing passes until `release()`; then bytes flow both ways."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.arrived = threading.Event()
        self._release = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self.listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._sockets.append(conn)
            self.arrived.set()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        self._release.wait(60)
        try:
            up = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            conn.close()
            return
        up.settimeout(None)
        self._sockets.append(up)
        for a, b in ((conn, up), (up, conn)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)


def api(url: str, ca: Path, home: Path, method: str, path: str,
        body: dict[str, Any] | None = None, timeout: float = 30) -> tuple[int, Any]:
    """One admin API call with the persona's saved bearer token: (status, JSON body)."""
    token = json.loads((home / "session.json").read_text())["token"]
    request = urllib.request.Request(
        url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    tls = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(request, context=tls, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def health(url: str, ca: Path, timeout: float = 5) -> dict[str, Any]:
    tls = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(url + "/api/v1/health", context=tls, timeout=timeout) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]
