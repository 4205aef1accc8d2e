"""One Unix account per teacher: a uid/gid from the gateway's configured range, kept in the store.

Attacker-controlled here: nothing (the range is the board's configuration, user ids are checked
by `check_user_id`); limits: the range never holds root, nobody or any account or group that
exists on the host, and a uid once given to a teacher is never given to another.
"""

from __future__ import annotations

import grp
import pwd
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.workspace.base import InvalidAssignment

NOBODY = 65534
MIN_UID = 1000  # below this Debian keeps system accounts
MAX_UID = 2**31 - 2  # uid_t is unsigned 32-bit, but (uid_t)-1 and the top half confuse tools
_RANGE = re.compile(r"\s*(\d{1,10})\s*-\s*(\d{1,10})\s*")


class UidStore(Protocol):
    """The part of the state store that keeps who holds which uid (gateway.store.base.Store)."""

    def allocate_desktop_uid(
        self, user_id: str, first: int, last: int, unusable: Callable[[int], bool]
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class UidRange:
    """``first``..``last`` inclusive; each teacher's desktop runs as uid = gid = one of them."""

    first: int
    last: int

    @classmethod
    def parse(cls, text: str | None) -> UidRange:
        """``"200000-299999"`` → UidRange; a clear sentence when missing or unusable."""
        if not text:
            raise InvalidAssignment(
                "Desktops need their own Unix accounts, but the gateway's configuration sets no "
                'desktop_uids range: add e.g. "desktop_uids": "200000-299999" to gateway.json.'
            )
        match = _RANGE.fullmatch(text)
        if match is None:
            raise InvalidAssignment(
                f"desktop_uids {text[:40]!r} is not a range like 200000-299999: fix gateway.json."
            )
        first, last = int(match[1]), int(match[2])
        if not MIN_UID <= first <= last <= MAX_UID:
            raise InvalidAssignment(
                f"desktop_uids {first}-{last} must lie within {MIN_UID}-{MAX_UID} "
                "(first <= last): fix gateway.json."
            )
        if first <= NOBODY <= last:
            raise InvalidAssignment(
                f"desktop_uids {first}-{last} includes {NOBODY} (nobody): pick another range."
            )
        return cls(first, last)

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.first <= uid <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


def host_ids() -> tuple[set[int], set[int]]:
    """Every uid and gid the host's account databases (passwd, group via NSS) know now."""
    return {entry.pw_uid for entry in pwd.getpwall()}, {entry.gr_gid for entry in grp.getgrall()}


def check_no_collision(ids: UidRange) -> None:
    """Refuse a range that holds an existing account or group (it would share their files)."""
    uids, gids = host_ids()
    clashes = sorted(i for i in uids | gids if i in ids)
    if clashes:
        raise InvalidAssignment(
            f"desktop_uids {ids} collides with existing accounts or groups on this server "
            f"(e.g. {clashes[0]}): pick a range no account uses."
        )


def exists_on_host(uid: int) -> bool:
    """True if ``uid`` is an account or group the host knows (never give it to a desktop)."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return True
    return uid in (0, NOBODY)


class DesktopUids:
    """Hands out each teacher's uid (blocking: the store is SQLite; call from a thread)."""

    def __init__(self, ids: UidRange, store: UidStore) -> None:
        self.range = ids
        self._store = store

    def uid_for(self, user_id: str) -> int:
        try:
            uid = self._store.allocate_desktop_uid(
                user_id, self.range.first, self.range.last, exists_on_host
            )
        except Exception as exc:  # StoreError: the range is used up (one sentence)
            raise InvalidAssignment(str(exc)) from None
        if uid not in self.range or exists_on_host(uid):
            # The range changed since this teacher got the uid, or an account appeared on it.
            raise InvalidAssignment(
                f"The desktop account {uid} of {user_id} is outside desktop_uids {self.range} "
                "or now belongs to another account: ask the board's administrator."
            )
        return uid
