"""API errors: one code and one human sentence, as JSON, never a traceback."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from gateway.audit.log import AuditWriteFailed
from gateway.store.base import StoreUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


def bad_request(message: str, code: str = "bad-request") -> ApiError:
    return ApiError(400, code, message)


def forbidden(message: str, code: str = "forbidden") -> ApiError:
    return ApiError(403, code, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not-found", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def unavailable_sentence(problem: str) -> str:
    """"The audit log cannot be written because the disk is full, so …" — one sentence."""
    remedy = ("check that the database server is running and reachable from this gateway"
              if "PostgreSQL" in problem else "free space on the gateway's data disk")
    return (f"{problem.rstrip('.')}, so nothing was done: {remedy} (the gateway carries on "
            "by itself) and try again.")


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"error": code, "message": message})
    return web.Response(status=status, text=body, content_type="application/json",
                        headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, e.headers)
    except (AuditWriteFailed, StoreUnavailable) as e:
        # Fail closed: what cannot be audited or stored does not happen (see gateway.health).
        return error_response(503, "gateway-unavailable", unavailable_sentence(str(e)))
    except web.HTTPException as e:
        if e.status >= 400 and request.path.startswith("/api/"):
            return error_response(e.status, "http", e.reason)
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "The gateway hit an internal error; it is logged.")


async def json_body(request: web.Request, max_bytes: int = 256 * 1024) -> dict[str, object]:
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "too-large", "The request is too large.")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ApiError(413, "too-large", "The request is too large.")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def field_str(data: dict[str, object], name: str, *, required: bool = True,
              max_len: int = 200) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise bad_request(f"The field {name!r} is missing.")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise bad_request(f"The field {name!r} must be text of at most {max_len} characters.")
    return value
