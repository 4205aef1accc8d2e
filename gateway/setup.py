"""`staffroom init`: creates a gateway's DATA_DIR — CA, TLS certificate, state, audit, policies
and the first administrator. Refuses to touch an existing DATA_DIR; never overwrites a CA."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from gateway.audit.keys import generate_signing_key, public_key_pem, save_signing_key
from gateway.audit.kinds import GatewayInitialised, UserAdded, Who, to_event
from gateway.audit.open import create_audit
from gateway.auth import passwords, totp
from gateway.context import GatewayContext, utcnow
from gateway.datadir import DataDir, GatewayConfig, check_public_url, write_private
from gateway.pki.ca import create_ca
from gateway.pki.publish import publish_crl
from gateway.policy.load import load_policies
from gateway.recording.keys import load_or_create_recording_key
from gateway.store.base import Conflict, Store, StoreError, User
from gateway.store.dsn import is_postgres, where
from gateway.store.open import open_store

SHIPPED_POLICIES = Path(__file__).resolve().parent.parent / "policies"


class InitError(Exception):
    """init refused; the message is one sentence."""


@dataclass(frozen=True, slots=True)
class InitResult:
    data_dir: Path
    admin_user: str
    admin_password: str
    totp_uri: str
    totp_png: Path
    ca_cert: Path
    gateway_url: str


def _check_target(root: Path) -> None:
    data = DataDir(root)
    if data.exists():
        raise InitError(
            f"{root} already holds a Staffroom gateway (its CA is {data.ca_cert}): refusing to "
            "overwrite it. Choose a new directory."
        )
    if root.exists() and any(root.iterdir()):
        raise InitError(f"{root} is not empty: choose a new or empty directory.")


def init_data_dir(
    root: Path,
    hostnames: list[str],
    *,
    listen: str = "127.0.0.1:8443",
    admin_id: str = "admin",
    admin_name: str = "Board administrator",
    organisation: str = "Staffroom School Board",
    ca_passphrase: bytes | None = None,
    curve: str = "P-256",
    public_url: str | None = None,
    database: str | None = None,
) -> InitResult:
    _check_target(root)
    # A database server is checked (and its schema made) before anything is created here.
    server_store = _open_server_database(root, database) if database is not None else None
    try:
        return _init(root, hostnames, listen=listen, admin_id=admin_id, admin_name=admin_name,
                     organisation=organisation, ca_passphrase=ca_passphrase, curve=curve,
                     public_url=public_url, database=database, server_store=server_store)
    finally:
        if server_store is not None:
            server_store.close()


def _open_server_database(root: Path, url: str) -> Store:
    """The PostgreSQL store for `--db`, migrated and holding no Staffroom installation yet."""
    if not is_postgres(url):
        raise InitError("--db must be a postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL "
                        "(leave it out to keep the state in DATA_DIR/state.db).")
    settings = GatewayConfig(hostnames=(), listen="", public_url="", database=url)
    try:
        store = open_store(DataDir(root), settings)  # a server: nothing is created in root
    except StoreError as e:
        raise InitError(str(e)) from None
    if store.count_users() > 0:
        store.close()
        raise InitError(
            f"The database at {where(url)} already holds a Staffroom installation: a second "
            "gateway node runs on a copy of the first node's DATA_DIR (no second init), so copy "
            "it there; or give this gateway an empty database.")
    return store


def _init(
    root: Path,
    hostnames: list[str],
    *,
    listen: str,
    admin_id: str,
    admin_name: str,
    organisation: str,
    ca_passphrase: bytes | None,
    curve: str,
    public_url: str | None,
    database: str | None,
    server_store: Store | None,
) -> InitResult:
    if public_url is not None:
        try:
            public_url = check_public_url(public_url)
        except ValueError as e:
            raise InitError(str(e)) from None
    policies = load_policies(SHIPPED_POLICIES)  # validate before creating anything
    del policies
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o711)  # desktops run as an unprivileged account and need to pass through
    data = DataDir(root)
    now = utcnow()
    ca = create_ca(data.ca_dir, f"{organisation} Staffroom CA", curve=curve,
                   passphrase=ca_passphrase)
    cert, key = ca.issue_server_cert(hostnames)
    write_private(data.tls_cert, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    write_private(data.tls_key, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    signing_key = generate_signing_key()
    save_signing_key(data.audit_key, signing_key)
    # The public half, for officers who check exported audit logs and recordings elsewhere.
    write_private(data.root / "audit-signing.pub", public_key_pem(signing_key), mode=0o644)
    audit = create_audit(data, database, signing_key)  # PostgreSQL: the board's one trail
    load_or_create_recording_key(data.root)  # recordings get their own key (keys/, 0700)
    shutil.copytree(SHIPPED_POLICIES, data.policies)
    port = listen.rsplit(":", 1)[1]
    url = public_url or f"https://{hostnames[0]}:{port}"
    config = GatewayConfig(hostnames=tuple(hostnames), listen=listen, public_url=url,
                           database=database)
    data.write_config(config)  # 0600 when it names a database (its URL holds a password)
    if server_store is not None:
        store = server_store
    else:
        # Password hashes, TOTP secrets and VNC passwords live here: 0600 from the first byte
        # (SQLite gives its -wal and -shm files the same mode).
        os.close(os.open(data.db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        store = open_store(data, config)
    password = passwords.generate_password()
    secret = totp.new_secret()
    admin = User(id=admin_id, name=admin_name, role="admin", school=None,
                 password_hash=passwords.hash_password(password), must_change_password=True,
                 totp_secret=secret, created_at=now)
    audit.append(to_event(GatewayInitialised(hostnames=list(hostnames), ca_curve=curve)))
    audit.append(to_event(UserAdded(role="admin"), Who(subject=admin_id)))
    try:
        store.add_user(admin)
    except Conflict:  # another init on the same database got there first
        raise InitError(f"{admin_id!r} already exists in the state database: a second gateway "
                        "node runs on a copy of the first node's DATA_DIR, not a second "
                        "init.") from None
    context = GatewayContext(data=data, config=config, store=store, audit=audit, ca=ca,
                             policies=None)
    publish_crl(context)
    uri = totp.provisioning_uri(secret, admin_id)
    png = root / "admin-totp.png"
    _write_qr_png(uri, png)
    audit.close()
    if server_store is None:
        store.close()
    return InitResult(root, admin_id, password, uri, png, data.ca_cert, url)


def _write_qr_png(uri: str, path: Path) -> None:
    import qrcode

    image = qrcode.make(uri)
    with path.open("wb") as f:
        image.save(f)
    path.chmod(0o600)


def qr_terminal(uri: str) -> str:
    """The QR code as text for a terminal (two rows per character line)."""
    import io

    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(uri)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()
