"""Our side of the Extended Clipboard: answer the server, fetch its text, offer ours.

Attacker-controlled: every extended message (decoded by clipboard_codec under the cut-text
limits). Limits here: we Request only after a Notify, one at a time with one queued behind it
(a burst of Notify costs one Request per two); we answer Request/Peek only with our own text.

The flow with TigerVNC (which takes no unasked Provide: its Caps size for text is 0):
  server -> Caps; we -> Caps (text, notify-only: the server must Notify, never push).
  server -> Notify(text); we -> Request(text); server -> Provide(text) = a ServerCutText event.
  cut_text(): we -> Notify(text); server -> Request(text) when a desktop app pastes; we ->
  Provide(text). A server whose Caps accept unasked text of that size gets Provide at once.
"""

from __future__ import annotations

import logging

from . import clipboard_codec as codec
from .clipboard_codec import Action, Caps, Format, Notify, Peek, Provide, Request
from .errors import LocalProtocolError
from .events import ServerCutText
from .limits import Limits
from .messages import ClientMessageType

log = logging.getLogger(__name__)

#: What we accept from the server; text only, and only after a Notify (size 0).
OUR_CAPS = Caps(
    Action.CAPS | Action.REQUEST | Action.PEEK | Action.NOTIFY | Action.PROVIDE,
    ((Format.TEXT, 0),),
)


def _client_message(message: codec.Message) -> bytes:
    return codec.wrap(ClientMessageType.CLIENT_CUT_TEXT, codec.encode(message))


class ExtendedClipboard:
    """Sans-I/O: ``receive(payload)`` may return an event and queues replies in ``outbox``."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self.server_caps: Caps | None = None
        self._local: bytes | None = None  # our text as wire bytes, while the server may ask
        self._requested = False  # a Request is outstanding
        self._again = False  # a Notify arrived while it was: request once more afterwards
        self.outbox = bytearray()

    @property
    def negotiated(self) -> bool:
        """The server sent Caps with text: cut text goes as extended messages."""
        caps = self.server_caps
        return (
            caps is not None
            and caps.size_for(Format.TEXT) is not None
            and bool(caps.actions & (Action.NOTIFY | Action.PROVIDE))
        )

    def _server_accepts(self, action: Action) -> bool:
        return self.server_caps is not None and bool(self.server_caps.actions & action)

    def data_to_send(self) -> bytes:
        out = bytes(self.outbox)
        self.outbox.clear()
        return out

    # -- server -> us -----------------------------------------------------------------------
    def receive(self, payload: bytes) -> ServerCutText | None:
        message = codec.decode(payload, self._limits.max_cut_text)
        if isinstance(message, Caps):
            self.server_caps = message
            self.outbox += _client_message(OUR_CAPS)
        elif isinstance(message, Notify):
            self._on_notify(message)
        elif isinstance(message, Request):
            if message.formats & Format.TEXT and self._local is not None:
                self._provide(self._local)
        elif isinstance(message, Peek):
            if self._server_accepts(Action.NOTIFY):
                formats = Format.TEXT if self._local is not None else 0
                self.outbox += _client_message(Notify(formats))
        else:
            return self._on_provide(message)
        return None

    def _on_notify(self, message: Notify) -> None:
        if not message.formats & Format.TEXT:
            # Nothing we take (or empty): an outstanding Request will not be answered, as
            # TigerVNC ignores a Request once its clipboard is gone.
            self._requested = self._again = False
            return
        self._local = None  # the server's clipboard changed: ours is no longer the current one
        if not self._server_accepts(Action.REQUEST):
            return
        if self._requested and not self._again:
            self._again = True  # ask once more when the answer comes
            return
        # Nothing outstanding; or a second change with no answer yet: Xvnc drops a Request
        # whose selection owner failed to answer, so asking afresh keeps us from waiting forever.
        self._requested, self._again = True, False
        self.outbox += _client_message(Request(Format.TEXT))

    def _on_provide(self, message: Provide) -> ServerCutText | None:
        self._requested = False
        if self._again:
            self._again = False
            self._requested = True
            self.outbox += _client_message(Request(Format.TEXT))
        if not message.formats & Format.TEXT:
            return None
        self._local = None
        if message.oversized or message.text is None:
            log.info("dropped extended clipboard text of %d bytes", message.text_size)
            return ServerCutText(b"", message.text_size, oversized=True, extended=True)
        raw, text = codec.text_from_wire(message.text)
        return ServerCutText(raw, message.text_size, extended=True, text=text)

    # -- us -> server -----------------------------------------------------------------------
    def announce(self, text: str) -> bytes:
        """Offer ``text``: Provide at once if the server takes it unasked, else Notify and
        Provide when it sends Request (TigerVNC does so when a desktop app pastes)."""
        if not self.negotiated:
            raise LocalProtocolError("the server has not announced extended clipboard text")
        wire = codec.text_to_wire(text)
        if len(wire) > self._limits.max_cut_text:
            raise LocalProtocolError(
                f"clipboard text of {len(wire)} bytes (limit {self._limits.max_cut_text})"
            )
        self._local = wire
        unasked = (self.server_caps.size_for(Format.TEXT) if self.server_caps else None) or 0
        if self._server_accepts(Action.PROVIDE) and len(wire) <= unasked:
            return self._take_provide(wire)
        if self._server_accepts(Action.NOTIFY):
            return _client_message(Notify(Format.TEXT))
        return self._take_provide(wire)

    def _provide(self, wire: bytes) -> None:
        self.outbox += self._take_provide(wire)

    def _take_provide(self, wire: bytes) -> bytes:
        return _client_message(Provide(Format.TEXT, wire, len(wire)))
