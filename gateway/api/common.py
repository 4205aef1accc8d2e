"""Helpers every API handler uses: the context, the acting operator, authorization, audit."""

from __future__ import annotations

from aiohttp import web

from gateway.api.errors import forbidden
from gateway.audit.kinds import AccessDenied, TypedEvent, Who, to_event
from gateway.context import GatewayContext
from gateway.policy.access import Actor, authorize

CONTEXT = web.AppKey("context", GatewayContext)
ACTOR_KEY = "staffroom.actor"
TOKEN_HASH_KEY = "staffroom.token_hash"


def ctx(request: web.Request) -> GatewayContext:
    return request.app[CONTEXT]


def actor(request: web.Request) -> Actor:
    return request[ACTOR_KEY]  # type: ignore[no-any-return]


def source(request: web.Request) -> str | None:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[0]) if peer else None


async def audit(
    request: web.Request,
    event: TypedEvent,
    *,
    subject: str | None = None,
    school: str | None = None,
    actor_id: str | None = None,
    use_reserve: bool = False,
) -> None:
    """Append an audit record and wait until it is durable. A full disk raises
    AuditWriteFailed, which the error middleware answers with 503 and one sentence: the action
    does not happen. `use_reserve` only for actions that free space (deleting a recording)."""
    who = actor_id
    if who is None and ACTOR_KEY in request:
        who = actor(request).user_id
    record = to_event(event, Who(actor=who, subject=subject, school=school,
                                 source=source(request)))
    await ctx(request).audit.aappend(record, use_reserve=use_reserve)


async def require(
    request: web.Request,
    action: str,
    *,
    school: str | None,
    subject: str | None = None,
    grants_role: str | None = None,
) -> None:
    """Authorize or raise 403; a refusal is audited with its reason."""
    decision = authorize(actor(request), action, school=school, grants_role=grants_role)
    if not decision.allowed:
        await audit(request, AccessDenied(action=action, reason=decision.reason),
                    subject=subject, school=school)
        raise forbidden(decision.reason)
