"""The teacher's authentication key on a PKCS#11 token (USB token or smart card through OpenSC;
SoftHSM2 in tests). Keys are generated ON the token, sensitive and never extractable.

Attacker-controlled here: the module path (must be an existing file) and everything already on
the token (certificates are parsed by cryptography, bounded to 64 objects / 16 KiB each, and
skipped when unreadable). PINs never reach a log line or an error text. Every call blocks
(PKCS#11): asyncio callers run them in an executor, one thread per Token at a time.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, CertificateType, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature
from pkcs11.util.ec import encode_named_curve_parameters as curve_params

log = logging.getLogger(__name__)

MAX_OBJECTS = 64  # certificates looked at on one token
MAX_CERT_BYTES = 16 * 1024
MAX_PIN_CHARS = 256
WRONG_PIN = "The PIN is wrong: try again (the token locks after a few wrong tries)."
LOCKED = ("The token's PIN is locked after too many wrong tries: ask your school's IT lead to "
          "unlock or replace it.")


class TokenError(Exception):
    """A token problem, as one sentence the person at the keyboard can act on."""


# --- the library: loaded once per path, finalised when the last user is done -----------------
# C_Initialize reads the module's configuration (SOFTHSM2_CONF, OpenSC's reader list) and sees
# newly plugged tokens only after C_Finalize, so each use initialises afresh.
_libs_lock = threading.Lock()
_lib_users: dict[str, int] = {}


@contextmanager
def _library(module: str) -> Iterator[Any]:
    if not os.path.isfile(module):
        raise TokenError(f"The PKCS#11 module {module} does not exist: check --module (e.g. "
                         "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so).")
    with _libs_lock:
        try:
            lib = pkcs11.lib(module)
        except (p11.PKCS11Error, OSError):
            raise TokenError(f"{module} is not a PKCS#11 library: check --module (e.g. "
                             "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so).") from None
        _lib_users[module] = _lib_users.get(module, 0) + 1
    try:
        yield lib
    finally:
        with _libs_lock:
            _lib_users[module] -= 1
            if not _lib_users[module]:
                try:
                    lib.finalize()  # also closes sessions a failed C_Login left open
                except p11.PKCS11Error:
                    log.warning("C_Finalize failed for %s", module)


def _slot_token(lib: Any, slot: int) -> Any:
    for s in lib.get_slots():
        if s.slot_id == slot:
            try:
                return s.get_token()
            except (p11.TokenNotPresent, p11.TokenNotRecognised):
                break
    raise TokenError(f"There is no token in slot {slot}: plug your key in or check --slot.")


def _find_token(lib: Any, label: str | None, slot: int | None) -> Any:
    try:
        if slot is not None:
            token = _slot_token(lib, slot)
        elif label is not None:
            token = lib.get_token(token_label=label)
        else:
            present = [s.get_token() for s in lib.get_slots(token_present=True)]
            ready = [t for t in present if pkcs11.TokenFlag.TOKEN_INITIALIZED in t.flags]
            if len(ready) > 1:
                labels = ", ".join(repr(t.label) for t in ready)
                raise TokenError(f"Several tokens are plugged in ({labels}): name one with "
                                 "--token-label.")
            if not ready:
                raise TokenError("No token is plugged in: insert your USB key or smart card "
                                 "and try again." if not present else "The token is not "
                                 "initialised: ask your school's IT lead to set it up.")
            token = ready[0]
    except p11.NoSuchToken:
        raise TokenError(f"No token labelled {label!r} was found: plug your key in or check "
                         "--token-label.") from None
    except p11.MultipleTokensReturned:
        raise TokenError(f"Several tokens are labelled {label!r}: name one with --slot.") \
            from None
    except p11.PKCS11Error as e:
        raise TokenError(f"The token reader did not answer ({type(e).__name__}): unplug the "
                         "key, plug it in again and retry.") from None
    if pkcs11.TokenFlag.TOKEN_INITIALIZED not in token.flags:
        raise TokenError("The token is not initialised: ask your school's IT lead to set it up.")
    return token


def _login(token: Any, pin: str) -> Any:
    if not pin:
        raise TokenError("No PIN was given: type the PIN of your authentication key.")
    if len(pin) > MAX_PIN_CHARS:
        raise TokenError(WRONG_PIN)
    if pkcs11.TokenFlag.USER_PIN_LOCKED in token.flags:
        raise TokenError(LOCKED)  # do not spend a try the token would refuse anyway
    try:
        return token.open(user_pin=pin, rw=True)
    except (p11.PinIncorrect, p11.PinLenRange, p11.PinInvalid):
        raise TokenError(WRONG_PIN) from None
    except p11.PinLocked:
        raise TokenError(LOCKED) from None
    except p11.PinExpired:
        raise TokenError("The token's PIN has expired: change it with your token's tool "
                         "(e.g. pkcs11-tool --change-pin) and try again.") from None
    except p11.UserPinNotInitialized:
        raise TokenError("This token has no user PIN yet: ask your school's IT lead to "
                         "initialise it.") from None
    except p11.TokenWriteProtected:
        raise TokenError("The token is write-protected: use a token that can store keys.") \
            from None
    except p11.PKCS11Error as e:
        raise TokenError(f"The token could not be opened ({type(e).__name__}): unplug it, "
                         "plug it in again and retry.") from None


@contextmanager
def open_token(module: str, *, token_label: str | None = None, slot: int | None = None,
               pin: str) -> Iterator[Token]:
    """Logs in to the token (read-write session) for the duration of the `with` block. Name it
    by label or slot number; with neither, the only initialised token present is used."""
    with _library(module) as lib:
        token = _find_token(lib, token_label, slot)
        session = _login(token, pin)
        try:
            yield Token(session, token.label, token.slot.slot_id)
        finally:
            try:
                session.close()
            except p11.PKCS11Error:
                log.warning("closing the token session failed")


def read_certificates(module: str, *, token_label: str | None = None,
                      slot: int | None = None) -> list[x509.Certificate]:
    """The certificates on the token, read without the PIN (they are public objects)."""
    with _library(module) as lib:
        token = _find_token(lib, token_label, slot)
        try:
            with token.open() as session:
                return [cert for _, cert in _certificates(session)]
        except p11.PKCS11Error as e:
            raise TokenError(f"The token could not be read ({type(e).__name__}): unplug it, "
                             "plug it in again and retry.") from None


def _certificates(session: Any) -> list[tuple[bytes, x509.Certificate]]:
    found = []
    try:
        objects = list(itertools.islice(
            session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}), MAX_OBJECTS))
    except p11.PKCS11Error as e:
        raise TokenError(f"The token's certificates could not be listed ({type(e).__name__}): "
                         "unplug it, plug it in again and retry.") from None
    for obj in objects:
        try:
            value = bytes(obj[Attribute.VALUE])
            if len(value) <= MAX_CERT_BYTES:
                found.append((bytes(obj[Attribute.ID]), x509.load_der_x509_certificate(value)))
        except (ValueError, p11.PKCS11Error):
            continue  # not an X.509 certificate we can read: not ours
    return found


def _der_integer(value: int) -> bytes:
    """DER INTEGER (CKA_SERIAL_NUMBER holds the DER encoding of the serial)."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + \
        n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x02" + length + body


