"""Login throttles for every login path (API, console, tunnel): per address, per account at
one address, and per account across addresses (pure: `now` in seconds is passed in).

Attacker-controlled here: the source address (one per TCP peer) and the account name asked for
(any string up to 64 characters). Limits: every table is bounded (`max_keys`, oldest entries
dropped first), so a flood of made-up names or addresses costs fixed memory.

Rules (LoginLimits holds the numbers):
- an address gets a burst of attempts, then one every `address_every` seconds (a successful
  login gives its attempt back, so only failures use the allowance up);
- `pair_failures` failures for one account from one address lock that pair for `lock_for`:
  a stranger locks only themselves out, never the teacher at home;
- `account_failures` failures for one account across all addresses within `lock_for` (a
  spread-out guess) refuse further tries for that account from addresses it has never signed
  in from successfully; its owner's known addresses still get in.
A refusal carries Retry-After and says whether it opens a new burst of refusals: only those
are audited, so a storm writes a record per burst, not per attempt.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class LoginLimits:
    address_burst: int = 20
    address_every: float = 3.0  # seconds per attempt after the burst
    pair_failures: int = 5
    account_failures: int = 50
    lock_for: float = 15 * 60.0
    known_for: float = 30 * 24 * 3600.0  # an address stays "known" for an account this long
    max_keys: int = 100_000


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    code: str = "ok"  # "ok", "too-many-attempts", "locked"
    reason: str = ""
    retry_after: int = 0  # whole seconds, >= 1 when refused
    new_burst: bool = False  # the first refusal since this key was last allowed: audit it
    scope: str = ""  # "address", "account-address", "account"


TOO_MANY = ("Too many login attempts from your network: wait {wait} and try again.")
LOCKED = ("Too many failed attempts for this account from your network: wait {wait} and try "
          "again, or ask your IT lead.")
ACCOUNT = ("Too many failed attempts for this account from many places: wait {wait}, or sign in "
           "from a network you have used before, or ask your IT lead.")


class _Bounded(OrderedDict[K, V], Generic[K, V]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def _wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


class LoginThrottle:
    def __init__(self, limits: LoginLimits | None = None) -> None:
        self.limits = limits or LoginLimits()
        n = self.limits.max_keys
        # address -> (tokens, at); (account, address) -> (failures, locked_until)
        self._buckets: _Bounded[str, tuple[float, float]] = _Bounded(n)
        self._pairs: _Bounded[tuple[str, str], tuple[int, float]] = _Bounded(n)
        self._accounts: _Bounded[str, list[float]] = _Bounded(n)  # failure times
        self._known: _Bounded[tuple[str, str], float] = _Bounded(n)  # last success
        self._refusing: _Bounded[tuple[str, str], bool] = _Bounded(n)

    def check(self, address: str, account: str, now: float) -> Verdict:
        """May this attempt go ahead? Takes one attempt from the address's allowance."""
        lim = self.limits
        until = self._pairs.get((account, address), (0, 0.0))[1]
        if until > now:
            return self._refuse("account-address", address, account, until - now, LOCKED,
                                "locked")
        recent = [t for t in self._accounts.get(account, []) if t > now - lim.lock_for]
        known = self._known.get((account, address), -math.inf) > now - lim.known_for
        if len(recent) >= lim.account_failures and not known:
            return self._refuse("account", address, account, recent[0] + lim.lock_for - now,
                                ACCOUNT, "locked")
        tokens, at = self._buckets.get(address, (float(lim.address_burst), now))
        tokens = min(float(lim.address_burst), tokens + (now - at) / lim.address_every)
        if tokens < 1.0:
            self._buckets.put(address, (tokens, now))
            return self._refuse("address", address, "", (1.0 - tokens) * lim.address_every,
                                TOO_MANY, "too-many-attempts")
        self._buckets.put(address, (tokens - 1.0, now))
        for scope_key in (("address", address), ("account-address", f"{account}\0{address}"),
                          ("account", f"{account}\0{address}")):
            self._refusing.pop(scope_key, None)
        return Verdict(True)

    def failed(self, address: str, account: str, now: float) -> bool:
        """Count a failed attempt; True when it just locked the account at this address."""
        lim = self.limits
        failures, until = self._pairs.get((account, address), (0, 0.0))
        failures = (0 if until and until <= now else failures) + 1
        locked = failures >= lim.pair_failures
        self._pairs.put((account, address), (0, now + lim.lock_for) if locked else
                        (failures, 0.0))
        recent = [t for t in self._accounts.get(account, []) if t > now - lim.lock_for]
        self._accounts.put(account, [*recent[-(lim.account_failures - 1):], now])
        return locked

    def succeeded(self, address: str, account: str, now: float) -> None:
        """A successful login gives its attempt back: people who sign in are never slowed by
        their own colleagues behind the same school NAT, only failures use up the allowance."""
        self._pairs.pop((account, address), None)
        self._known.put((account, address), now)
        tokens, at = self._buckets.get(address, (float(self.limits.address_burst), now))
        self._buckets.put(address, (min(float(self.limits.address_burst), tokens + 1.0), at))

    def forget(self, account: str) -> None:
        """An IT lead reset the password: the account's locks and failures are cleared."""
        for key in [k for k in self._pairs if k[0] == account]:
            del self._pairs[key]
        self._accounts.pop(account, None)

    def _refuse(self, scope: str, address: str, account: str, wait: float, sentence: str,
                code: str) -> Verdict:
        seconds = max(1, math.ceil(wait))
        key = (scope, address if scope == "address" else f"{account}\0{address}")
        new = key not in self._refusing
        self._refusing.put(key, True)
        return Verdict(False, code, sentence.format(wait=_wait(seconds)), seconds, new, scope)
