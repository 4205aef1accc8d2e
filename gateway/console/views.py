"""Which console pages each role sees, and whether it may act there (pure).

This only shapes the page; every API call is still authorized by gateway.policy.access.
"""

from __future__ import annotations

from types import MappingProxyType

READ, MANAGE = "read", "manage"

# role -> page -> READ or MANAGE. Officers see keys read-only (revocation is the CIO's job in the
# console; the CLI still lets an officer revoke in an emergency). Watching a live session is part
# of "sessions"; replaying and exporting recordings is READ (deleting stays with the CLI).
# Teachers see nothing; the call centre sees the help page only.
VIEWS: MappingProxyType[str, MappingProxyType[str, str]] = MappingProxyType({
    "admin": MappingProxyType({"sessions": MANAGE, "recordings": READ, "audit": READ,
                               "keys": MANAGE, "accounts": MANAGE, "hours": READ}),
    "officer": MappingProxyType({"sessions": MANAGE, "recordings": READ, "audit": READ,
                                 "keys": READ, "hours": READ}),
    "cio": MappingProxyType({"keys": MANAGE, "accounts": MANAGE, "hours": READ}),
    # The call centre: the teachers asking for help, and joining their session.
    "helpdesk": MappingProxyType({"help": MANAGE}),
})


def views_for(role: str) -> dict[str, str]:
    return dict(VIEWS.get(role, {}))
