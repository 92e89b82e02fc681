"""Helpers every identity resource uses: ids, timestamps, links, lookups, list filters."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import policy, rest, validation
from stackbox.identity import errors, models, runtime

T = TypeVar("T")


def new_id() -> str:
    return uuid.uuid4().hex


def isotime(moment: datetime.datetime | None, micros: bool = True) -> str | None:
    """Keystone's timestamp format: ``2026-11-22T01:03:45.000000Z``."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    if micros:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, field: str) -> datetime.datetime | None:
    """Parse an ISO 8601 time from a request into naive UTC; 400 naming the field if bad."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise rest.BadRequest(f"Invalid input for field '{field}': {value!r} is not a string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise rest.BadRequest(
            f"Invalid input for field '{field}': {value!r} is not a valid ISO 8601 time"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def url(path: str) -> str:
    """Absolute URL of an identity API path such as ``/v3/users/ID``."""
    return runtime.get().identity_url + path


def self_link(path: str) -> dict[str, str]:
    return {"self": url(path)}


def collection_links(request: rest.ApiRequest) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
    return {"self": request.url + (f"?{query}" if query else ""), "previous": None, "next": None}


def get_or_404(session: Session, model: type[T], ident: str, kind: str) -> T:
    row = session.get(model, ident)
    if row is None:
        raise errors.not_found(kind, ident)
    return row


def get_domain(session: Session, domain_id: str) -> models.Project:
    row = session.get(models.Project, domain_id)
    if row is None or not row.is_domain:
        raise errors.not_found("domain", domain_id)
    return row


def get_project(session: Session, project_id: str) -> models.Project:
    row = session.get(models.Project, project_id)
    if row is None or row.is_domain:
        raise errors.not_found("project", project_id)
    return row


def domain_by_name(session: Session, name: str) -> models.Project | None:
    return session.scalars(
        select(models.Project).where(
            models.Project.is_domain.is_(True), models.Project.name == name
        )
    ).first()


def body_of(request: rest.ApiRequest, key: str, schema: dict[str, Any] | None = None) -> Any:
    """The ``{key: {...}}`` member of a request body, validated against ``schema``."""
    body = request.body
    if not isinstance(body, dict) or key not in body:
        raise rest.BadRequest(
            f"Expecting to find {key} in request body. The server could not comply with "
            "the request since it is either malformed or otherwise incorrect. The client "
            "is assumed to be in error."
        )
    value = body[key]
    if schema is not None:
        validation.check(schema, value)
    return value


def truthy(value: str | None) -> bool:
    """Keystone's query booleans: present and not 0/false/no/off means true."""
    if value is None:
        return False
    return value.strip().lower() not in ("0", "false", "no", "off", "f", "n")


def query_bool(request: rest.ApiRequest, name: str) -> bool | None:
    value = request.arg(name)
    if value is None:
        return None
    return value == "" or truthy(value)


def filter_by_name(
    request: rest.ApiRequest, items: Iterable[T], attr: Callable[[T], str]
) -> list[T]:
    """Apply ``?name=`` and its ``__contains``/``__startswith``/... operators (Keystone's)."""
    result = list(items)
    for key, values in request.query.items():
        if not key.startswith("name"):
            continue
        wanted = values[-1]
        op = key[4:]
        if op == "":
            result = [i for i in result if attr(i) == wanted]
        elif op == "__contains":
            result = [i for i in result if wanted in attr(i)]
        elif op == "__icontains":
            result = [i for i in result if wanted.lower() in attr(i).lower()]
        elif op == "__startswith":
            result = [i for i in result if attr(i).startswith(wanted)]
        elif op == "__istartswith":
            result = [i for i in result if attr(i).lower().startswith(wanted.lower())]
        elif op == "__endswith":
            result = [i for i in result if attr(i).endswith(wanted)]
        elif op == "__iendswith":
            result = [i for i in result if attr(i).lower().endswith(wanted.lower())]
    return result


def limited(
    items: list[Any], key: str, request: rest.ApiRequest, rendered: list[Any]
) -> dict[str, Any]:
    """A list body with Keystone's ``truncated`` flag when ``list_limit`` cut it short."""
    limit = runtime.get().settings.list_limit
    body: dict[str, Any] = {key: rendered, "links": collection_links(request)}
    if limit and len(rendered) > limit:
        body[key] = rendered[:limit]
        body["truncated"] = True
    return body


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    else:
        out[prefix] = value


def enforce(
    request: rest.ApiRequest, action: str, target: dict[str, Any] | None = None, **extra: Any
) -> None:
    """Check ``action`` the way Keystone does: path params plus a flattened ``target.*``."""
    flat: dict[str, Any] = dict(request.path_params)
    if target:
        _flatten("target", target, flat)
    flat.update(extra)
    policy.enforce(request.context, action, flat, service="identity")
