"""Nova's error body ``{"<name>": {"code": N, "message": "..."}}``, the name chosen
by status as Nova's fault wrapper does (``itemNotFound``, ``conflictingRequest``...)."""

from __future__ import annotations

from typing import Any

from stackbox import rest

NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def render(error: rest.ApiError) -> tuple[int, Any, dict[str, str]]:
    name = error.kind or NAMES.get(error.status, "computeFault")
    body = {name: {"code": error.status, "message": error.message}}
    return error.status, body, dict(error.headers)


def bad_request(message: str) -> rest.BadRequest:
    return rest.BadRequest(message)


def not_found(message: str) -> rest.NotFound:
    return rest.NotFound(message)


def conflict(message: str) -> rest.Conflict:
    return rest.Conflict(message)


def forbidden(message: str) -> rest.Forbidden:
    return rest.Forbidden(message)


def server_not_found(server_id: str) -> rest.NotFound:
    return rest.NotFound(f"Instance {server_id} could not be found.")


def flavor_not_found(flavor_id: str) -> rest.NotFound:
    return rest.NotFound(f"Flavor {flavor_id} could not be found.")


def invalid_state(server_id: str, attr: str, state: str | None, action: str) -> rest.Conflict:
    """Nova's InstanceInvalidState wording (409)."""
    return rest.Conflict(f"Cannot '{action}' instance {server_id} while it is in {attr} {state}")


def locked(server_id: str) -> rest.Conflict:
    return rest.Conflict(f"Instance {server_id} is locked")


def quota_exceeded(resource: str, requested: int, used: int, allowed: int) -> rest.Forbidden:
    """Nova answers an exhausted quota with 403 (OverQuota), naming the resource."""
    return rest.Forbidden(
        f"Quota exceeded for {resource}: Requested {requested}, but already used {used} "
        f"of {allowed} {resource}"
    )
