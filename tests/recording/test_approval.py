"""Two-person replay, the pure rules and the store: nobody decides their own request, a decision
is final, an approval covers one recording for one requester until it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.recording import approval
from gateway.store.base import Conflict, ReplayRequest
from tests.fixtures.stores import StoreBackend

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def ask(requester: str = "sec.a", purpose: str = "replay", rec: str = "rec-1") -> ReplayRequest:
    return approval.new_request(rec, "t.sato", "kita-es", requester, purpose,
                                "Complaint 2026-14 from the parents' association", NOW)


def test_a_request_needs_a_real_reason_and_a_known_purpose() -> None:
    r = ask()
    assert r.id.startswith("rr-") and r.status == "pending" and r.expires_at is None
    with pytest.raises(approval.ApprovalError, match="reason of 5-300"):
        approval.new_request("rec-1", "t", None, "sec.a", "replay", "  x  ", NOW)
    with pytest.raises(approval.ApprovalError, match="reason"):
        approval.new_request("rec-1", "t", None, "sec.a", "replay", "line\x00break", NOW)
    with pytest.raises(approval.ApprovalError, match="purpose"):
        approval.new_request("rec-1", "t", None, "sec.a", "delete", "a good reason", NOW)


def test_nobody_decides_their_own_request_and_a_decision_is_final() -> None:
    r = ask()
    with pytest.raises(approval.ApprovalError, match="your own request"):
        approval.decide(r, "sec.a", True, NOW, HOUR)
    ok = approval.decide(r, "sec.b", True, NOW, HOUR, "  case   file 14 ")
    assert (ok.status, ok.decided_by, ok.expires_at, ok.decision_note) == (
        "approved", "sec.b", NOW + HOUR, "case file 14")
    with pytest.raises(approval.ApprovalError, match="already been approved"):
        approval.decide(ok, "sec.c", False, NOW, HOUR)
    no = approval.decide(r, "sec.b", False, NOW, HOUR)
    assert no.status == "declined" and no.expires_at is None


def test_access_follows_the_policy_and_the_approval() -> None:
    assert approval.access(False, None, "replay").allowed
    refused = approval.access(True, None, "export")
    assert not refused.allowed and "exported only with a second officer" in refused.reason
    granted = approval.decide(ask(), "sec.b", True, NOW, HOUR)
    assert approval.access(True, granted, "replay") == approval.Access(True, granted.id)
    assert approval.state(granted, NOW + HOUR / 2) == "approved"
    assert approval.state(granted, NOW + HOUR) == "expired"
    assert approval.COVERS["replay"] == ("replay", "export")
    assert approval.COVERS["export"] == ("export",)


def test_the_store_finds_only_the_requesters_unexpired_approval(
        store_backend: StoreBackend) -> None:
    store = store_backend.open()
    try:
        replay, export, other = ask(), ask(purpose="export"), ask(rec="rec-2")
        for r in (replay, export, other):
            store.add_replay_request(r)
        assert store.find_approval("rec-1", "sec.a", ("replay", "export"), NOW) is None
        store.decide_replay_request(approval.decide(replay, "sec.b", True, NOW, HOUR))
        with pytest.raises(Conflict):
            store.decide_replay_request(approval.decide(replay, "sec.c", False, NOW, HOUR))
        found = store.find_approval("rec-1", "sec.a", ("replay", "export"), NOW + HOUR / 2)
        assert found is not None and found.id == replay.id and found.decided_by == "sec.b"
        assert store.find_approval("rec-1", "sec.a", ("export",), NOW) is None  # replay only
        assert store.find_approval("rec-1", "sec.b", ("replay", "export"), NOW) is None
        assert store.find_approval("rec-2", "sec.a", ("replay", "export"), NOW) is None
        assert store.find_approval("rec-1", "sec.a", ("replay",), NOW + HOUR) is None  # expired
        assert {r.id for r in store.list_replay_requests("kita-es")} == {
            replay.id, export.id, other.id}
        assert store.list_replay_requests("minami-es") == []
        assert store.get_replay_request(export.id) == export
    finally:
        store.close()
