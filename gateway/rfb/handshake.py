"""The RFB handshake as one transition table (h11's "Rule 1"); anything not in it is invalid.

The client core parses bytes into an ``Input`` and asks ``transition``; versions differ only in
which inputs the parser produces (3.3: server picks the type; 3.3/3.7: no SecurityResult after
None and no reason after a failed result).
"""

from __future__ import annotations

from enum import Enum, auto

from .errors import RemoteProtocolError


class State(Enum):
    AWAIT_VERSION = auto()
    AWAIT_SECURITY_TYPES = auto()  # 3.7 / 3.8: a list the client chooses from
    AWAIT_SECURITY_TYPE_33 = auto()  # 3.3: the server decides (u32)
    AWAIT_CHALLENGE = auto()
    AWAIT_SECURITY_RESULT = auto()
    AWAIT_FAILURE_REASON = auto()
    AWAIT_SERVER_INIT = auto()
    CONNECTED = auto()
    CLOSED = auto()


class Input(Enum):
    VERSION_3_8 = auto()
    VERSION_3_7 = auto()
    VERSION_3_3 = auto()
    NO_SECURITY_TYPES = auto()  # the server refuses us; a reason follows
    CHOSE_NONE_WITH_RESULT = auto()  # 3.8
    CHOSE_NONE = auto()  # 3.3 / 3.7: straight to ClientInit
    CHOSE_VNC_AUTH = auto()
    CHALLENGE = auto()
    RESULT_OK = auto()
    RESULT_FAILED_WITH_REASON = auto()  # 3.8
    RESULT_FAILED = auto()  # 3.3 / 3.7
    REASON = auto()
    SERVER_INIT = auto()
    EOF = auto()


_S, _I = State, Input

TRANSITIONS: dict[tuple[State, Input], State] = {
    (_S.AWAIT_VERSION, _I.VERSION_3_8): _S.AWAIT_SECURITY_TYPES,
    (_S.AWAIT_VERSION, _I.VERSION_3_7): _S.AWAIT_SECURITY_TYPES,
    (_S.AWAIT_VERSION, _I.VERSION_3_3): _S.AWAIT_SECURITY_TYPE_33,
    (_S.AWAIT_SECURITY_TYPES, _I.NO_SECURITY_TYPES): _S.AWAIT_FAILURE_REASON,
    (_S.AWAIT_SECURITY_TYPES, _I.CHOSE_NONE_WITH_RESULT): _S.AWAIT_SECURITY_RESULT,
    (_S.AWAIT_SECURITY_TYPES, _I.CHOSE_NONE): _S.AWAIT_SERVER_INIT,
    (_S.AWAIT_SECURITY_TYPES, _I.CHOSE_VNC_AUTH): _S.AWAIT_CHALLENGE,
    (_S.AWAIT_SECURITY_TYPE_33, _I.NO_SECURITY_TYPES): _S.AWAIT_FAILURE_REASON,
    (_S.AWAIT_SECURITY_TYPE_33, _I.CHOSE_NONE): _S.AWAIT_SERVER_INIT,
    (_S.AWAIT_SECURITY_TYPE_33, _I.CHOSE_VNC_AUTH): _S.AWAIT_CHALLENGE,
    (_S.AWAIT_CHALLENGE, _I.CHALLENGE): _S.AWAIT_SECURITY_RESULT,
    (_S.AWAIT_SECURITY_RESULT, _I.RESULT_OK): _S.AWAIT_SERVER_INIT,
    (_S.AWAIT_SECURITY_RESULT, _I.RESULT_FAILED_WITH_REASON): _S.AWAIT_FAILURE_REASON,
    (_S.AWAIT_SECURITY_RESULT, _I.RESULT_FAILED): _S.CLOSED,
    (_S.AWAIT_FAILURE_REASON, _I.REASON): _S.CLOSED,
    (_S.AWAIT_SERVER_INIT, _I.SERVER_INIT): _S.CONNECTED,
}

# EOF is legal everywhere except where already closed; it always ends the connection.
TRANSITIONS.update({(state, _I.EOF): _S.CLOSED for state in State if state is not _S.CLOSED})

del _S, _I


def transition(state: State, event: Input) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise RemoteProtocolError(
            f"unexpected {event.name} in handshake state {state.name}"
        ) from None
