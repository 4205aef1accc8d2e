"""Login throttles (pure): per address, per account at an address, per account across
addresses; Retry-After, one audit per burst, bounded memory."""

from __future__ import annotations

from gateway.auth.throttle import LoginLimits, LoginThrottle


def test_an_address_gets_a_burst_then_one_attempt_every_few_seconds() -> None:
    t = LoginThrottle(LoginLimits(address_burst=3, address_every=2.0))
    assert all(t.check("10.0.0.1", f"u{i}", 100.0).allowed for i in range(3))
    refused = t.check("10.0.0.1", "u9", 100.0)
    assert not refused.allowed and refused.code == "too-many-attempts"
    assert refused.retry_after == 2 and refused.scope == "address"
    assert "wait 2 seconds" in refused.reason
    assert t.check("10.0.0.2", "u9", 100.0).allowed  # another address is not affected
    assert t.check("10.0.0.1", "u9", 102.0).allowed


def test_refusals_are_audited_once_per_burst() -> None:
    t = LoginThrottle(LoginLimits(address_burst=1, address_every=10.0))
    assert t.check("a", "u", 0.0).allowed
    firsts = [t.check("a", "u", 0.1 * i).new_burst for i in range(1, 50)]
    assert firsts[0] and not any(firsts[1:])
    assert t.check("a", "u", 11.0).allowed  # allowed again: the burst is over
    assert t.check("a", "u", 11.1).new_burst  # the next refusal opens a new one


def test_failures_lock_the_account_only_at_that_address() -> None:
    t = LoginThrottle(LoginLimits(address_burst=100, pair_failures=5, lock_for=900.0))
    for i in range(5):
        assert t.check("203.0.113.9", "admin", float(i)).allowed
        locked = t.failed("203.0.113.9", "admin", float(i))
    assert locked
    v = t.check("203.0.113.9", "admin", 10.0)
    assert not v.allowed and v.code == "locked" and v.scope == "account-address"
    assert 880 <= v.retry_after <= 900 and "15 minutes" in v.reason
    # The admin at the office is not locked out by the stranger.
    assert t.check("198.51.100.7", "admin", 10.0).allowed
    assert t.check("203.0.113.9", "admin", 905.0).allowed  # and the lock expires


def test_spread_out_guessing_is_refused_except_from_the_owners_known_address() -> None:
    t = LoginThrottle(LoginLimits(address_burst=100, pair_failures=5, account_failures=10,
                                  lock_for=900.0))
    t.succeeded("198.51.100.7", "s.sato", 0.0)  # the teacher's home
    for i in range(10):
        assert t.check(f"203.0.113.{i}", "s.sato", 1.0).allowed
        t.failed(f"203.0.113.{i}", "s.sato", 1.0)
    v = t.check("203.0.113.200", "s.sato", 2.0)
    assert not v.allowed and v.scope == "account"
    assert t.check("198.51.100.7", "s.sato", 2.0).allowed
    assert t.check("203.0.113.200", "k.kato", 2.0).allowed  # other accounts are not affected


def test_a_success_clears_the_failures_at_that_address() -> None:
    t = LoginThrottle(LoginLimits(pair_failures=3))
    t.failed("a", "u", 0.0)
    t.failed("a", "u", 0.0)
    t.succeeded("a", "u", 1.0)
    assert not t.failed("a", "u", 2.0) and not t.failed("a", "u", 2.0)


def test_tables_are_bounded_under_a_flood_of_names_and_addresses() -> None:
    t = LoginThrottle(LoginLimits(max_keys=100))
    for i in range(5000):
        t.check(f"10.{i // 250}.{i % 250}.1", f"user{i}", 0.0)
        t.failed(f"10.{i // 250}.{i % 250}.1", f"user{i}", 0.0)
    assert max(len(t._buckets), len(t._pairs), len(t._accounts), len(t._refusing)) <= 100


def test_successful_logins_do_not_use_up_the_address_allowance() -> None:
    t = LoginThrottle(LoginLimits(address_burst=3, address_every=60.0))
    for i in range(30):  # a staff room behind one NAT, all signing in
        assert t.check("192.0.2.1", f"teacher{i}", 0.0).allowed
        t.succeeded("192.0.2.1", f"teacher{i}", 0.0)
    for _ in range(3):
        assert t.check("192.0.2.1", "guess", 0.0).allowed
        t.failed("192.0.2.1", "guess", 0.0)
    assert not t.check("192.0.2.1", "guess", 0.0).allowed


def test_a_password_reset_unlocks_the_account_everywhere() -> None:
    t = LoginThrottle(LoginLimits(pair_failures=2))
    t.failed("a", "u", 0.0)
    assert t.failed("a", "u", 0.0)
    assert not t.check("a", "u", 1.0).allowed
    t.forget("u")
    assert t.check("a", "u", 1.0).allowed
