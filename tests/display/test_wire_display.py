"""Display codec: byte tables fed whole, byte by byte and with trailing data; bounds; fuzzing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.wire import display as w
from gateway.wire.display import Direction

PNG = b"\x89PNG\r\n\x1a\n" + b"rest"
JPEG = b"\xff\xd8\xff\xe0" + b"rest"
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8L"

V, G = Direction.TO_VIEWER, Direction.TO_GATEWAY

TABLE: list[tuple[w.Message, bytes, Direction]] = [
    (w.Hello(1, 1920, 1080, 5, "s1", "学校"),
     b"\x01\x00\x00\x00\x13" + b"\x00\x01\x07\x80\x04\x38\x00\x00\x00\x05\x02s1"
     + "学校".encode(), V),
    (w.Resize(800, 600), b"\x02\x00\x00\x00\x04\x03\x20\x02\x58", V),
    (w.Tile(64, 128, 64, 32, w.TileFormat.PNG, PNG),
     b"\x03\x00\x00\x00\x15\x00\x40\x00\x80\x00\x40\x00\x20\x01" + PNG, V),
    (w.Tile(0, 0, 1, 1, w.TileFormat.JPEG, JPEG),
     b"\x03\x00\x00\x00\x11" + bytes(4) + b"\x00\x01\x00\x01\x02" + JPEG, V),
    (w.Tile(0, 0, 1, 1, w.TileFormat.WEBP, WEBP),
     b"\x03\x00\x00\x00\x19" + bytes(4) + b"\x00\x01\x00\x01\x03" + WEBP, V),
    (w.Copy(1, 2, 3, 4, 5, 6), b"\x04\x00\x00\x00\x0c\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05"
     b"\x00\x06", V),
    (w.Cursor(1, 2, 16, 16, PNG), b"\x05\x00\x00\x00\x14\x00\x01\x00\x02\x00\x10\x00\x10" + PNG,
     V),
    (w.Cursor(0, 0, 0, 0, b""), b"\x05\x00\x00\x00\x08" + bytes(8), V),
    (w.Sync(7, 1_700_000_000_000), b"\x06\x00\x00\x00\x0c\x00\x00\x00\x07"
     + struct.pack(">Q", 1_700_000_000_000), V),
    (w.Notice(w.NoticeLevel.WARNING, 3, "idle"), b"\x07\x00\x00\x00\x07\x01\x00\x03idle", V),
    (w.End(1, "bye"), b"\x08\x00\x00\x00\x05\x00\x01bye", V),
    (w.Pong(42), b"\x09\x00\x00\x00\x08" + struct.pack(">Q", 42), V),
    (w.Fill(0, 64, 64, 64, 255, 128, 0), b"\x0a\x00\x00\x00\x0b\x00\x00\x00\x40\x00\x40\x00\x40"
     b"\xff\x80\x00", V),
    (w.Resume(1, 9), b"\x80\x00\x00\x00\x06\x00\x01\x00\x00\x00\x09", G),
    (w.Ack(5), b"\x81\x00\x00\x00\x04\x00\x00\x00\x05", G),
    (w.Key(0xFF2A, True), b"\x82\x00\x00\x00\x05\x00\x00\xff\x2a\x01", G),
    (w.Key(0x61, False), b"\x82\x00\x00\x00\x05\x00\x00\x00\x61\x00", G),
    (w.Pointer(10, 20, 1 << 3), b"\x83\x00\x00\x00\x06\x00\x0a\x00\x14\x00\x08", G),
    (w.Ping(123), b"\x84\x00\x00\x00\x08" + struct.pack(">Q", 123), G),
    (w.ClipboardOut("写真 ok"), b"\x0b\x00\x00\x00\x09" + "写真 ok".encode(), V),
    (w.ClipboardOut(""), b"\x0b\x00\x00\x00\x00", V),
    (w.ClipboardIn("貼り\n付け"), b"\x85\x00\x00\x00\x0d" + "貼り\n付け".encode(), G),
    (w.ClipboardIn(""), b"\x85\x00\x00\x00\x00", G),
    (w.Blocked(w.BlockedKind.PASTE), b"\x86\x00\x00\x00\x01\x01", G),
    (w.Blocked(w.BlockedKind.PRINT), b"\x86\x00\x00\x00\x01\x04", G),
    (w.Blocked(200), b"\x86\x00\x00\x00\x01\xc8", G),  # a future kind: carried as a number
]  # fmt: skip
VIEWER_TYPES = {"Resume", "Ack", "Key", "Pointer", "Ping", "ClipboardIn", "Blocked"}


def tr(direction: Direction, data: bytes, *, chunk: int | None = None) -> list[w.Message]:
    dec = w.DisplayDecoder(direction)
    out: list[w.Message] = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in [*pieces, b""]:
        dec.feed(piece)
        while not isinstance(ev := dec.next_event(), w.Sentinel):
            out.append(ev)
        if piece:
            assert ev is w.NEED_DATA
    assert dec.next_event() is w.CLOSED
    return out


@pytest.mark.parametrize(("msg", "raw", "direction"), TABLE)
def test_table_encode_and_decode(msg: w.Message, raw: bytes, direction: Direction) -> None:
    assert w.encode(msg) == raw
    assert tr(direction, raw) == [msg]
    assert tr(direction, raw, chunk=1) == [msg]
    assert tr(direction, raw * 3, chunk=7) == [msg] * 3


@pytest.mark.parametrize(("msg", "raw", "direction"), TABLE)
def test_truncated_at_every_byte_is_an_error_at_eof(msg, raw, direction) -> None:
    for cut in range(1, len(raw)):
        dec = w.DisplayDecoder(direction)
        dec.feed(raw[:cut])
        assert dec.next_event() is w.NEED_DATA
        dec.feed(b"")
        with pytest.raises(w.TruncatedStream):
            dec.next_event()


def test_trailing_garbage_after_a_message_is_rejected() -> None:
    dec = w.DisplayDecoder(G)
    dec.feed(w.encode(w.Ack(1)) + b"\x7f\x00")
    assert dec.next_event() == w.Ack(1)
    assert dec.next_event() is w.NEED_DATA  # header incomplete: wait
    dec.feed(b"\x00\x00\x00")
    with pytest.raises(w.UnknownMessage):
        dec.next_event()


def test_message_from_the_wrong_direction_is_rejected() -> None:
    dec = w.DisplayDecoder(G)
    dec.feed(w.encode(w.Pong(1)))
    with pytest.raises(w.UnknownMessage):
        dec.next_event()


def test_oversized_tile_is_refused_from_the_header_alone() -> None:
    dec = w.DisplayDecoder(V)
    dec.feed(struct.pack(">BI", w.MessageType.TILE, 9 + w.MAX_TILE_DATA + 1))
    with pytest.raises(w.MessageTooLarge):
        dec.next_event()


def test_huge_length_on_a_fixed_size_message_is_refused() -> None:
    dec = w.DisplayDecoder(G)
    dec.feed(b"\x81\xff\xff\xff\xff")
    with pytest.raises(w.MessageTooLarge):
        dec.next_event()


@pytest.mark.parametrize(
    ("direction", "raw", "error"),
    [
        (G, b"\x82\x00\x00\x00\x05\x00\x00\x00\x61\x02", w.MalformedMessage),  # down=2
        (V, b"\x03\x00\x00\x00\x0d" + bytes(4) + b"\x00\x01\x00\x01\x01GIF8",
         w.MalformedMessage),  # not a PNG
        (V, b"\x03\x00\x00\x00\x15" + bytes(4) + b"\x00\x01\x00\x01\x09" + PNG, w.MalformedMessage),
        (V, b"\x03\x00\x00\x00\x15" + bytes(4) + b"\x00\x00\x00\x01\x01" + PNG, w.MalformedMessage),
        (V, b"\x02\x00\x00\x00\x04\x40\x00\x00\x10", w.MalformedMessage),  # width 16384
        (V, b"\x08\x00\x00\x00\x03\x00\x01\xff", w.MalformedMessage),  # not UTF-8
        (V, b"\x07\x00\x00\x00\x03\x09\x00\x01", w.MalformedMessage),  # unknown level
        (V, b"\x05\x00\x00\x00\x0b\x00\x10\x00\x00\x00\x10\x00\x10" + PNG[:3], w.MalformedMessage),
        (V, b"\x01\x00\x00\x00\x0d" + b"\x00\x01\x00\x10\x00\x10" + bytes(4) + b"\x05ab",
         w.MalformedMessage),  # session id longer than the payload
        (G, b"\x81\x00\x00\x00\x03\x00\x00\x01", w.MalformedMessage),  # short fixed message
        (G, b"\x85\x00\x00\x00\x02\xc3\x28", w.MalformedMessage),  # clipboard not UTF-8
        (V, b"\x0b\x00\x00\x00\x03\xed\xa0\x80", w.MalformedMessage),  # a surrogate
        (G, b"\x86\x00\x00\x00\x00", w.MalformedMessage),  # Blocked without its kind
        (G, b"\x86\x00\x00\x00\x02\x01\x01", w.MessageTooLarge),
        (V, w.encode(w.ClipboardIn("x")), w.UnknownMessage),  # the viewer's message, not ours
        (G, w.encode(w.ClipboardOut("x")), w.UnknownMessage),
    ],
)  # fmt: skip
def test_malformed_payloads(direction, raw, error) -> None:
    with pytest.raises(error):
        tr(direction, raw)


def test_encoder_refuses_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        w.encode(w.Pointer(70000, 0, 0))
    with pytest.raises(ValueError):
        w.encode(w.End(0, "x" * (w.MAX_TEXT + 1)))
    with pytest.raises(ValueError):
        w.encode(w.ClipboardIn("あ" * (w.MAX_CLIPBOARD // 3 + 1)))  # 3 bytes each in UTF-8
    with pytest.raises(ValueError):
        w.encode(w.ClipboardOut("\ud800"))  # a lone surrogate has no UTF-8
    with pytest.raises(ValueError):
        w.encode(w.Blocked(256))


@pytest.mark.parametrize(
    ("mtype", "direction"), [(w.MessageType.CLIPBOARD_IN, G), (w.MessageType.CLIPBOARD_OUT, V)]
)
def test_clipboard_over_one_mib_is_refused_from_the_header_alone(mtype, direction) -> None:
    dec = w.DisplayDecoder(direction)
    dec.feed(struct.pack(">BI", mtype, w.MAX_CLIPBOARD + 1))  # no payload follows
    with pytest.raises(w.MessageTooLarge):
        dec.next_event()


def test_clipboard_of_exactly_one_mib_round_trips() -> None:
    text = "x" * (w.MAX_CLIPBOARD - 3) + "字"
    raw = w.encode(w.ClipboardIn(text))
    assert len(raw) == 5 + w.MAX_CLIPBOARD
    assert tr(G, raw, chunk=64 * 1024) == [w.ClipboardIn(text)]


def test_clipboard_wire_numbers() -> None:
    # Other components (the viewer, the gateway session, audit) depend on these exact values.
    assert (w.VERSION, w.MIN_VERSION) == (4, 2)  # 3 added PALETTE, 4 PALETTE_PACKED
    assert (w.HelloFlags.CLIPBOARD_TO_REMOTE, w.HelloFlags.CLIPBOARD_TO_LOCAL) == (8, 16)
    assert (w.MessageType.CLIPBOARD_OUT, w.MessageType.CLIPBOARD_IN) == (0x0B, 0x85)
    assert w.MessageType.BLOCKED == 0x86
    assert [int(k) for k in w.BlockedKind] == [1, 2, 3, 4, 5]


def test_protocol_errors_carry_an_end_code() -> None:
    assert w.MalformedMessage("x").code == w.EndCode.PROTOCOL_ERROR


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([V, G]))
def test_any_bytes_give_events_or_a_clean_protocol_error(data: bytes, direction) -> None:
    dec = w.DisplayDecoder(direction)
    if data:
        dec.feed(data)
    dec.feed(b"")
    consumed = b""
    try:
        while (ev := dec.next_event()) is not w.CLOSED:
            consumed += w.encode(ev)  # re-encoding is byte-stable
    except w.ProtocolError:
        return
    assert consumed == data


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([(0x0B, V), (0x85, G), (0x86, G)]), st.binary(max_size=64))
def test_new_types_give_their_message_or_a_clean_protocol_error(kind, payload) -> None:
    mtype, direction = kind
    raw = struct.pack(">BI", mtype, len(payload)) + payload
    try:
        msgs = tr(direction, raw, chunk=3)
    except w.ProtocolError:
        return
    assert [w.encode(m) for m in msgs] == [raw]


_valid = st.sampled_from([m for m, _, _ in TABLE]) | st.builds(
    w.Pointer, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)
) | st.builds(w.Key, st.integers(0, 0xFFFFFFFF), st.booleans()) | st.builds(
    w.ClipboardIn, st.text(max_size=40)
) | st.builds(w.ClipboardOut, st.text(max_size=40)) | st.builds(
    w.Blocked, st.integers(0, 255)
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(_valid, max_size=8), st.integers(1, 9))
def test_round_trip_streams_in_any_chunking(msgs, chunk) -> None:
    for direction in (V, G):
        mine = [m for m in msgs if (type(m).__name__ in VIEWER_TYPES) == (direction is G)]
        assert tr(direction, b"".join(w.encode(m) for m in mine), chunk=chunk) == mine
