"""What an address in a policy or a desktop's egress list may name. Pure."""

from __future__ import annotations

import ipaddress


def not_one_host(host: str) -> bool:
    """Whether ``host`` is an IP address that names no single host (the unspecified address,
    or a multicast group); a name, or another address, is not refused here."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_unspecified or address.is_multicast
