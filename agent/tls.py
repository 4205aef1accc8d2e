"""Client TLS for talking to the gateway: the school CA only, TLS 1.2+, hostname checked."""

from __future__ import annotations

import ssl
from pathlib import Path

from agent.cli_support import CliError


def client_context(ca_pem: str | Path) -> ssl.SSLContext:
    path = Path(ca_pem)
    if not path.is_file():
        raise CliError(f"The CA certificate {path} does not exist: pass the school CA's "
                       "ca.pem with --ca.")
    # Only the school CA is trusted: no system roots.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cafile=str(path))
    except ssl.SSLError:
        raise CliError(f"{path} is not a PEM certificate: pass the school CA's ca.pem with "
                       "--ca.") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def explain_tls_error(url: str, error: BaseException) -> CliError:
    """One sentence for a TLS failure towards the gateway."""
    text = str(error)
    if isinstance(error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        if "hostname" in text.lower() or "match" in text.lower():
            return CliError(f"The gateway at {url} presented a certificate for another name: "
                            "check the --gateway address.")
        return CliError(f"The gateway at {url} is not vouched for by your school's CA "
                        "(certificate verify failed): check --gateway and --ca, or ask your "
                        "IT lead.")
    return CliError(f"A secure connection to the gateway at {url} failed ({text[:120]}).")
