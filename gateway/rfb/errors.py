"""The RFB client's error hierarchy (h11's split: who broke the protocol, us or the peer)."""

from __future__ import annotations


class RfbError(Exception):
    """Base class. ``reason`` is one sentence fit to log and to show an operator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RemoteProtocolError(RfbError):
    """The server sent something malformed or over a limit; the connection must be closed."""


class LocalProtocolError(RfbError):
    """We called the client in a way the protocol does not allow (a programming error)."""


class ServerRefused(RfbError):
    """The server ended the handshake with a failure reason (bad version, no usable security)."""


class AuthenticationFailed(RfbError):
    """SecurityResult said failed (wrong VNC password, or the server rate-limits us)."""


def sanitize(raw: bytes, limit: int = 200) -> str:
    """Make peer text safe for logs and messages: printable ASCII only, truncated."""
    text = raw[:limit].decode("latin-1")
    return "".join(c if " " <= c <= "~" else "?" for c in text)


class RfbTimeout(RfbError):
    """A handshake, connect or mid-message read deadline passed."""
