"""The sans-I/O RFB 3.8/3.7/3.3 client core: bytes in, events out, bytes to send.

Attacker-controlled: everything passed to ``feed``. Limits: see ``Limits`` (desktop size, name
and reason lengths here; the rest in server_messages and the decoders). Any violation raises
RemoteProtocolError, after which the client only raises it again.

No networking, no clock, no threads (h11's rule). Use: ``feed(data)`` (b"" = EOF), then
``next_event()`` until NEED_DATA, sending ``data_to_send()`` after each call.
"""

from __future__ import annotations

import re
import struct
from collections import deque

from . import messages as msg
from .buffer import ReceiveBuffer
from .clipboard import ExtendedClipboard
from .clipboard_codec import EXTENDED_CLIPBOARD
from .encodings import LOOPBACK_ENCODINGS, DecodeContext
from .encodings.desktopsize import check_size
from .errors import (
    AuthenticationFailed,
    LocalProtocolError,
    RemoteProtocolError,
    RfbError,
    ServerRefused,
    sanitize,
)
from .events import NEED_DATA, Closed, Event, ServerInit, _NeedData
from .handshake import Input, State, transition
from .limits import Limits
from .messages import SecurityType
from .server_messages import ServerMessageParser, Step
from .surface import Surface
from .vncauth import CHALLENGE_LENGTH, vnc_response

_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")
_SERVER_INIT = struct.Struct(">HH16sI")


