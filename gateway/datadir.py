"""The layout of a gateway's DATA_DIR (one place names every file the gateway keeps)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

METRICS_ALLOW_DEFAULT = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True, slots=True)
class DataDir:
    root: Path

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def crl(self) -> Path:
        return self.ca_dir / "crl.pem"

    @property
    def tls_cert(self) -> Path:
        return self.root / "tls" / "server.pem"

    @property
    def tls_key(self) -> Path:
        return self.root / "tls" / "server.key"

    @property
    def db(self) -> Path:
        return self.root / "state.db"

    @property
    def audit_dir(self) -> Path:
        return self.root / "audit"

    @property
    def audit_key(self) -> Path:
        return self.root / "audit-signing.key"

    @property
    def policies(self) -> Path:
        return self.root / "policies"

    @property
    def homes(self) -> Path:
        return self.root / "homes"

    @property
    def runtime(self) -> Path:
        return self.root / "run"

    @property
    def config_file(self) -> Path:
        return self.root / "gateway.json"

    def exists(self) -> bool:
        return self.config_file.exists() or self.ca_cert.exists()

    def read_config(self) -> GatewayConfig:
        data = json.loads(self.config_file.read_text())
        return GatewayConfig(
            hostnames=tuple(data["hostnames"]),
            listen=data.get("listen", "127.0.0.1:8443"),
            public_url=data["public_url"],
            operator_session_minutes=int(data.get("operator_session_minutes", 60)),
            desktop_geometry=data.get("desktop_geometry", "1920x1080"),
            desktop_user=data.get("desktop_user"),
            metrics_allow=tuple(data.get("metrics_allow", METRICS_ALLOW_DEFAULT)),
            desktop_uids=data.get("desktop_uids"),
            vnc_desktops=data.get("vnc_desktops"),
            database=data.get("database"),
            recordings_dir=data.get("recordings_dir"),
        )

    def write_config(self, config: GatewayConfig) -> None:
        data = {
            "hostnames": list(config.hostnames),
            "listen": config.listen,
            "public_url": config.public_url,
            "operator_session_minutes": config.operator_session_minutes,
            "desktop_geometry": config.desktop_geometry,
            "desktop_user": config.desktop_user,
            "metrics_allow": list(config.metrics_allow),
            "desktop_uids": config.desktop_uids,
            "vnc_desktops": config.vnc_desktops,
        }
        # Written only when set: a one-machine gateway.json stays as it was.
        if config.database is not None:
            data["database"] = config.database
        if config.recordings_dir is not None:
            data["recordings_dir"] = config.recordings_dir
        tmp = self.config_file.with_suffix(".json.new")
        tmp.unlink(missing_ok=True)
        # A database URL holds its password: then only the gateway's account may read the file.
        mode = 0o600 if config.database is not None else 0o644
        write_private(tmp, json.dumps(data, indent=2).encode() + b"\n", mode=mode)
        os.replace(tmp, self.config_file)  # a gateway reading it sees the old or the new file


DEFAULT_DESKTOP_UIDS = "200000-299999"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    hostnames: tuple[str, ...]
    listen: str
    public_url: str  # base URL teachers and operators use, e.g. https://gw.school.example:8443
    operator_session_minutes: int = 60
    desktop_geometry: str = "1920x1080"  # of each per-user Xvnc desktop
    desktop_user: str | None = None  # no longer used: each teacher has a uid from desktop_uids
    # Unix uids (= gids) given one per teacher for their desktop, e.g. "200000-299999".
    desktop_uids: str | None = DEFAULT_DESKTOP_UIDS
    # Existing desktops (provider vnc) CIOs may assign: "10.0.0.5:5900", "10.1.0.0/16",
    # {"address": ..., "allow_none_auth": true}. None: only this host's loopback addresses.
    vnc_desktops: list[object] | None = None
    # Networks allowed to scrape /metrics (CIDR or address); loopback only by default.
    metrics_allow: tuple[str, ...] = METRICS_ALLOW_DEFAULT
    # The state database: None is DATA_DIR/state.db (SQLite, one machine); "postgresql://..."
    # is shared by every gateway node (docs/SCALE-OUT.md); "sqlite:///ABS/PATH" names a file.
    # Never in repr(): the URL may hold the database's password (gateway.store.dsn.redact).
    database: str | None = field(default=None, repr=False)
    # Where session recordings go: None is DATA_DIR/recordings; several nodes share one location.
    recordings_dir: str | None = None


def check_public_url(url: str) -> str:
    """The public URL normalised (`https://host[:port]`), or ValueError with one sentence."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") or \
            parts.query or parts.fragment or parts.username or port == -1:
        raise ValueError(f"--public-url must look like https://gateway.school.example[:PORT] "
                         f"(no path), not {url[:100]!r}.")
    return f"https://{parts.netloc.lower()}"


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create `path` with `mode` from the start (no window where a key is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
