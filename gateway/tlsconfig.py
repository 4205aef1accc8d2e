"""TLS settings for the gateway, after Mozilla's "intermediate" profile: TLS 1.2 and 1.3, ECDHE
with AES-GCM or ChaCha20-Poly1305, key exchange on X25519, P-256 and P-384 only (no X448,
no P-521, no finite-field groups), no compression, no renegotiation.

Python's ssl module (3.11) can name one ECDH curve but not a list of groups, so the list is set
with OpenSSL's own SSL_CTX_set1_groups_list through ctypes, on the SSL_CTX the SSLContext wraps;
if that is impossible the context keeps a single curve (P-256), which is still within the
profile. tests/core/test_tlsconfig.py checks the offer with a real handshake.
"""

from __future__ import annotations

import ctypes
import logging
import ssl
from pathlib import Path

log = logging.getLogger(__name__)

GROUPS = "X25519:P-256:P-384"
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
_SSL_CTRL_SET_GROUPS_LIST = 92  # SSL_CTX_set1_groups_list() is this SSL_CTX_ctrl() call


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if not set_groups(ctx, GROUPS):
        log.warning("could not set the TLS groups list; offering P-256 only")
        ctx.set_ecdh_curve("prime256v1")
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def set_groups(ctx: ssl.SSLContext, groups: str) -> bool:
    """Restrict the key-exchange groups of `ctx`; False when this Python/OpenSSL cannot."""
    try:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)
        ctrl = lib.SSL_CTX_ctrl
    except (OSError, AttributeError, ImportError):
        return False
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    ctrl.restype = ctypes.c_long
    # CPython's PySSLContext starts with PyObject_HEAD, then the SSL_CTX pointer.
    ssl_ctx = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ssl_ctx:
        return False
    return bool(ctrl(ssl_ctx, _SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode()) == 1)
