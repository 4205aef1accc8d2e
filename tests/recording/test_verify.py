"""verify_recording: any changed byte, removed/reordered chunk, cut end or forged signature fails,
and the message names the first bad chunk in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.recording import format as fmt
from gateway.recording.reader import Chunk, RecordingReader
from gateway.recording.verify import verify_recording
from tests.fixtures.recording import Recorded, record_session


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    key = ec.generate_private_key(ec.SECP256R1())
    return record_session(tmp_path_factory.mktemp("rec"), key, frames=10, checkpoint_every=5,
                          key_frame_every=4.0, size=(128, 96), watermark=False)  # fmt: skip


def chunks(path: Path) -> list[Chunk]:
    with RecordingReader.open(path) as r:
        return list(r.chunks())


def copy_of(rec: Recorded, tmp_path: Path) -> Path:
    out = tmp_path / rec.path.name
    out.write_bytes(rec.path.read_bytes())
    return out


def flip(path: Path, pos: int, xor: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= xor
    path.write_bytes(bytes(data))


def verify(path: Path, rec: Recorded):
    result = verify_recording(path, rec.key.public_key())
    assert result.message.endswith(".") and result.message.count(". ") == 0  # one sentence
    return result


def test_an_intact_recording_verifies(sealed_recording: Recorded) -> None:
    result = verify(sealed_recording.path, sealed_recording)
    assert result.ok, result.message
    assert result.chunks == len(chunks(sealed_recording.path))
    assert result.duration == 45.0
    assert "intact" in result.message and "0:00:45" in result.message


def _nth(cs: list[Chunk], ctype: fmt.ChunkType, n: int = 0) -> tuple[int, Chunk]:
    return [(i, c) for i, c in enumerate(cs) if c.type is ctype][n]


def in_chunk(ctype: fmt.ChunkType, n: int, delta: int, *, from_end: bool = False):
    """A byte inside the n-th chunk of a type: (position, that chunk's index)."""

    def where(hs: int, cs: list[Chunk], size: int) -> tuple[int, int]:
        i, c = _nth(cs, ctype, n)
        return (c.end if from_end else c.offset) + delta, i

    return where


# name -> function of (header size, chunks, file size) -> (byte position, chunk index to name)
POSITIONS = {
    "magic": lambda hs, cs, size: (0, None),
    "header user": lambda hs, cs, size: (hs - 20 - 10, None),
    "header start time": lambda hs, cs, size: (hs - 20 + 7, None),
    "first chunk type": lambda hs, cs, size: (hs, 0),
    "first chunk length": lambda hs, cs, size: (hs + 4, 0),
    "a frame's time": in_chunk(fmt.ChunkType.FRAME, 3, 12),
    "a frame's pixels": in_chunk(fmt.ChunkType.FRAME, 4, -40, from_end=True),
    "a key frame": in_chunk(fmt.ChunkType.KEYFRAME, 1, -30, from_end=True),
    "a checkpoint's hash list": in_chunk(fmt.ChunkType.CHECKPOINT, 1, 13 + 70),
    "a checkpoint's signature": in_chunk(fmt.ChunkType.CHECKPOINT, 0, -1, from_end=True),
    "the seal's chunk count": lambda hs, cs, size: (size - 64 - 8 - 32 - 1, len(cs) - 1),
    "the seal's end time": lambda hs, cs, size: (size - 64 - 1, len(cs) - 1),
    "the last byte": lambda hs, cs, size: (size - 1, len(cs) - 1),
}


@pytest.mark.parametrize("where", list(POSITIONS))
def test_one_changed_byte_fails_and_names_the_chunk(small: Recorded, tmp_path: Path,
                                                    where: str) -> None:  # fmt: skip
    path = copy_of(small, tmp_path)
    with RecordingReader.open(path) as r:
        header_size = r.data_start
    pos, index = POSITIONS[where](header_size, chunks(path), path.stat().st_size)
    flip(path, pos)
    result = verify(path, small)
    assert not result.ok
    if index is None:
        assert "header" in result.message or "not a Staffroom recording" in result.message
    else:
        assert f"hunk {index} " in result.message, result.message


def test_a_changed_frame_is_named_exactly(small: Recorded, tmp_path: Path) -> None:
    path = copy_of(small, tmp_path)
    i, frame = _nth(chunks(path), fmt.ChunkType.FRAME, 6)
    flip(path, frame.offset + 20)
    result = verify(path, small)
    assert not result.ok and result.message.startswith(f"Chunk {i} was changed"), result.message


def cut(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)


@pytest.mark.parametrize("where", ["inside the seal", "seal removed", "inside a frame",
                                   "after the header"])  # fmt: skip
def test_a_cut_end_fails(small: Recorded, tmp_path: Path, where: str) -> None:
    path = copy_of(small, tmp_path)
    cs = chunks(path)
    size = {
        "inside the seal": cs[-1].end - 10,
        "seal removed": cs[-1].offset,
        "inside a frame": _nth(cs, fmt.ChunkType.FRAME, 5)[1].end - 100,
        "after the header": cs[0].offset,
    }[where]
    cut(path, size)
    result = verify(path, small)
    assert not result.ok and result.cut_short  # a crash's mark: not "forged"
    assert "cut short" in result.message and "forged" not in result.message, result.message


def rewrite(path: Path, cs: list[Chunk]) -> None:
    with RecordingReader.open(path) as r:
        header = r.header_bytes
    path.write_bytes(header + b"".join(
        fmt.chunk_head(c.type | (fmt.CONTINUED if c.continued else 0), len(c.payload), c.t_ms)
        + c.payload for c in cs))  # fmt: skip


def test_a_removed_chunk_fails_and_is_named(small: Recorded, tmp_path: Path) -> None:
    path = copy_of(small, tmp_path)
    cs = chunks(path)
    i, _ = _nth(cs, fmt.ChunkType.FRAME, 5)
    rewrite(path, cs[:i] + cs[i + 1 :])
    result = verify(path, small)
    assert not result.ok and result.message.startswith(f"Chunk {i} was changed, removed"), (
        result.message)  # fmt: skip


def test_a_removed_checkpoint_fails(small: Recorded, tmp_path: Path) -> None:
    path = copy_of(small, tmp_path)
    cs = chunks(path)
    i, _ = _nth(cs, fmt.ChunkType.CHECKPOINT)
    rewrite(path, cs[:i] + cs[i + 1 :])
    assert not verify(path, small).ok


def test_reordered_chunks_fail(small: Recorded, tmp_path: Path) -> None:
    path = copy_of(small, tmp_path)
    cs = chunks(path)
    i, _ = _nth(cs, fmt.ChunkType.FRAME, 3)
    rewrite(path, [*cs[:i], cs[i + 1], cs[i], *cs[i + 2 :]])
    result = verify(path, small)
    assert not result.ok and f"hunk {i} " in result.message, result.message


def test_data_after_the_seal_fails(small: Recorded, tmp_path: Path) -> None:
    path = copy_of(small, tmp_path)
    cs = chunks(path)
    rewrite(path, [*cs, cs[1]])
    result = verify(path, small)
    assert not result.ok and "follows the seal" in result.message


def resign(path: Path, cs: list[Chunk], key: ec.EllipticCurvePrivateKey) -> None:
    """What a forger does: re-chain every chunk and re-sign checkpoints and seal with a key."""
    with RecordingReader.open(path) as r:
        header = r.header_bytes
    hh, head, pending, out = fmt.header_hash(header), fmt.genesis(header), [], []
    for count, c in enumerate(cs):
        payload = c.payload
        if c.type is fmt.ChunkType.CHECKPOINT:
            body = fmt.checkpoint_body(hh, count, head, pending)
            payload = body + fmt.sign(key, fmt.signed_message(c.type, c.t_ms, body))
            pending = []
        elif c.type is fmt.ChunkType.SEAL:
            body = fmt.seal_body(hh, count, head, fmt.decode_seal(c.payload)[0].ended_ms)
            payload = body + fmt.sign(key, fmt.signed_message(c.type, c.t_ms, body))
        raw = fmt.chunk_head(c.type | (fmt.CONTINUED if c.continued else 0), len(payload),
                             c.t_ms) + payload  # fmt: skip
        head = fmt.chain(head, raw)
        pending.append(head[: fmt.PREFIX])
        out.append(raw)
    path.write_bytes(header + b"".join(out))


def test_resigning_with_the_real_key_is_accepted(small: Recorded, tmp_path: Path) -> None:
    path = copy_of(small, tmp_path)
    resign(path, chunks(path), small.key)  # the forger's tool is right: only the key is missing
    assert verify(path, small).ok


def test_a_forged_signature_fails(small: Recorded, tmp_path: Path) -> None:
    path = copy_of(small, tmp_path)
    cs = chunks(path)
    i, frame = _nth(cs, fmt.ChunkType.FRAME, 2)
    cs[i] = Chunk(frame.type, frame.continued, frame.t_ms, frame.offset,
                  frame.payload[:-1] + b"\x00")  # fmt: skip
    resign(path, cs, ec.generate_private_key(ec.SECP256R1()))
    first_cp = _nth(cs, fmt.ChunkType.CHECKPOINT)[0]
    result = verify(path, small)
    assert not result.ok
    assert result.message.startswith(f"Chunk {first_cp} (checkpoint"), result.message
    assert "forged" in result.message


def test_the_wrong_public_key_is_named(small: Recorded) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    result = verify_recording(small.path, other)
    assert not result.ok and "different key" in result.message


def test_not_a_recording(tmp_path: Path, small: Recorded) -> None:
    for content in (b"", b"hello world, not a recording", b"\xff" * 4096):
        path = tmp_path / "x.srec"
        path.write_bytes(content)
        result = verify(path, small)
        assert not result.ok and result.message.startswith("The recording cannot be read")
    assert not verify(tmp_path / "missing.srec", small).ok


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_changed_byte_or_cut_is_detected(small: Recorded, tmp_path_factory, data) -> None:
    raw = small.path.read_bytes()
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    xor = data.draw(st.integers(1, 255), label="xor")
    cut_at = data.draw(st.none() | st.integers(0, len(raw) - 1), label="cut")
    changed = bytearray(raw)
    changed[pos] ^= xor
    path = tmp_path_factory.mktemp("fuzz") / "r.srec"
    path.write_bytes(bytes(changed[:cut_at] if cut_at is not None else changed))
    result = verify_recording(path, small.key.public_key())
    assert not result.ok
    assert result.message.endswith(".")
