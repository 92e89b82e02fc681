"""What every metadata-definitions (metadefs) handler shares: finding a namespace the
caller may see, Glance's policy checks on it, request bodies and rendering.

Visibility works as in Glance: admins see every namespace, others see public ones,
their own project's, and ones without an owner; anything else is 404. A policy
refusal on a namespace the caller cannot read is 404 too, and 403 on one they can.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest, validation
from stackbox.image import models

NAMESPACES_PATH = "/v2/metadefs/namespaces"
# Glance's list defaults (limit_param_default, api_limit_max).
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
# Every Glance metadef body refuses these with 403 rather than ignoring them.
TIMESTAMPS = ("created_at", "updated_at")
GENERATED = ("self", "schema", *TIMESTAMPS)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def isotime(moment: datetime.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def stamps(row: Any) -> dict[str, str | None]:
    return {"created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at)}


def is_admin(ctx: context.RequestContext) -> bool:
    return "admin" in ctx.roles


def visible(query: Select[Any], ctx: context.RequestContext) -> Select[Any]:
    """Limit ``query`` over namespaces to those ``ctx`` may see."""
    if is_admin(ctx):
        return query
    ns = models.MetadefNamespace
    clauses = [ns.visibility == "public", ns.owner.is_(None)]
    if ctx.project_id:
        clauses.append(ns.owner == ctx.project_id)
    return query.where(or_(*clauses))


def target(
    ctx: context.RequestContext, namespace: models.MetadefNamespace | None
) -> dict[str, Any]:
    """Glance's metadef policy target: the namespace's owner and visibility."""
    if namespace is None:
        return {"project_id": ctx.project_id}
    return {"project_id": namespace.owner, "visibility": namespace.visibility}


def allowed(
    request: rest.ApiRequest, action: str, namespace: models.MetadefNamespace | None = None
) -> bool:
    return policy.allowed(
        request.context, action, target(request.context, namespace), service="image"
    )


def enforce(
    request: rest.ApiRequest, action: str, namespace: models.MetadefNamespace | None = None
) -> None:
    """Check ``action``; a refusal on a namespace the caller cannot read is 404."""
    if allowed(request, action, namespace):
        return
    if namespace is not None and (
        action == "get_metadef_namespace"
        or not allowed(request, "get_metadef_namespace", namespace)
    ):
        raise namespace_not_found(namespace.namespace)
    raise policy.PolicyNotAuthorized(action)


def namespace_not_found(name: str) -> rest.NotFound:
    return rest.NotFound(f"Metadata definition namespace={name} was not found.")


def find_namespace(
    session: Session, ctx: context.RequestContext, name: str
) -> models.MetadefNamespace:
    """The namespace called ``name`` if ``ctx`` may see it; 404 otherwise."""
    found = session.scalars(
        visible(
            select(models.MetadefNamespace).where(models.MetadefNamespace.namespace == name), ctx
        )
    ).first()
    if found is None:
        raise namespace_not_found(name)
    return found


def namespace_for(
    session: Session, request: rest.ApiRequest, action: str
) -> models.MetadefNamespace:
    """The path's namespace, once ``action`` on it is allowed."""
    namespace = find_namespace(session, request.context, request.path_params["namespace"])
    enforce(request, action, namespace)
    return namespace


def touch(namespace: models.MetadefNamespace) -> None:
    namespace.updated_at = now()


def check_unprotected(namespace: models.MetadefNamespace, what: str, name: str) -> None:
    """Glance refuses to delete anything inside a protected namespace."""
    if namespace.protected:
        raise rest.Forbidden(
            f"Metadata definition {what} {name} is protected and cannot be deleted."
        )


def body_of(request: rest.ApiRequest, schema: dict[str, Any], read_only: Iterable[str]) -> Any:
    """The request's JSON object, validated; read-only attributes are 403 as in Glance."""
    body = request.body
    if body is None:
        raise rest.BadRequest("Body expected in request.")
    if not isinstance(body, dict):
        raise rest.BadRequest("Request body must be a JSON object.")
    for key in read_only:
        if key in body:
            raise rest.Forbidden(f"Attribute '{key}' is read-only.")
    validation.check(schema, body)
    return body


def sort_dir(request: rest.ApiRequest) -> str:
    direction = request.arg("sort_dir", "desc") or "desc"
    if direction not in ("asc", "desc"):
        raise rest.BadRequest(f"Invalid sort direction: {direction}")
    return direction


def limit(request: rest.ApiRequest, default: int | None) -> int | None:
    raw = request.arg("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise rest.BadRequest("limit param must be an integer") from None
    if value < 0:
        raise rest.BadRequest("limit param must be positive")
    return min(value, MAX_LIMIT)


def render_property(schema: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A property definition; collections key it by name, single ones carry the name."""
    body = {k: v for k, v in schema.items() if k != "name"}
    if name is not None:
        body = {"name": name, **body}
    return body


def property_schema(definition: dict[str, Any]) -> dict[str, Any]:
    """What is stored for a property: its definition without the name (kept apart)."""
    return {k: v for k, v in definition.items() if k != "name"}


def object_path(namespace: str, name: str) -> str:
    return f"{NAMESPACES_PATH}/{namespace}/objects/{name}"


def render_object(namespace: str, obj: models.MetadefObject, prefix: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"name": obj.name}
    if obj.description is not None:
        body["description"] = obj.description
    body["required"] = [prefix + name for name in obj.required or []]
    body["properties"] = {
        prefix + key: render_property(value) for key, value in (obj.properties or {}).items()
    }
    body.update(stamps(obj))
    body["self"] = object_path(namespace, obj.name)
    body["schema"] = "/v2/schemas/metadefs/object"
    return body


def render_tag(tag: models.MetadefTag) -> dict[str, Any]:
    return {"name": tag.name, **stamps(tag)}


def render_association(
    resource_type: models.MetadefResourceType, link: models.MetadefNamespaceResourceType
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": resource_type.name}
    if link.prefix is not None:
        body["prefix"] = link.prefix
    if link.properties_target is not None:
        body["properties_target"] = link.properties_target
    body.update(stamps(link))
    return body


def associations(
    session: Session, namespace: models.MetadefNamespace
) -> list[tuple[models.MetadefResourceType, models.MetadefNamespaceResourceType]]:
    rows = session.execute(
        select(models.MetadefResourceType, models.MetadefNamespaceResourceType)
        .join(
            models.MetadefNamespaceResourceType,
            models.MetadefNamespaceResourceType.resource_type_id == models.MetadefResourceType.id,
        )
        .where(models.MetadefNamespaceResourceType.namespace_id == namespace.id)
        .order_by(models.MetadefNamespaceResourceType.created_at, models.MetadefResourceType.id)
    )
    return [(rt, link) for rt, link in rows]
