"""Composition root: wires the state, the CA, the audit log, the policies and the HTTP app.

Nothing imports this module; it imports everything it wires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from aiohttp import web

from gateway.api.common import CONTEXT
from gateway.api.errors import error_middleware
from gateway.api.routes import add_routes
from gateway.api.session import bearer_middleware
from gateway.audit.events import AuditEvent
from gateway.audit.keys import load_signing_key
from gateway.audit.log import AuditLog, AuditLogError
from gateway.console.pages import add_routes as add_console_routes
from gateway.context import GatewayContext
from gateway.datadir import DataDir
from gateway.live.broker import SessionBroker
from gateway.live.tunnel import tunnel
from gateway.pki.ca import CAError, SchoolCA
from gateway.pki.publish import publish_crl
from gateway.policy.load import load_policies
from gateway.recording.store import delete, expired, list_recordings, recordings_root
from gateway.store.sqlite import SqliteStore
from gateway.tlsconfig import server_context
from gateway.workspace.base import InvalidAssignment
from gateway.workspace.manager import WorkspaceManager
from gateway.workspace.vnc_allow import VncAllowList

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The gateway cannot start; the message is one sentence saying what to do."""


def open_context(data_dir: Path, ca_passphrase: bytes | None = None) -> GatewayContext:
    data = DataDir(data_dir)
    if not data.config_file.exists():
        raise StartupError(
            f"{data_dir} is not a Staffroom data directory: create one with "
            f"`staffroom init {data_dir} --hostname NAME`."
        )
    config = data.read_config()
    try:
        ca = SchoolCA.load(data.ca_dir, passphrase=ca_passphrase)
    except CAError as e:
        raise StartupError(str(e)) from None
    try:
        audit = AuditLog(data.audit_dir, load_signing_key(data.audit_key))
    except AuditLogError as e:
        raise StartupError(f"The audit log cannot be opened, so the gateway will not start: "
                           f"{e}") from None
    try:
        policies = load_policies(data.policies)
    except Exception as e:
        raise StartupError(f"The policy is invalid, so the gateway will not start: {e}") from None
    return GatewayContext(data=data, config=config, store=SqliteStore(data.db), audit=audit,
                          ca=ca, policies=policies)


def build_app(context: GatewayContext) -> web.Application:
    app = web.Application(middlewares=[error_middleware, bearer_middleware],
                          client_max_size=4 * 1024 * 1024)
    app[CONTEXT] = context
    add_routes(app)
    add_console_routes(app)
    app.router.add_get("/tunnel", tunnel)
    for hook in context.extras.get("app_hooks", ()):
        hook(app)
    return app


def reload_policies(context: GatewayContext) -> None:
    """SIGHUP: load the policy folder again; on error keep the old policy and say why."""
    try:
        context.policies = load_policies(context.data.policies)
    except Exception as e:
        log.error("policy reload refused, keeping the previous policy: %s", e)
        return
    log.info("policy reloaded from %s", context.data.policies)


def vnc_allowed(context: GatewayContext) -> VncAllowList:
    """gateway.json's vnc_desktops (existing desktops CIOs may assign), or refuse to start."""
    try:
        return VncAllowList.parse(context.config.vnc_desktops)
    except InvalidAssignment as e:
        raise StartupError(f"{context.data.config_file}: {e}") from None


CRL_REFRESH = 6 * 3600.0  # well inside the CRL's 7-day lifetime


async def _refresh_crl(context: GatewayContext) -> None:
    """Re-sign the CRL regularly so relying parties never see an expired one."""
    while True:
        await asyncio.sleep(CRL_REFRESH)
        try:
            publish_crl(context)
        except OSError as e:
            log.error("could not re-sign the CRL: %s", e)


RETENTION_CHECK = 24 * 3600.0


def apply_retention(context: GatewayContext) -> list[str]:
    """Delete recordings past their policy's `[recording] retention_days`, auditing each
    deletion before it happens. Returns the ids deleted."""
    now = context.clock()
    deleted = []
    for info in list_recordings(recordings_root(context.data.root)):
        user = context.store.get_user(info.user)
        policy = context.policies.resolve(info.user, user.role if user else "teacher",
                                          info.school or None).policy
        if expired([info], now, policy.recording.retention_days):
            context.audit.append(AuditEvent(
                kind="recording.delete", outcome="ok", actor=None, subject=info.user,
                school=info.school or None, session=info.session, source=None,
                details={"recording": info.id, "reason": "retention",
                         "retention_days": policy.recording.retention_days}))
            delete(info.path)
            deleted.append(info.id)
    return deleted


async def _retention(context: GatewayContext) -> None:
    while True:
        try:
            await asyncio.to_thread(apply_retention, context)
        except OSError as e:
            log.error("recording retention failed: %s", e)
        await asyncio.sleep(RETENTION_CHECK)


async def serve(context: GatewayContext, host: str, port: int,
                ready: asyncio.Event | None = None) -> None:
    """Serve HTTPS until SIGINT/SIGTERM (or cancellation), then stop cleanly."""
    if not context.data.crl.exists():
        publish_crl(context)
    # Desktop-wide settings come from the policy that applies to teachers (per-user values
    # for these need one desktop host per policy group: see docs/WORKSPACE.md).
    teacher_policy = context.policies.resolve("", "teacher", None).policy
    workspace_policy = teacher_policy.workspace
    redirection = teacher_policy.redirection
    workspaces = WorkspaceManager(
        context.data.root, session_command=workspace_policy.session_command,
        geometry=context.config.desktop_geometry,
        stop_unattached_after=workspace_policy.stop_unattached_after.total_seconds(),
        desktop_uids=context.config.desktop_uids, uid_store=context.store,
        home_url=workspace_policy.home_url, vnc_allowed=vnc_allowed(context),
        allowed_hosts=workspace_policy.allowed_hosts,
        home_quota_bytes=workspace_policy.home_quota, printing=redirection.printing,
        clipboard=redirection.clipboard != "off")
    workspaces.start_reaper()
    crl_task = asyncio.create_task(_refresh_crl(context))
    retention_task = asyncio.create_task(_retention(context))
    broker = SessionBroker(context, workspaces)
    context.extras["broker"] = broker
    app = build_app(context)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    tls = server_context(context.data.tls_cert, context.data.tls_key)
    site = web.TCPSite(runner, host, port, ssl_context=tls, shutdown_timeout=3)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise StartupError(f"Cannot listen on {host}:{port} ({e.strerror}): pick another "
                           f"--listen address or stop the program using it.") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, reload_policies, context)
    await context.audit.aappend(AuditEvent(
        kind="gateway.start", outcome="ok", actor=None, subject=None, school=None,
        session=None, source=None, details={"listen": f"{host}:{port}"}))
    log.info("gateway listening on https://%s:%d", host, port)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("gateway stopping")
        crl_task.cancel()
        retention_task.cancel()
        await broker.shutdown()
        await runner.cleanup()
        await context.audit.aappend(AuditEvent(
            kind="gateway.stop", outcome="ok", actor=None, subject=None, school=None,
            session=None, source=None, details={}))
        context.audit.close()
        context.store.close()