class RfbClient:
    def __init__(
        self,
        surface: Surface,
        *,
        password: bytes | str | None = None,
        encodings: tuple[int, ...] = LOOPBACK_ENCODINGS,
        limits: Limits | None = None,
        shared: bool = True,
        clipboard: bool = False,
        allow_none: bool = True,
    ) -> None:
        """``clipboard=True`` asks for the Extended Clipboard (UTF-8 cut text both ways);
        without it the pseudo-encoding is never sent, even if listed in ``encodings``."""
        self._surface = surface
        self._password = password.encode() if isinstance(password, str) else password
        self._limits = limits or Limits()
        self._clipboard = ExtendedClipboard(self._limits) if clipboard else None
        self._encodings = self._with_clipboard(encodings)
        self._shared = shared
        self._allow_none = allow_none  # False: a server offering only "None" is refused
        self._buf = ReceiveBuffer()
        self._outbox = bytearray()
        self._eof = False
        self._error: RfbError | None = None
        self._closed: Closed | None = None
        self._failure: type[RfbError] = ServerRefused
        self._pending: deque[Event] = deque()
        self._parser: ServerMessageParser | None = None
        self.state = State.AWAIT_VERSION
        self.version: tuple[int, int] | None = None
        self.name = ""

    # -- the sans-I/O surface ------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise LocalProtocolError("data fed after EOF")
            return
        if data:
            self._buf.feed(data)
        else:
            self._eof = True

    def get_buffer(self, size: int) -> memoryview:
        """Room for at least ``size`` received bytes, to be filled in place (a socket's
        ``recv_into``, asyncio's BufferedProtocol), then ``buffer_updated(n)``: ``feed``
        without the copy. The view is valid until the next ``feed`` or ``get_buffer``."""
        if self._eof:
            raise LocalProtocolError("data fed after EOF")
        return self._buf.get_buffer(size)

    def buffer_updated(self, n: int) -> None:
        """``n`` bytes were written at the start of the last ``get_buffer``'s view."""
        self._buf.buffer_updated(n)

    def data_to_send(self) -> bytes:
        if self._clipboard is not None:
            self._outbox += self._clipboard.data_to_send()
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    def next_event(self) -> Event | _NeedData:
        if self._pending:
            return self._pending.popleft()
        if self._error is not None:
            raise self._error
        if self._closed is not None:
            return self._closed
        try:
            return self._step()
        except RfbError as exc:
            self._error = exc
            self.state = State.CLOSED
            raise

    @property
    def mid_message(self) -> bool:
        """True while a message has begun but not ended (for the shell's read deadline)."""
        return bool(self._buf.uncommitted) or (
            self._parser is not None and self._parser.mid_message
        )

    @property
    def width(self) -> int:
        return self._parser.ctx.fb_width if self._parser else 0

    @property
    def height(self) -> int:
        return self._parser.ctx.fb_height if self._parser else 0

    # -- client messages (bytes to send) --------------------------------------------------
    def _require_connected(self) -> None:
        if self.state is not State.CONNECTED:
            raise LocalProtocolError(f"cannot send in state {self.state.name}")

    def framebuffer_update_request(
        self, incremental: bool = True, region: tuple[int, int, int, int] | None = None
    ) -> bytes:
        self._require_connected()
        x, y, w, h = region if region is not None else (0, 0, self.width, self.height)
        return msg.framebuffer_update_request(incremental, x, y, w, h)

    def key_event(self, keysym: int, down: bool) -> bytes:
        self._require_connected()
        return msg.key_event(keysym, down)

    def pointer_event(self, x: int, y: int, button_mask: int) -> bytes:
        self._require_connected()
        return msg.pointer_event(x, y, button_mask)

    def client_cut_text(self, text: str | bytes) -> bytes:
        """Classic ClientCutText, ISO 8859-1 only (other characters become '?')."""
        self._require_connected()
        if isinstance(text, str):
            text = text.encode("latin-1", errors="replace")
        return msg.client_cut_text(text)

    def cut_text(self, text: str) -> bytes:
        """Clipboard to the desktop; the gateway's policy normally forbids it.

        If the server announced Extended Clipboard text (we asked with ``clipboard=True``),
        the text goes as UTF-8: a Notify now and a zlib Provide when the server asks (or at
        once if its Caps take it unasked); later server Requests are answered from it too.
        Otherwise classic ClientCutText in ISO 8859-1: characters outside it are replaced by
        '?', and line ends become LF. Raises LocalProtocolError past ``max_cut_text`` bytes.
        """
        self._require_connected()
        if self._clipboard is not None and self._clipboard.negotiated:
            return self._clipboard.announce(text)
        lf = text.replace("\r\n", "\n").replace("\r", "\n")
        return self.client_cut_text(lf)

    @property
    def extended_clipboard(self) -> bool:
        """True once the server's Caps offered Extended Clipboard text."""
        return self._clipboard is not None and self._clipboard.negotiated

    def set_encodings(self, encodings: tuple[int, ...]) -> bytes:
        self._require_connected()
        self._encodings = self._with_clipboard(encodings)
        return msg.set_encodings(self._encodings)

    def _with_clipboard(self, encodings: tuple[int, ...]) -> tuple[int, ...]:
        # Asked for exactly when the caller enabled it: a policy with clipboard off must not
        # even ask, and a server must never see us ask without the parser ready for it.
        rest = tuple(e for e in encodings if e != EXTENDED_CLIPBOARD)
        return (*rest, EXTENDED_CLIPBOARD) if self._clipboard is not None else rest

    # -- the state machine ---------------------------------------------------------------
    def _step(self) -> Event | _NeedData:
        while True:
            result = self._dispatch()
            if isinstance(result, _NeedData):
                if not self._eof:
                    return NEED_DATA
                return self._on_eof()
            if result is not None:
                self._pending.append(result)
            if self._parser is not None and self._parser.pending:
                self._pending.extend(self._parser.pending)
                self._parser.pending.clear()
            if self._pending:
                return self._pending.popleft()

    def _dispatch(self) -> Step:
        if self.state is State.CONNECTED:  # every message after the handshake: no table
            assert self._parser is not None
            return self._parser.parse(self._buf)
        handler = {
            State.AWAIT_VERSION: self._version,
            State.AWAIT_SECURITY_TYPES: self._security_types,
            State.AWAIT_SECURITY_TYPE_33: self._security_type_33,
            State.AWAIT_CHALLENGE: self._challenge,
            State.AWAIT_SECURITY_RESULT: self._security_result,
            State.AWAIT_FAILURE_REASON: self._failure_reason,
            State.AWAIT_SERVER_INIT: self._server_init,
        }.get(self.state)
        if handler is not None:
            return handler()
        assert self._parser is not None
        return self._parser.parse(self._buf)

    def _advance(self, event: Input) -> None:
        self.state = transition(self.state, event)
        if self.state is State.AWAIT_SERVER_INIT:
            self._outbox += msg.client_init(self._shared)

    def _on_eof(self) -> Closed:
        mid = self.mid_message
        self._advance(Input.EOF)
        if self._parser is None:
            reason = "server closed the connection during the handshake"
        elif mid:
            reason = "server closed the connection in the middle of a message"
        else:
            reason = "server closed the connection"
        self._closed = Closed(reason)
        return self._closed

    def _take(self, n: int) -> bytes | None:
        data = self._buf.consume_exactly(n)
        if data is None:
            self._buf.rollback()
        return data

    def _version(self) -> Step:
        data = self._take(12)
        if data is None:
            return NEED_DATA
        match = _VERSION.fullmatch(data)
        if match is None:
            raise RemoteProtocolError(f"not an RFB server (greeting {sanitize(data)!r})")
        major, minor = int(match[1]), int(match[2])
        if major < 3 or (major == 3 and minor < 3):
            raise RemoteProtocolError(f"unsupported RFB version {major}.{minor}")
        if major > 3 or minor >= 8:
            self.version, event = (3, 8), Input.VERSION_3_8
        elif minor == 7:
            self.version, event = (3, 7), Input.VERSION_3_7
        else:  # 3.4-3.6 are to be treated as 3.3 (RFC 6143 §7.1.1)
            self.version, event = (3, 3), Input.VERSION_3_3
        self._buf.commit()
        self._outbox += b"RFB 003.%03d\n" % self.version[1]
        self._advance(event)
        return None

    def _choose(self, offered: set[int]) -> Input:
        if SecurityType.VNC_AUTH in offered and self._password is not None:
            self._outbox += bytes([SecurityType.VNC_AUTH]) if self.version != (3, 3) else b""
            return Input.CHOSE_VNC_AUTH
        if SecurityType.NONE in offered and not self._allow_none:
            raise ServerRefused(
                "the desktop asks for no authentication (security type None), which the "
                "gateway's allow-list does not permit for it"
            )
        if SecurityType.NONE in offered:
            self._outbox += bytes([SecurityType.NONE]) if self.version != (3, 3) else b""
            return Input.CHOSE_NONE_WITH_RESULT if self.version == (3, 8) else Input.CHOSE_NONE
        if SecurityType.VNC_AUTH in offered:
            raise ServerRefused("the server requires a VNC password and none is configured")
        raise ServerRefused(f"the server offers no supported security type ({sorted(offered)})")

    def _security_types(self) -> Step:
        data = self._take(1)
        if data is None:
            return NEED_DATA
        if data[0] == 0:
            self._buf.commit()
            self._advance(Input.NO_SECURITY_TYPES)
            return None
        types = self._take(data[0])
        if types is None:
            return NEED_DATA
        self._buf.commit()
        self._advance(self._choose(set(types)))
        return None

    def _security_type_33(self) -> Step:
        data = self._take(4)
        if data is None:
            return NEED_DATA
        (chosen,) = struct.unpack(">I", data)
        self._buf.commit()
        if chosen == SecurityType.INVALID:
            self._advance(Input.NO_SECURITY_TYPES)
        elif chosen in (SecurityType.NONE, SecurityType.VNC_AUTH):
            self._advance(self._choose({chosen}))
        else:
            raise ServerRefused(f"the server chose unsupported security type {chosen}")
        return None

    def _challenge(self) -> Step:
        challenge = self._take(CHALLENGE_LENGTH)
        if challenge is None:
            return NEED_DATA
        self._buf.commit()
        assert self._password is not None
        self._outbox += vnc_response(self._password, challenge)
        self._advance(Input.CHALLENGE)
        return None

    def _security_result(self) -> Step:
        data = self._take(4)
        if data is None:
            return NEED_DATA
        self._buf.commit()
        if data == b"\x00\x00\x00\x00":
            self._advance(Input.RESULT_OK)
            return None
        if self.version == (3, 8):
            self._failure = AuthenticationFailed
            self._advance(Input.RESULT_FAILED_WITH_REASON)
            return None
        self._advance(Input.RESULT_FAILED)
        raise AuthenticationFailed("VNC authentication failed")

    def _failure_reason(self) -> Step:
        data = self._take(4)
        if data is None:
            return NEED_DATA
        (length,) = struct.unpack(">I", data)
        if length > self._limits.max_reason_length:
            raise RemoteProtocolError(f"failure reason of {length} bytes")
        reason = self._take(length)
        if reason is None:
            return NEED_DATA
        self._buf.commit()
        self._advance(Input.REASON)
        what = "authentication failed" if self._failure is AuthenticationFailed else "refused"
        raise self._failure(f"server {what}: {sanitize(reason) or 'no reason given'}")

    def _server_init(self) -> Step:
        data = self._take(_SERVER_INIT.size)
        if data is None:
            return NEED_DATA
        width, height, _fmt, name_length = _SERVER_INIT.unpack(data)
        check_size(width, height, self._limits, "ServerInit desktop size")
        if name_length > self._limits.max_name_length:
            raise RemoteProtocolError(f"desktop name of {name_length} bytes")
        name = self._take(name_length)
        if name is None:
            return NEED_DATA
        self._buf.commit()
        self.name = name.decode("utf-8", errors="replace")
        self._surface.resize(width, height)
        self._parser = ServerMessageParser(
            self._surface, DecodeContext(width, height, self._limits), self._clipboard
        )
        self._advance(Input.SERVER_INIT)
        # Our decoders assume BGRX, so the format is fixed before any update can be requested.
        self._outbox += msg.set_pixel_format(msg.BGRX) + msg.set_encodings(self._encodings)
        return ServerInit(width, height, self.name)
