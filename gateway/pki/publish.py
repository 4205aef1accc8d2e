"""Publishes the school CA's CRL from the revocations in the state database."""

from __future__ import annotations

import os
from datetime import timedelta

from cryptography.hazmat.primitives.serialization import Encoding

from gateway.context import GatewayContext
from gateway.pki.crl import Revoked

CRL_PATH = "/crl/school-ca.crl"
CRL_LIFETIME = timedelta(days=7)


def publish_crl(ctx: GatewayContext) -> bytes:
    """Build, sign and atomically write a fresh CRL; returns it as PEM."""
    now = ctx.clock()
    revoked = [
        Revoked(int(c.serial, 16), c.revoked_at, c.revoke_reason or "unspecified")
        for c in ctx.store.list_certs()
        if c.revoked_at is not None
    ]
    crl = ctx.ca.build_crl(
        revoked, now=now, next_update=now + CRL_LIFETIME, crl_number=ctx.store.next_crl_number()
    )
    pem = crl.public_bytes(Encoding.PEM)
    tmp = ctx.data.crl.with_suffix(".tmp")
    tmp.write_bytes(pem)
    os.replace(tmp, ctx.data.crl)
    return pem
