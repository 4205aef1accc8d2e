"""The teacher's authentication key on a PKCS#11 token (USB token or smart card via OpenSC;
SoftHSM2 in tests). Private keys are generated on the token and never leave it.

Attacker-controlled here: objects already on the token (certificate bytes are parsed by
cryptography and ignored when unreadable). PINs are never logged or put in error texts. Every
call blocks (PKCS#11): callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pkcs11
from cryptography import x509
from pkcs11 import Attribute, CertificateType, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)

log = logging.getLogger(__name__)


class TokenError(Exception):
    """A token problem, as one sentence the person at the keyboard can act on."""


def _load_library(module: str) -> Any:
    if not os.path.isfile(module):
        raise TokenError(f"The PKCS#11 module {module} does not exist: check --module (e.g. "
                         "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so).")
    try:
        return pkcs11.lib(module)
    except (RuntimeError, OSError, p11.PKCS11Error):
        raise TokenError(f"{module} is not a PKCS#11 library: check --module.") from None


def _find_token(lib: Any, label: str | None, slot: int | None) -> Any:
    try:
        if slot is not None:
            for s in lib.get_slots(token_present=True):
                if s.slot_id == slot:
                    return s.get_token()
            raise TokenError(f"There is no token in slot {slot}: plug your key in or check "
                             "--slot.")
        if label is not None:
            return lib.get_token(token_label=label)
        tokens = [s.get_token() for s in lib.get_slots(token_present=True)]
    except p11.NoSuchToken:
        raise TokenError(f"No token labelled {label!r} was found: plug your key in or check "
                         "--token-label.") from None
    except p11.MultipleTokensReturned:
        raise TokenError(f"Several tokens are labelled {label!r}: name one with --slot.") \
            from None
    initialised = [t for t in tokens if pkcs11.TokenFlag.TOKEN_INITIALIZED in t.flags]
    if not initialised:
        raise TokenError("No authentication key is plugged in: insert your USB key or smart "
                         "card and try again.")
    if len(initialised) > 1:
        labels = ", ".join(repr(t.label) for t in initialised)
        raise TokenError(f"Several tokens are plugged in ({labels}): name one with "
                         "--token-label.")
    return initialised[0]


@dataclass
class TokenSession:
    session: Any
    label: str

    def generate_key(self, label: str) -> tuple[bytes, bytes]:
        """A new EC P-256 key pair ON the token; returns (CKA_ID, SubjectPublicKeyInfo DER)."""
        key_id = os.urandom(16)
        params = self.session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True)
        public, _private = params.generate_keypair(
            store=True, label=label, id=key_id,
            public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
            private_template={Attribute.SIGN: True, Attribute.TOKEN: True,
                              Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                              Attribute.EXTRACTABLE: False})
        return key_id, encode_ec_public_key(public)

    def sign(self, key_id: bytes, data: bytes) -> bytes:
        """ECDSA over SHA-256(data), DER-encoded. Tokens such as SoftHSM2 offer only raw
        CKM_ECDSA, so the digest is computed here."""
        try:
            key = self.session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
            raw = key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)
        except p11.NoSuchKey:
            raise TokenError("The key is no longer on the token: ask your IT lead to issue "
                             "it again.") from None
        except p11.PKCS11Error as e:
            raise TokenError(f"The token could not sign ({type(e).__name__}): unplug it, "
                             "plug it in again and retry.") from None
        return bytes(encode_ecdsa_signature(raw))

    def store_certificate(self, key_id: bytes, cert_der: bytes, label: str) -> None:
        cert = x509.load_der_x509_certificate(cert_der)
        self.session.create_object({
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.LABEL: label,
            Attribute.ID: key_id, Attribute.VALUE: cert_der,
            Attribute.SUBJECT: cert.subject.public_bytes(),
            Attribute.ISSUER: cert.issuer.public_bytes(),
            Attribute.SERIAL_NUMBER: _der_integer(cert.serial_number),
        })

    def certificates(self) -> list[tuple[bytes, x509.Certificate]]:
        return _certificates(self.session)

    def find_identity(self) -> tuple[bytes, x509.Certificate]:
        """The key that has a certificate (the newest valid one when there are several)."""
        now = datetime.now(UTC)
        pairs = []
        for key_id, cert in self.certificates():
            try:
                self.session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
            except (p11.NoSuchKey, p11.MultipleObjectsReturned):
                continue
            pairs.append((key_id, cert))
        if not pairs:
            raise TokenError("This token holds no Staffroom key: ask your school's IT lead to "
                             "issue one.")
        valid = [p for p in pairs if p[1].not_valid_after_utc > now] or pairs
        return max(valid, key=lambda p: p[1].not_valid_before_utc)

    def delete_key(self, key_id: bytes) -> None:
        for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.CERTIFICATE):
            for obj in self.session.get_objects({Attribute.CLASS: cls, Attribute.ID: key_id}):
                obj.destroy()


def _certificates(session: Any) -> list[tuple[bytes, x509.Certificate]]:
    found = []
    for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
        try:
            found.append((bytes(obj[Attribute.ID]),
                          x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))))
        except (ValueError, p11.PKCS11Error):
            continue  # not ours or unreadable: ignore
    return found


def _der_integer(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8 or 1, "big")
    return bytes([0x02, len(body)]) + body


@contextmanager
def open_token(module: str, *, token_label: str | None = None, slot: int | None = None,
               pin: str) -> Iterator[TokenSession]:
    """Log in to the token (read-write) for the duration of the block."""
    token = _find_token(_load_library(module), token_label, slot)
    try:
        session = token.open(user_pin=pin, rw=True)
    except p11.PinIncorrect:
        raise TokenError("The PIN is wrong: try again (the token locks after a few wrong "
                         "tries).") from None
    except p11.PinLocked:
        raise TokenError("The token's PIN is locked after too many wrong tries: ask your "
                         "school's IT lead to unlock or replace it.") from None
    except (p11.PinLenRange, p11.ArgumentsBad):
        raise TokenError("The PIN is wrong: try again (the token locks after a few wrong "
                         "tries).") from None
    except p11.UserPinNotInitialized:
        raise TokenError("This token has no user PIN yet: ask your IT lead to initialise "
                         "it.") from None
    except p11.PKCS11Error as e:
        raise TokenError(f"The token could not be opened ({type(e).__name__}): unplug it, "
                         "plug it in again and retry.") from None
    with session:
        yield TokenSession(session, token.label)


def read_certificates(module: str, *, token_label: str | None = None,
                      slot: int | None = None) -> list[x509.Certificate]:
    """Certificates on the token, read without the PIN (they are public objects)."""
    token = _find_token(_load_library(module), token_label, slot)
    try:
        with token.open() as session:
            return [cert for _, cert in _certificates(session)]
    except p11.PKCS11Error as e:
        raise TokenError(f"The token could not be read ({type(e).__name__}): unplug it, plug "
                         "it in again and retry.") from None