@dataclass(frozen=True, slots=True)
class Token:
    """A logged-in session on one token (from open_token). Not for concurrent threads."""

    session: Any
    label: str
    slot: int

    def _private_key(self, key_id: bytes) -> Any:
        try:
            return self.session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
        except p11.NoSuchKey:
            raise TokenError("The key is no longer on the token: ask your school's IT lead to "
                             "issue it again.") from None
        except p11.MultipleObjectsReturned:
            raise TokenError("The token holds several keys with the same id: ask your "
                             "school's IT lead to clean it up.") from None

    def _public_key(self, key_id: bytes) -> ec.EllipticCurvePublicKey:
        try:
            obj = self.session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=key_id)
            key = serialization.load_der_public_key(encode_ec_public_key(obj))
        except (p11.PKCS11Error, ValueError):
            raise TokenError("The token has no readable public key next to this key: issue "
                             "the key again.") from None
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key

    def generate_key(self, label: str) -> tuple[bytes, bytes]:
        """A new EC P-256 key pair ON the token; returns (CKA_ID, SubjectPublicKeyInfo DER)."""
        key_id = os.urandom(16)
        try:
            params = self.session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: curve_params("secp256r1")}, local=True)
            public, private = params.generate_keypair(
                store=True, label=label, id=key_id,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={Attribute.TOKEN: True, Attribute.PRIVATE: False},
                private_template={Attribute.TOKEN: True, Attribute.PRIVATE: True,
                                  Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                  Attribute.SIGN: True, Attribute.DERIVE: False})
        except p11.PKCS11Error as e:
            raise TokenError(f"The token could not generate an EC P-256 key "
                             f"({type(e).__name__}): it may be full or not support EC keys."
                             ) from None
        # A token that ignored the template would hand out a copyable key: refuse it.
        if not _kept_inside(private):
            self.delete_key(key_id)
            raise TokenError("The token made the new key extractable: use a token that keeps "
                             "keys inside.")
        spki = encode_ec_public_key(public)
        log.info("generated EC P-256 key %s on token %r", key_id.hex(), self.label)
        return key_id, bytes(spki)

    def sign(self, key_id: bytes, data: bytes) -> bytes:
        """ECDSA over SHA-256(data), DER-encoded. Tokens such as SoftHSM2 offer only raw
        CKM_ECDSA, so the digest is computed here and r||s re-encoded as DER."""
        key = self._private_key(key_id)
        try:
            raw = key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)
        except p11.PKCS11Error as e:
            raise TokenError(f"The token could not sign ({type(e).__name__}): unplug it, plug "
                             "it in again and retry.") from None
        return bytes(encode_ecdsa_signature(raw))

    def store_certificate(self, key_id: bytes, cert_der: bytes, label: str) -> None:
        """Writes the X.509 certificate next to its key (same CKA_ID); refuses a certificate
        for another key."""
        cert = x509.load_der_x509_certificate(cert_der)
        if cert.public_key() != self._public_key(key_id):
            raise TokenError("This certificate is for another key: it was not stored.")
        try:
            self.session.create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.LABEL: label,
                Attribute.ID: key_id, Attribute.VALUE: cert_der,
                Attribute.SUBJECT: cert.subject.public_bytes(),
                Attribute.ISSUER: cert.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: _der_integer(cert.serial_number),
            })
        except p11.PKCS11Error as e:
            raise TokenError(f"The token could not store the certificate ({type(e).__name__})"
                             ": it may be full.") from None

    def certificates(self) -> list[tuple[bytes, x509.Certificate]]:
        """(CKA_ID, certificate) of every readable X.509 certificate on the token."""
        return _certificates(self.session)

    def find_identity(self, now: datetime | None = None) -> tuple[bytes, x509.Certificate]:
        """The key that has a certificate: the newest valid one when there are several."""
        now = now or datetime.now(UTC)
        pairs = []
        for key_id, cert in self.certificates():
            if list(self.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                              Attribute.ID: key_id})):
                pairs.append((key_id, cert))
        if not pairs:
            raise TokenError("This token holds no Staffroom key: ask your school's IT lead to "
                             "issue one.")
        valid = [p for p in pairs if p[1].not_valid_before_utc <= now <= p[1].not_valid_after_utc]
        if not valid and all(p[1].not_valid_after_utc < now for p in pairs):
            newest = max(p[1].not_valid_after_utc for p in pairs)
            raise TokenError(f"The key on this token expired on {newest:%Y-%m-%d}: ask your "
                             "school's IT lead for a new one.")
        # Not yet valid here may be this PC's clock: let the gateway judge.
        return max(valid or pairs, key=lambda p: p[1].not_valid_before_utc)

    def delete_key(self, key_id: bytes) -> None:
        """Removes the key pair and its certificate (cleanup after a failed issue)."""
        try:
            for cls in (ObjectClass.CERTIFICATE, ObjectClass.PUBLIC_KEY,
                        ObjectClass.PRIVATE_KEY):
                for obj in list(self.session.get_objects({Attribute.CLASS: cls,
                                                          Attribute.ID: key_id})):
                    obj.destroy()
        except p11.PKCS11Error as e:
            raise TokenError(f"The key could not be removed from the token ({type(e).__name__})"
                             ": ask your school's IT lead to clean it up.") from None


def _kept_inside(private: Any) -> bool:
    """CKA_SENSITIVE set and CKA_EXTRACTABLE clear; CKA_NEVER_EXTRACTABLE too where the token
    reports it (a few older tokens cannot)."""
    if not private[Attribute.SENSITIVE] or private[Attribute.EXTRACTABLE]:
        return False
    try:
        return bool(private[Attribute.NEVER_EXTRACTABLE])
    except (p11.AttributeTypeInvalid, p11.FunctionFailed):
        return True
