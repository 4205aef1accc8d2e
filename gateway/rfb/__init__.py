"""The RFB (VNC) client: a sans-I/O core (``client.RfbClient``) and an asyncio shell
(``connection.open_rfb``) drawing into a ``surface.Surface``."""

from __future__ import annotations

from .client import RfbClient
from .connection import RfbConnection, open_rfb
from .errors import (
    AuthenticationFailed,
    LocalProtocolError,
    RemoteProtocolError,
    RfbError,
    RfbTimeout,
    ServerRefused,
)
from .events import NEED_DATA, Bell, Closed, Resized, ServerCutText, ServerInit, UpdateDone
from .limits import Limits

__all__ = [
    "NEED_DATA",
    "AuthenticationFailed",
    "Bell",
    "Closed",
    "Limits",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Resized",
    "RfbClient",
    "RfbConnection",
    "RfbError",
    "RfbTimeout",
    "ServerCutText",
    "ServerInit",
    "ServerRefused",
    "UpdateDone",
    "open_rfb",
]
