"""What goes into a live session's state machine (gateway/live/session_machine.py) and out.

Inputs are what happened: a viewer frame, a desktop (RFB) event, a clock tick, an officer's or the
broker's end, a helpdesk operator joining, an encoded frame handed back. Outputs are what to do,
in order: the shell (gateway/live/session.py) carries them out one after the other and awaits each
`Audit` (durable) before the next output, so a record always precedes the effect it describes.
Attacker-controlled: the bytes and text inside ViewerBytes/ViewerText and HelperInput's event;
the machine bounds and decides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.audit.kinds import TypedEvent
from gateway.display.frame_job import FrameJob
from gateway.wire import display as wire


@dataclass(frozen=True, slots=True)
class Now:
    """The clock, passed in: Unix seconds (for frames and records) and monotonic seconds (for
    limits and deadlines, immune to the wall clock being set)."""

    wall: float
    mono: float


# --- inputs ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DesktopReady:
    """The desktop connection is up: ask it for a whole picture."""


@dataclass(frozen=True, slots=True)
class Attached:
    """A tunnel (the first, or a resume's) is serving this session now."""


@dataclass(frozen=True, slots=True)
class Detached:
    """The tunnel closed without the session ending: the reconnect grace starts."""


@dataclass(frozen=True, slots=True)
class ViewerBytes:
    data: bytes  # a binary WebSocket frame from the viewer (display messages)


@dataclass(frozen=True, slots=True)
class ViewerText:
    text: str  # a text WebSocket frame: the agent's signed posture re-check


@dataclass(frozen=True, slots=True)
class DesktopUpdated:
    """The desktop finished an update (RFB UpdateDone): one request fewer outstanding.
    ``observer_key``: a recorder or watcher wants a key frame (as in FrameDue), for a small
    update taken in this step."""

    observer_key: bool = False


@dataclass(frozen=True, slots=True)
class DesktopResized:
    pass


@dataclass(frozen=True, slots=True)
class DesktopClipboard:
    text: str  # RFB ServerCutText, as decoded
    length: int  # the length the desktop announced (the text may have been cut)


@dataclass(frozen=True, slots=True)
class DesktopLost:
    """The desktop connection closed or failed."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Once a second (from the session's own start, so sessions do not tick together)."""


@dataclass(frozen=True, slots=True)
class FrameDue:
    """The frame loop woke: take a frame if the window allows."""

    observer_key: bool = False  # the recording or a watcher wants a key frame


@dataclass(frozen=True, slots=True)
class FrameEncoded:
    job: FrameJob
    data: bytes


@dataclass(frozen=True, slots=True)
class RecordingBroken:
    error: str  # one sentence from the recording writer (disk full, …)


@dataclass(frozen=True, slots=True)
class Terminate:
    """End the session from outside: an officer, a revoked key, a shutdown, the broker."""

    code: wire.EndCode
    text: str


@dataclass(frozen=True, slots=True)
class HandedOver:
    """Another gateway node resumed this session (the agent reconnected there while it was
    detached here) and carries it on: stop holding it without ending it."""

    node: str


@dataclass(frozen=True, slots=True)
class WatcherJoined:
    """A security officer opened the read-only live view."""


@dataclass(frozen=True, slots=True)
class HelperJoin:
    helper: str  # the helpdesk operator's user id
    name: str  # "name (id)", shown to the teacher


@dataclass(frozen=True, slots=True)
class HelperLeft:
    helper: str


@dataclass(frozen=True, slots=True)
class HelperInput:
    helper: str
    event: wire.Key | wire.Pointer  # decoded from the operator's console


@dataclass(frozen=True, slots=True)
class HelperBroke:
    helper: str
    error: str  # the operator's console sent something the codec refused


Input = (DesktopReady | Attached | Detached | ViewerBytes | ViewerText | DesktopUpdated
         | DesktopResized | DesktopClipboard | DesktopLost | Tick | FrameDue | FrameEncoded
         | RecordingBroken | Terminate | HandedOver | WatcherJoined | HelperJoin | HelperLeft
         | HelperInput | HelperBroke)


# --- outputs ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Audit:
    """Write this record durably before carrying out the next output. `required=False` only for
    the end: ending is the safe direction, so it goes ahead even when it cannot be audited."""

    event: TypedEvent
    required: bool = True


@dataclass(frozen=True, slots=True)
class SendViewer:
    data: bytes  # encoded display messages for the teacher's viewer (if one is attached)


@dataclass(frozen=True, slots=True)
class KeyToDesktop:
    keysym: int
    down: bool


@dataclass(frozen=True, slots=True)
class PointerToDesktop:
    x: int
    y: int
    buttons: int


@dataclass(frozen=True, slots=True)
class ClipboardToDesktop:
    text: str


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    incremental: bool = True


@dataclass(frozen=True, slots=True)
class EncodeFrame:
    """Encode this frame (inline when small, else in a thread) and hand it back (FrameEncoded)."""

    job: FrameJob


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Send the frame to the viewer, then to the observers (with a key frame if the job has one)."""

    data: bytes
    job: FrameJob


@dataclass(frozen=True, slots=True)
class WakeFrames:
    """Something may have made a frame possible: let the frame loop look (FrameDue)."""


@dataclass(frozen=True, slots=True)
class TickRecorder:
    """Let the recording checkpoint what a quiet screen left buffered."""


@dataclass(frozen=True, slots=True)
class MarkRecording:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class PostHelper:
    data: bytes  # a message the operator's view must get (the help state)


@dataclass(frozen=True, slots=True)
class AdmitHelper:
    """The operator may join: attach their view as an observer."""


@dataclass(frozen=True, slots=True)
class RefuseHelper:
    reason: str  # one sentence for the operator


@dataclass(frozen=True, slots=True)
class DropHelper:
    """The teacher ended the help: close the operator's view."""


@dataclass(frozen=True, slots=True)
class CountRecheck:
    outcome: str  # a posture re-check's outcome, for the metrics


@dataclass(frozen=True, slots=True)
class SendReceipt:
    work: dict[str, Any]  # the work-hours figures the signed receipt states


@dataclass(frozen=True, slots=True)
class Close:
    """The end: give the observers `end`, send it to the viewer, close the tunnel with
    4000 + code and `text` as the close reason, stop the session's tasks and let go."""

    code: wire.EndCode
    text: str
    end: bytes
    to_viewer: bool = True  # False: handed over (the agent is another node's now)


Output = (Audit | SendViewer | KeyToDesktop | PointerToDesktop | ClipboardToDesktop
          | RequestUpdate | EncodeFrame | SendFrame | WakeFrames | TickRecorder | MarkRecording
          | PostHelper | AdmitHelper | RefuseHelper | DropHelper | CountRecheck | SendReceipt
          | Close)
