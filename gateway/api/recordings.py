"""Recordings API: list, check, export for evidence, replay windows for the console's player,
and deletion. Every export, replay and deletion is audited (who looked at which recording); with
policy `recording.replay_approval`, export and replay also need a second officer's approval of
the requester's request (gateway/api/replay_requests.py), refusals audited.

Attacker-controlled here: the recording id (matched against the store's id pattern) and the
replay time; the files themselves are read with the recording format's bounds.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import bad_request, forbidden, not_found
from gateway.api.replay_requests import recording_policy
from gateway.audit.kinds import (
    RecordingDeleted,
    RecordingExported,
    RecordingExportRefused,
    RecordingReplayed,
    RecordingReplayRefused,
)
from gateway.recording import approval
from gateway.recording.keys import verification_keys
from gateway.recording.reader import RecordingReader
from gateway.recording.store import (
    RecordingInfo,
    delete,
    find_recording,
    list_recordings,
    read_info,
    recordings_root,
)
from gateway.recording.verify import verify_recording

WINDOW_MS = 60_000
MAX_WINDOW_BYTES = 64 * 1024 * 1024
ITEM = struct.Struct(">QI")  # | t_ms u64 | length u32 | display bytes |


def info_json(info: RecordingInfo) -> dict[str, Any]:
    return {"id": info.id, "path": str(info.path), "session": info.session, "user": info.user,
            "school": info.school or None, "started": info.started.isoformat(),
            "ended": info.ended.isoformat() if info.ended else None, "bytes": info.bytes,
            "sealed": info.sealed}


def _root(request: web.Request) -> Path:
    return recordings_root(ctx(request).data.root, ctx(request).config.recordings_dir)


async def _find(request: web.Request, action: str) -> RecordingInfo:
    path = find_recording(_root(request), request.match_info["recording_id"])
    if path is None:
        raise not_found("There is no recording with that id.")
    info = await asyncio.to_thread(read_info, path)
    await require(request, action, school=info.school or None, subject=info.user)
    return info


async def _access(request: web.Request, info: RecordingInfo, use: str) -> approval.Access:
    c = ctx(request)
    required = recording_policy(request, info).replay_approval
    found = c.store.find_approval(info.id, actor(request).user_id, approval.COVERS[use],
                                  c.clock()) if required else None
    return approval.access(required, found, use)


async def _gate(request: web.Request, info: RecordingInfo, use: str, *,
                audit_refusal: bool = True) -> approval.Access:
    """Allowed, or 403 (audited) when the two-person rule applies and no approval is found."""
    decision = await _access(request, info, use)
    if not decision.allowed:
        if audit_refusal:
            refused = RecordingExportRefused(info.id) if use == "export" \
                else RecordingReplayRefused(info.id)
            await audit(request, refused, subject=info.user, school=info.school or None)
        raise forbidden(decision.reason, "approval-required")
    return decision


def _approval_json(decision: approval.Access, required: bool) -> dict[str, Any]:
    return {"approval_required": required, "approved_by_request": decision.request_id}


async def list_all(request: web.Request) -> web.Response:
    a = actor(request)
    await require(request, "recordings.read", school=a.school)
    infos = await asyncio.to_thread(list_recordings, _root(request))
    user = request.query.get("user")
    rows = []
    for i in infos:
        if (a.school is None or i.school == a.school) and (not user or i.user == user):
            required = recording_policy(request, i).replay_approval
            rows.append(info_json(i) | _approval_json(await _access(request, i, "replay"),
                                                      required))
    return web.json_response({"recordings": rows})


async def show(request: web.Request) -> web.Response:
    info = await _find(request, "recordings.read")
    keys = verification_keys(ctx(request).data.root)
    result = await asyncio.to_thread(verify_recording, info.path, keys)
    return web.json_response(info_json(info) | {"verified": result.ok,
                                                "cut_short": result.cut_short,
                                                "verify_message": result.message,
                                                "chunks": result.chunks})


async def export(request: web.Request) -> web.StreamResponse:
    info = await _find(request, "recordings.read")
    granted = await _gate(request, info, "export")
    await audit(request, RecordingExported(recording=info.id, request=granted.request_id),
                subject=info.user, school=info.school or None)
    return web.FileResponse(info.path, headers={
        "Content-Disposition": f'attachment; filename="{info.id}.srec"',
        "Content-Type": "application/octet-stream"})


def _window(path: Path, t_ms: int) -> tuple[int, bytes]:
    with RecordingReader.open(path) as reader:
        seek = reader.seek(t_ms)
        parts = [ITEM.pack(seek.t_ms, len(seek.key_frame)), seek.key_frame]
        size = len(seek.key_frame)
        end = max(t_ms, seek.t_ms) + WINDOW_MS
        for chunk in seek.frames:
            if chunk.t_ms > end or size > MAX_WINDOW_BYTES:
                break
            parts += [ITEM.pack(chunk.t_ms, len(chunk.payload)), chunk.payload]
            size += len(chunk.payload)
        return seek.t_ms, b"".join(parts)


async def window(request: web.Request) -> web.Response:
    """The whole frame at or before `t` and the frames of the minute after it, as
    `| t_ms u64 | length u32 | display bytes |` items, for the console's player."""
    info = await _find(request, "recordings.read")
    try:
        t_ms = max(0, int(request.query.get("t", "0")))
    except ValueError:
        raise bad_request("t must be milliseconds from the start.") from None
    first = request.query.get("first") == "1"
    granted = await _gate(request, info, "replay", audit_refusal=first)
    if first:
        await audit(request, RecordingReplayed(recording=info.id, t_ms=t_ms,
                                               request=granted.request_id),
                    subject=info.user, school=info.school or None)
    start, body = await asyncio.to_thread(_window, info.path, t_ms)
    return web.Response(body=body, content_type="application/octet-stream",
                        headers={"X-Staffroom-Window-Start": str(start)})


async def remove(request: web.Request) -> web.Response:
    info = await _find(request, "recordings.delete")
    await audit(request, RecordingDeleted(recording=info.id), subject=info.user,
                school=info.school or None, use_reserve=True)
    await asyncio.to_thread(delete, info.path)
    return web.json_response({"deleted": info.id})
