"""Keystone's error body and the errors identity raises, with Keystone's wording."""

from __future__ import annotations

from typing import Any

from stackbox import rest

# Set at start: the WWW-Authenticate header names the identity endpoint.
AUTH_URI = {"value": "http://127.0.0.1/identity"}


def render(error: rest.ApiError) -> tuple[int, Any, dict[str, str]]:
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", f'Keystone uri="{AUTH_URI["value"]}"')
    body = {"error": {"code": error.status, "message": error.message, "title": error.title}}
    return error.status, body, headers


def not_found(kind: str, ident: str) -> rest.NotFound:
    return rest.NotFound(f"Could not find {kind}: {ident}.")


def conflict(kind: str, details: str) -> rest.Conflict:
    return rest.Conflict(f"Conflict occurred attempting to store {kind} - {details}.")


def duplicate(kind: str, name: str, domain_id: str | None = None) -> rest.Conflict:
    where = f" at domain ID {domain_id}" if domain_id else ""
    return conflict(kind, f"Duplicate entry found with name {name}{where}")


def validation(message: str) -> rest.BadRequest:
    return rest.BadRequest(message)


def unauthorized(
    message: str = "The request you have made requires authentication.",
) -> rest.Unauthorized:
    return rest.Unauthorized(message)


def forbidden(action: str) -> rest.Forbidden:
    return rest.Forbidden(f"You are not authorized to perform the requested action: {action}.")
