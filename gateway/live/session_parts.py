"""What a new session is made of, from its policy and its login: the watermark, the title the
viewer shows, the time limits, the check of its posture re-checks' signatures and the welcome.

Attacker-controlled here: each posture re-check's report and signature (from the agent, framed
and bounded by gateway.wire.recheck): the signature must verify with the key of the login's
certificate over a transcript binding the session, the sequence number and the gateway's TLS
certificate; anything else (another key type, a bad signature) is refused, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.display.watermark import Watermark
from gateway.live.session_machine import Limits
from gateway.store.base import User
from gateway.wire import recheck
from gateway.wire.login import Welcome

if TYPE_CHECKING:
    from gateway.live.session import LiveSession


def _seconds(value: Any, default: float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else default


def session_limits(session_policy: Any) -> Limits:
    """The policy's [session] clocks in seconds (defaults: 15 min idle, 8 h, 45 s grace)."""
    s = session_policy
    return Limits(_seconds(s.idle_timeout, 900), _seconds(s.max_duration, 28800),
                  _seconds(s.reconnect_grace, 45))


def window_title(user: User) -> str:
    return f"Staffroom — {user.name}" + (f" ({user.school})" if user.school else "")


def watermark_for(policy: Any, user: User, session_id: str) -> Watermark | None:
    w = policy.watermark
    if not w.enabled:
        return None
    template = w.template.replace("{datetime}", "{time}")
    return Watermark(template, {"user": user.id, "name": user.name,
                                "school": user.school or "", "session": session_id},
                     opacity=w.opacity)


def posture_verifier(certificate_der: bytes, session_id: str,
                     binding: bytes) -> Callable[[int, dict[str, Any], bytes], bool]:
    """The token-signature check of a session's re-checks (the login's certificate; ``binding``:
    the gateway's TLS certificate hash, gateway.live.tunnel.server_cert_hash)."""
    key = x509.load_der_x509_certificate(certificate_der).public_key()

    def verify(seq: int, posture: dict[str, Any], signature: bytes) -> bool:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        try:
            key.verify(signature, recheck.transcript(session_id, seq, binding, posture),
                       ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True
    return verify


def welcome(session: LiveSession, policy: Any, *, resumed: bool, resume_token: str) -> Welcome:
    """The login's answer: the session, what the policy turns off, its clocks, the resume
    secret."""
    r = policy.redirection
    disabled = [k for k in ("printing", "drives", "devices", "file_transfer", "audio")
                if not getattr(r, k)]
    if r.clipboard == "off":
        disabled.append("clipboard")
    return Welcome(session=session.id, user=session.user_id, name=session.name,
                   school=session.school, resumed=resumed, policy={
                       "disabled": disabled, "clipboard": r.clipboard,
                       "watermark": bool(policy.watermark.enabled),
                       "reconnect_grace_seconds": session.limits.reconnect_grace,
                       "idle_timeout_seconds": session.limits.idle_timeout,
                       "max_duration_seconds": session.limits.max_duration,
                       "posture_recheck_seconds":
                           policy.posture.recheck_every.total_seconds()},
                   resume_token=resume_token)
