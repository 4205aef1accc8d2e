"""The cryptography of the audit chain: genesis value, record hashes, signed checkpoints and head.

Attacker-controlled here: the head file and the signatures read back from a log being verified.
Limits: the head file is read up to 4 KiB; signatures are checked with the officer's public key
(ECDSA P-256, SHA-256) and a bad one is a verification failure, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit.events import AuditEvent, AuditRecord, canonical_json, record_body

FORMAT = "staffroom-audit-v1"
LOG_FILE = "audit.log"
HEAD_FILE = "audit.head"
MAX_HEAD = 4096
_ECDSA = ec.ECDSA(hashes.SHA256())


class HeadError(ValueError):
    """The head file is missing, unreadable or not well formed."""


def genesis_hash(log_id: str) -> str:
    """What record 0 chains from: fixed label plus the random id written when the log was made."""
    return hashlib.sha256(canonical_json([FORMAT, "genesis", log_id])).hexdigest()


def record_hash(seq: int, time: str, event: AuditEvent, prev_hash: str) -> str:
    """SHA-256 over the previous hash and the canonical record without its own hash field."""
    body = canonical_json(record_body(seq, time, event, prev_hash))
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def hash_matches(record: AuditRecord) -> bool:
    return record.hash == record_hash(record.seq, record.time, record.event, record.prev_hash)


def checkpoint_message(log_id: str, seq: int, prev_hash: str) -> bytes:
    return canonical_json([FORMAT, "checkpoint", log_id, seq, prev_hash])


def head_message(log_id: str, seq: int, hash_: str) -> bytes:
    return canonical_json([FORMAT, "head", log_id, seq, hash_])


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """First 16 hex digits of SHA-256 over the SubjectPublicKeyInfo: names the key, not secret."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def require_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey
    ) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the audit signing key must be an ECDSA P-256 key")


def sign(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, _ECDSA)).decode("ascii")


def signature_valid(
    public_key: ec.EllipticCurvePublicKey, message: bytes, signature: object
) -> bool:
    if not isinstance(signature, str) or len(signature) > 256:
        return False
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message, _ECDSA)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Head:
    """The signed (seq, hash) of the last record, so cutting records off the end is detectable."""

    log_id: str
    seq: int
    hash: str
    checkpoint_seq: int  # a hint for when the next checkpoint is due; not signed
    signature: str

    def valid(self, public_key: ec.EllipticCurvePublicKey) -> bool:
        message = head_message(self.log_id, self.seq, self.hash)
        return signature_valid(public_key, message, self.signature)


def make_head(
    private_key: ec.EllipticCurvePrivateKey, log_id: str, seq: int, hash_: str, checkpoint_seq: int
) -> Head:
    signature = sign(private_key, head_message(log_id, seq, hash_))
    return Head(log_id, seq, hash_, checkpoint_seq, signature)


def read_head(directory: Path) -> Head:
    path = directory / HEAD_FILE
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_HEAD + 1)
    except FileNotFoundError as exc:
        raise HeadError(f"the signed head file {HEAD_FILE} is missing") from exc
    try:
        if len(raw) > MAX_HEAD:
            raise ValueError("too long")
        data = json.loads(raw)
        head = Head(
            str(data["log_id"]),
            data["seq"],
            str(data["hash"]),
            data["checkpoint_seq"],
            str(data["signature"]),
        )
        if not all(
            isinstance(v, int) and not isinstance(v, bool) for v in (head.seq, head.checkpoint_seq)
        ):
            raise ValueError("seq is not a number")
    except (ValueError, KeyError, TypeError) as exc:
        raise HeadError(f"the signed head file {HEAD_FILE} is not well formed") from exc
    return head


def write_head(directory: Path, head: Head) -> None:
    """Replace the head atomically: write a temp file, fsync it, rename, fsync the directory."""
    data = canonical_json(
        {
            "log_id": head.log_id,
            "seq": head.seq,
            "hash": head.hash,
            "checkpoint_seq": head.checkpoint_seq,
            "signature": head.signature,
        }
    )
    tmp = directory / (HEAD_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, data + b"\n")
        os.fsync(fd)
    except OSError:
        os.close(fd)
        tmp.unlink(missing_ok=True)  # a full disk keeps no half-written head around
        raise
    os.close(fd)
    os.replace(tmp, directory / HEAD_FILE)
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
