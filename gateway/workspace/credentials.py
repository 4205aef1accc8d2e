"""Per-desktop secrets: the VNC password file (rfbauth) and the X authority cookie file.

Attacker-controlled here: nothing (both secrets are generated here from `secrets`); the files are
created 0600 with O_EXCL|O_NOFOLLOW so a planted file or symlink in the runtime dir is refused.
"""

from __future__ import annotations

import os
import secrets
import struct
from pathlib import Path

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

# VNC's fixed obfuscation key {23,82,107,6,35,78,88,7}, bit-reversed per byte as DES wants it.
# This is obfuscation, not encryption: the file's secrecy comes from its 0600 mode.
_VNC_FIXED_KEY = bytes.fromhex("e84ad660c4721ae0")
VNC_PASSWORD_LEN = 8  # VncAuth uses only the first 8 bytes of a password
_XAUTH_FAMILY_WILD = 0xFFFF
_MIT_COOKIE = b"MIT-MAGIC-COOKIE-1"


def new_vnc_password() -> str:
    """A random 8-character password (48 bits): all that VncAuth can carry."""
    return secrets.token_urlsafe(6)


def des_encrypt(key8: bytes, block: bytes) -> bytes:
    """Single DES-ECB, as triple DES with three equal keys (the form cryptography supports)."""
    encryptor = Cipher(TripleDES(key8 * 3), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def obfuscate_vnc_password(password: str) -> bytes:
    """The 8 bytes `vncpasswd -f` writes for ``password`` (truncated/zero-padded to 8)."""
    raw = password.encode("utf-8")[:VNC_PASSWORD_LEN].ljust(VNC_PASSWORD_LEN, b"\0")
    return des_encrypt(_VNC_FIXED_KEY, raw)


def des_decrypt(key8: bytes, block: bytes) -> bytes:
    decryptor = Cipher(TripleDES(key8 * 3), modes.ECB()).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def read_vnc_password(path: Path) -> str:
    """The password in an rfbauth file we wrote (a re-adopted desktop's); OSError/ValueError if
    it is not one. Never logged."""
    data = path.read_bytes()
    if len(data) != VNC_PASSWORD_LEN:
        raise ValueError("not an rfbauth file")
    return des_decrypt(_VNC_FIXED_KEY, data).rstrip(b"\0").decode("utf-8")


def xauth_entry(display_number: int, cookie: bytes) -> bytes:
    """One Xauthority record granting ``cookie`` for display N on any host (FamilyWild)."""

    def counted(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    return (
        struct.pack(">H", _XAUTH_FAMILY_WILD)
        + counted(b"")
        + counted(str(display_number).encode())
        + counted(_MIT_COOKIE)
        + counted(cookie)
    )


def write_private(path: Path, data: bytes, *, owner: tuple[int, int] | None = None) -> None:
    """Create ``path`` with mode 0600 (never following or reusing an existing file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, data)
    finally:
        os.close(fd)
