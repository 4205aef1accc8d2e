"""Names, dates and curves that go into certificates, checked before they are signed.

Attacker-controlled here: user ids, display names, school names and hostnames reach the CA from
the admin API and `staffroom init`; each is length-bounded (X.520 upper bounds), control
characters are refused, DNS names must be plain LDH labels and IP addresses must parse.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

JST = timezone(timedelta(hours=9), "JST")
CURVES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
MAX_HOSTNAMES = 32
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def school_year_end(now: datetime) -> datetime:
    """31 March 23:59:59 Japan time (UTC+9) ending the school year `now` is in (a Japanese
    school year starts on 1 April), returned in UTC."""
    if now.tzinfo is None:
        raise ValueError("school_year_end needs an aware datetime (UTC or with an offset).")
    local = now.astimezone(JST)
    year = local.year + 1 if local.month >= 4 else local.year
    return datetime(year, 3, 31, 23, 59, 59, tzinfo=JST).astimezone(UTC)


def check_text(value: str, what: str, limit: int) -> str:
    """`value` if it is 1..limit characters without control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"The {what} is empty.")
    if len(value) > limit:
        raise ValueError(f"The {what} is longer than {limit} characters.")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValueError(f"The {what} contains control characters.")
    return value


def check_crl_url(url: str) -> str:
    """An http(s) URL in ASCII: the CRL distribution point written into certificates."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not url.isascii() \
            or len(url) > 512 or any(c.isspace() for c in url):
        raise ValueError(f"The CRL URL must be an http(s) URL, got {url[:80]!r}.")
    return url


def _dns_name(host: str) -> str:
    name = host.rstrip(".").lower()
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"{host[:80]!r} is neither a DNS name nor an IP address: give names "
                         "such as gw.school.example or 192.0.2.10 (no wildcards).")
    return name


def hostname_names(hostnames: Iterable[str]) -> tuple[list[str], list[x509.GeneralName]]:
    """The hostnames, normalised, and their subjectAltName entries (DNS or IP)."""
    names: list[str] = []
    sans: list[x509.GeneralName] = []
    for host in hostnames:
        host = str(host).strip()
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            name = _dns_name(host)
            entry: x509.GeneralName = x509.DNSName(name)
        else:
            name, entry = str(ip), x509.IPAddress(ip)
        if name not in names:
            names.append(name)
            sans.append(entry)
        if len(names) > MAX_HOSTNAMES:
            raise ValueError(f"At most {MAX_HOSTNAMES} hostnames fit one gateway certificate.")
    if not names:
        raise ValueError("Give at least one hostname for the gateway certificate.")
    return names, sans
