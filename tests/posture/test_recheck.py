"""In-session posture re-checks: the wire message (gateway.wire.recheck) and the gateway's
decisions on each report and on the clock (gateway.live.posture_watch), with real ECDSA keys."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from gateway.live.posture_watch import MISSING_FIX, Audit, Clear, End, PostureWatch, Warn
from gateway.wire import recheck
from gateway.wire.posture import PosturePolicy
from tests.posture.helpers import NOW, av, report

BINDING = b"\x11" * 32
FRESH = report(av()).to_json()
STALE = report(av(age=timedelta(days=9))).to_json()


def policy(**kw: object) -> PosturePolicy:
    base: dict[str, object] = {"recheck_every": timedelta(seconds=60),
                               "fail_grace": timedelta(seconds=300)}
    return PosturePolicy(**{**base, **kw})  # type: ignore[arg-type]


# --- the wire message ------------------------------------------------------------------------

def test_round_trip() -> None:
    u = recheck.PostureUpdate(7, FRESH, b"\x30\x44sig", "changed")
    assert recheck.decode(recheck.encode(u)) == u


@pytest.mark.parametrize(("text", "fragment"), [
    (b'{"type":"posture"}', "text frame"),
    ("x" * (recheck.MAX_MESSAGE + 1), "too large"),
    ("[" * 16000 + "]" * 16000, "not JSON"),
    ('{"type":"hello"}', "not a posture report"),
    ('{"type":"posture","seq":0,"reason":"interval","posture":{},"signature":""}', "seq"),
    ('{"type":"posture","seq":true,"reason":"interval","posture":{},"signature":""}', "seq"),
    ('{"type":"posture","seq":1,"reason":"interval","posture":[],"signature":""}', "object"),
    ('{"type":"posture","seq":1,"reason":"because","posture":{},"signature":""}', "reason"),
    ('{"type":"posture","seq":1,"reason":"interval","posture":{},"signature":"!!"}', "base64"),
])
def test_malformed_reports_are_protocol_errors(text: str | bytes, fragment: str) -> None:
    with pytest.raises(recheck.RecheckProtocolError, match=fragment):
        recheck.decode(text)


@given(st.text(max_size=300))
def test_any_text_decodes_or_fails_cleanly(text: str) -> None:
    with contextlib.suppress(recheck.RecheckProtocolError):
        recheck.decode(text)


def test_transcript_binds_session_seq_tls_and_report() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = recheck.transcript("s1", 3, BINDING, FRESH)
    sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(sig, data, ec.ECDSA(hashes.SHA256()))
    for other in (recheck.transcript("s2", 3, BINDING, FRESH),
                  recheck.transcript("s1", 4, BINDING, FRESH),
                  recheck.transcript("s1", 3, b"\x22" * 32, FRESH),
                  recheck.transcript("s1", 3, BINDING, STALE)):
        with pytest.raises(InvalidSignature):
            key.public_key().verify(sig, other, ec.ECDSA(hashes.SHA256()))


def test_jitter_spreads_reports_and_overdue_allows_for_it() -> None:
    delays = [recheck.next_delay(900, u / 100) for u in range(100)]
    assert min(delays) == 675 and max(delays) < 900
    assert recheck.overdue_after(900) > 900


def test_antivirus_state_ignores_collection_time() -> None:
    later = {**FRESH, "collected_at": "2026-11-25T09:30:00+00:00"}
    assert recheck.antivirus_state(later) == recheck.antivirus_state(FRESH)
    assert recheck.antivirus_state(STALE) != recheck.antivirus_state(FRESH)


# --- the gateway's decisions -----------------------------------------------------------------

def feed(w: PostureWatch, seq: int, posture: dict[str, object], now: float,
         verified: bool = True) -> list[object]:
    return list(w.report(seq=seq, verified=verified, posture=posture, reason="interval",
                         now=now, wall=NOW))


def test_a_passing_report_is_audited_ok() -> None:
    w = PostureWatch(policy(), last_report=0.0)
    assert feed(w, 1, FRESH, 50.0) == [Audit("ok", {"seq": 1, "reason": "interval"})]
    assert w.tick(100.0) == []


def test_forged_and_replayed_reports_are_refused_and_do_not_count() -> None:
    w = PostureWatch(policy(), last_report=0.0)
    assert feed(w, 1, FRESH, 10.0, verified=False) == [
        Audit("refused", {"seq": 1, "error": "bad-signature"})]
    assert feed(w, 2, FRESH, 20.0) == [Audit("ok", {"seq": 2, "reason": "interval"})]
    for seq in (2, 1):
        assert feed(w, seq, FRESH, 30.0) == [
            Audit("refused", {"seq": seq, "error": "replayed", "last_seq": 2})]
    # Refused reports are no reports: the last good one (t=20) is what the clock counts from.
    assert w.tick(20 + recheck.overdue_after(60) + 1)[0] == Audit(
        "missing", {"code": "no-report", "last_seq": 2, "seconds": 81})


def test_stale_definitions_warn_then_end_after_the_grace() -> None:
    w = PostureWatch(policy(recheck_every=timedelta(hours=1)), last_report=0.0)
    actions = feed(w, 1, STALE, 100.0)
    assert isinstance(actions[0], Audit) and actions[0].outcome == "failed"
    assert actions[0].details["code"] == "definitions-stale"
    warn = actions[1]
    assert isinstance(warn, Warn) and warn.seconds_left == 300
    assert "9 days old" in warn.text and "freshclam" in warn.text
    assert warn.text.endswith("Otherwise the session ends in 5 minutes.")
    # The banner's countdown is refreshed every 30 s (a reloaded page gets it back too).
    assert w.tick(120.0) == []
    again = w.tick(130.0)
    assert len(again) == 1 and isinstance(again[0], Warn) and again[0].seconds_left == 270
    assert again[0].text.endswith("Otherwise the session ends in 4 minutes 30 seconds.")
    w.tick(370.0)
    assert w.tick(399.0) == []
    end = w.tick(400.0)
    assert len(end) == 1 and isinstance(end[0], End)
    assert "failed the security check" in end[0].text and "9 days old" in end[0].text


def test_a_fix_within_the_grace_clears_the_warning() -> None:
    w = PostureWatch(policy(recheck_every=timedelta(hours=1)), last_report=0.0)
    feed(w, 1, STALE, 100.0)
    actions = feed(w, 2, FRESH, 200.0)
    assert actions[0] == Audit("ok", {"seq": 2, "reason": "interval"})
    assert isinstance(actions[1], Clear)
    assert w.tick(500.0) == []


def test_warn_only_policy_never_ends_and_warns_once_per_problem() -> None:
    w = PostureWatch(policy(on_fail="warn"), last_report=0.0)
    first = feed(w, 1, STALE, 100.0)
    assert isinstance(first[1], Warn) and first[1].seconds_left is None
    assert feed(w, 2, STALE, 160.0)[1:] == []
    assert w.tick(10_000.0)[1:] == [Warn(MISSING_FIX, None)]
    assert w.tick(20_000.0) == []


def test_an_agent_that_stops_reporting_is_warned_then_ended() -> None:
    w = PostureWatch(policy(), last_report=0.0)
    due = recheck.overdue_after(60)
    assert w.tick(due) == []
    actions = w.tick(due + 1)
    assert actions[0] == Audit("missing", {"code": "no-report", "last_seq": 0,
                                           "seconds": int(due + 1)})
    assert isinstance(actions[1], Warn) and MISSING_FIX in actions[1].text
    assert w.tick(due + 2) == []  # not again before the countdown refresh
    assert isinstance(w.tick(due + 1 + 300)[0], End)


def test_a_resume_counts_as_a_report() -> None:
    w = PostureWatch(policy(), last_report=0.0)
    w.resumed(70.0)
    assert w.tick(70 + recheck.overdue_after(60) - 1) == []


def test_an_unreadable_report_fails_like_a_bad_one() -> None:
    w = PostureWatch(policy(), last_report=0.0)
    actions = feed(w, 1, {"os": "amiga"}, 5.0)
    assert isinstance(actions[0], Audit) and actions[0].details["code"] == "bad-posture"
    assert isinstance(actions[1], Warn)


def test_policy_refuses_an_unknown_on_fail() -> None:
    with pytest.raises(ValueError, match="on_fail"):
        policy(on_fail="shrug")


def test_signature_field_is_strict_base64() -> None:
    body = {"type": "posture", "seq": 1, "reason": "interval", "posture": {},
            "signature": base64.b64encode(b"x" * 400).decode()}
    with pytest.raises(recheck.RecheckProtocolError):
        recheck.decode(json.dumps(body))


# --- the gateway's signature check of a session's re-checks ----------------------------------

def _certificate(key: ec.EllipticCurvePrivateKey) -> bytes:
    from datetime import UTC, datetime

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t.sato")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def test_the_broker_verifies_with_the_logins_certificate_and_binding() -> None:
    from types import SimpleNamespace

    from gateway.live.broker import SessionBroker

    key = ec.generate_private_key(ec.SECP256R1())
    ctx = SimpleNamespace(extras={"tls_end_point": BINDING}, store=None, node="local")
    verify = SessionBroker(ctx, None)._posture_verifier(_certificate(key), "s1")  # type: ignore

    def signed(session: str, seq: int, binding: bytes, posture: dict[str, object],
               signer: ec.EllipticCurvePrivateKey = key) -> bytes:
        return signer.sign(recheck.transcript(session, seq, binding, posture),
                           ec.ECDSA(hashes.SHA256()))

    assert verify(1, FRESH, signed("s1", 1, BINDING, FRESH))
    assert not verify(2, FRESH, signed("s1", 1, BINDING, FRESH))  # moved to another seq
    assert not verify(1, FRESH, signed("s2", 1, BINDING, FRESH))  # from another session
    assert not verify(1, FRESH, signed("s1", 1, b"\x22" * 32, FRESH))  # through another TLS end
    assert not verify(1, STALE, signed("s1", 1, BINDING, FRESH))  # the report swapped
    other = ec.generate_private_key(ec.SECP256R1())
    assert not verify(1, FRESH, signed("s1", 1, BINDING, FRESH, other))  # not the token's key
    assert not verify(1, FRESH, b"\x30\x00")  # not even a signature
