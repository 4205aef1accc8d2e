"""A small HTTPS JSON client for the admin API (stdlib urllib; the CLI is synchronous)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from agent.cli_support import CliError
from agent.operator import session as saved
from agent.tls import client_context, explain_tls_error


class ApiClient:
    def __init__(self, gateway: str, ca: str, token: str | None = None,
                 timeout: float = 30.0) -> None:
        self.gateway = gateway.rstrip("/")
        self._tls = client_context(ca)
        self._token = token
        self._timeout = timeout

    @classmethod
    def from_saved_session(cls) -> ApiClient:
        s = saved.load()
        return cls(s.gateway, s.ca, s.token)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.gateway + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(req, timeout=self._timeout, context=self._tls) as resp:
                raw = resp.read()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raise self._api_error(e) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, ssl.SSLError):
                raise explain_tls_error(self.gateway, e.reason) from None
            raise CliError(f"Cannot reach the gateway at {self.gateway} ({e.reason}): check "
                           "the address and that the gateway is running.") from None
        except ssl.SSLError as e:
            raise explain_tls_error(self.gateway, e) from None
        except (TimeoutError, ConnectionError) as e:
            raise CliError(f"The gateway at {self.gateway} did not answer ({e}).") from None
        if "json" in ctype:
            return json.loads(raw)
        return raw

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body or {})

    @staticmethod
    def _api_error(e: urllib.error.HTTPError) -> CliError:
        try:
            payload = json.loads(e.read(65536))
            message = str(payload.get("message", ""))[:500]
            code = str(payload.get("error", ""))
        except (ValueError, AttributeError):
            message, code = "", ""
        if code == "session-expired":
            saved.forget()
        return CliError(message or f"The gateway refused the request (HTTP {e.code}).")
