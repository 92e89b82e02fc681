"""Helpers every compute module uses: ids and times, policy, body validation,
lookups that answer 404 for what the caller may not see, and paging links."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from stackbox import context, policy, rest, validation
from stackbox.compute import errors, models

SERVICE = "compute"


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


def isotime(moment: datetime.datetime | None) -> str | None:
    """Nova's server timestamps: ``2012-08-20T21:11:09Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def isotime_micro(moment: datetime.datetime | None) -> str | None:
    """Nova's timestamps with microseconds and no zone (instance actions, services, usage)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") if moment else None


def parse_time(text: str, field: str) -> datetime.datetime:
    """An ISO 8601 time from a query (changes-since, start, end); 400 if it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise errors.bad_request(
            f"Invalid input for query parameter {field}: {text!r} is not a 'date-time'"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


def is_admin(ctx: context.RequestContext) -> bool:
    return "admin" in ctx.roles


def enforce(
    request: rest.ApiRequest,
    action: str,
    target: Mapping[str, Any] | None = None,
) -> None:
    """Check ``action`` (an ``os_compute_api:*`` rule) against ``target``, whose
    ``project_id``/``user_id`` default to the caller's (Nova's default target)."""
    ctx = request.context
    full = {"project_id": ctx.project_id, "user_id": ctx.user_id}
    if target:
        full.update(target)
    try:
        policy.enforce(ctx, action, full, service=SERVICE)
    except policy.PolicyNotAuthorized as exc:
        raise errors.forbidden(f"Policy doesn't allow {exc.action} to be performed.") from None


def allowed(request: rest.ApiRequest, action: str, target: Mapping[str, Any] | None = None) -> bool:
    try:
        enforce(request, action, target)
    except rest.Forbidden:
        return False
    return True


def body_of(request: rest.ApiRequest, key: str | None, schema: Mapping[str, Any]) -> Any:
    """The request body (or its ``key`` member), validated against ``schema`` (400 naming
    the field, as Nova's validation does)."""
    body = request.body
    if body is None or not isinstance(body, dict):
        raise errors.bad_request("The request body is missing or is not a JSON object.")
    if key is not None:
        if key not in body:
            raise errors.bad_request(
                f"Invalid input for field/attribute {key}. Value: None. "
                f"'{key}' is a required property"
            )
        validation.check({"type": "object", "properties": {key: schema}, "required": [key]}, body)
        return body[key]
    validation.check(schema, body)
    return body


def get_server(
    session: Session, request: rest.ApiRequest, server_id: str, *, deleted: bool = False
) -> models.Server:
    """The server, if the caller's project owns it or the caller is an admin; else 404.
    Policy checks for the action itself are the caller's job."""
    server = session.get(models.Server, server_id)
    if server is None or (server.deleted and not deleted):
        raise errors.server_not_found(server_id)
    ctx = request.context
    if server.project_id != ctx.project_id and not is_admin(ctx):
        raise errors.server_not_found(server_id)
    return server


def server_target(server: models.Server) -> dict[str, Any]:
    return {"project_id": server.project_id, "user_id": server.user_id}


def query_int(request: rest.ApiRequest, name: str, *, minimum: int = 0) -> int | None:
    value = request.arg(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(
            f"Invalid input for query parameters {name}. Value: {value}. "
            f"'{value}' is not a 'integer'"
        ) from None
    if number < minimum:
        raise errors.bad_request(
            f"Invalid input for query parameters {name}. Value: {value}. "
            f"{value} is less than the minimum of {minimum}"
        )
    return number


def page(
    request: rest.ApiRequest,
    items: Sequence[dict[str, Any]],
    *,
    key: str = "id",
    max_limit: int = 1000,
) -> tuple[list[dict[str, Any]], str | None]:
    """Apply ``marker`` (404-free: Nova answers 400 for an unknown marker) and ``limit``
    to already-sorted ``items``; returns the page and the marker of a next page."""
    marker = request.arg("marker")
    start = 0
    if marker is not None:
        for index, item in enumerate(items):
            if str(item.get(key)) == marker:
                start = index + 1
                break
        else:
            raise errors.bad_request(f"marker [{marker}] not found")
    limit = query_int(request, "limit")
    limit = max_limit if limit is None else min(limit, max_limit)
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    return chunk, (str(chunk[-1].get(key)) if chunk and more else None)


def next_link(request: rest.ApiRequest, marker: str) -> dict[str, str]:
    """A ``rel: next`` link: this URL with the same query and the new marker."""
    from urllib.parse import urlencode

    query = [(k, v) for k, values in request.query.items() for v in values if k != "marker"]
    query.append(("marker", marker))
    return {"rel": "next", "href": f"{request.url}?{urlencode(query)}"}


def link(request: rest.ApiRequest, path: str) -> list[dict[str, str]]:
    """Nova's ``links`` pair (self and bookmark) for a resource under /compute."""
    from stackbox.compute import runtime

    base = f"{runtime.get().base_url}/compute"
    project = ""
    return [
        {"rel": "self", "href": f"{base}/v2.1{project}/{path}"},
        {"rel": "bookmark", "href": f"{base}{project}/{path}"},
    ]
