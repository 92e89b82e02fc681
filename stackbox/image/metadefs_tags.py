"""Metadef tags: named labels in a namespace. One by one (POST creates, PUT renames),
in bulk (``POST .../tags`` replaces them all, or appends with ``X-Openstack-Append``),
listed with sort, limit and marker.

Tag names are unique in a namespace regardless of case, as Glance's message says
(its MySQL collation makes them so); lookups by name are exact.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.image import metadefs_common as common
from stackbox.image import metadefs_schemas as schemas
from stackbox.image import models

SORT_KEYS = ("name", "created_at", "updated_at")
TRUE = ("1", "t", "true", "on", "y", "yes")


def duplicate(name: str, namespace: models.MetadefNamespace) -> rest.Conflict:
    return rest.Conflict(
        f"A metadata tag with name={name} already exists in namespace={namespace.namespace}. "
        "(Please note that metadata tag names are case insensitive)."
    )


def not_found(name: str, namespace: models.MetadefNamespace) -> rest.NotFound:
    return rest.NotFound(
        f"The metadata definition tag with name={name} was not found in "
        f"namespace={namespace.namespace}."
    )


def ordered(
    session: Session, namespace: models.MetadefNamespace, sort_key: str, direction: str
) -> list[models.MetadefTag]:
    tag = models.MetadefTag
    columns = [getattr(tag, sort_key)]
    if sort_key != "created_at":
        columns.append(tag.created_at)
    columns.append(tag.id)
    return list(
        session.scalars(
            select(tag)
            .where(tag.namespace_id == namespace.id)
            .order_by(*(c.desc() if direction == "desc" else c.asc() for c in columns))
        )
    )


def _taken(
    session: Session, namespace: models.MetadefNamespace, name: str, but: int | None = None
) -> bool:
    query = select(models.MetadefTag.id).where(
        models.MetadefTag.namespace_id == namespace.id,
        func.lower(models.MetadefTag.name) == name.lower(),
    )
    if but is not None:
        query = query.where(models.MetadefTag.id != but)
    return session.scalar(query) is not None


def add_all(session: Session, namespace: models.MetadefNamespace, names: list[str]) -> None:
    """Add these tags; any name already there (or twice in ``names``) is 409."""
    seen: set[str] = set()
    moment = common.now()
    for name in names:
        if name.lower() in seen or _taken(session, namespace, name):
            raise duplicate(name, namespace)
        seen.add(name.lower())
        session.add(
            models.MetadefTag(
                namespace_id=namespace.id, name=name, created_at=moment, updated_at=moment
            )
        )
    session.flush()


def _get(session: Session, namespace: models.MetadefNamespace, name: str) -> models.MetadefTag:
    found = session.scalars(
        select(models.MetadefTag).where(
            models.MetadefTag.namespace_id == namespace.id, models.MetadefTag.name == name
        )
    ).first()
    if found is None:
        raise not_found(name, namespace)
    return found


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    namespace = common.find_namespace(session, request.context, request.path_params["namespace"])
    name = request.path_params["tag"]
    validation.check(schemas.TAG, {"name": name})
    common.enforce(request, "add_metadef_tag", namespace)
    add_all(session, namespace, [name])
    return rest.ApiResponse(201, common.render_tag(_get(session, namespace, name)))


def create_many(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = common.body_of(request, schemas.TAGS_BODY, common.TIMESTAMPS)
    namespace = common.namespace_for(session, request, "add_metadef_tags")
    append = (request.headers.get("x-openstack-append") or "").strip().lower() in TRUE
    names = [t["name"] for t in ref["tags"]]
    # As in Glance, an empty list changes nothing even without the append header.
    if names:
        if not append:
            session.execute(
                delete(models.MetadefTag).where(models.MetadefTag.namespace_id == namespace.id)
            )
        add_all(session, namespace, names)
    return rest.ApiResponse(201, {"tags": [{"name": name} for name in names]})


def list_tags(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    namespace = common.namespace_for(session, request, "get_metadef_tags")
    sort_key = request.arg("sort_key", "created_at") or "created_at"
    if sort_key not in SORT_KEYS:
        raise rest.BadRequest(f"Invalid sort key: {sort_key}")
    direction = common.sort_dir(request)
    limit = common.limit(request, None) or None
    rows = ordered(session, namespace, sort_key, direction)
    marker = request.arg("marker")
    if marker:
        marker_row = _get(session, namespace, marker)
        rows = rows[rows.index(marker_row) + 1 :]
    if limit is not None:
        rows = rows[:limit]
    return {"tags": [{"name": row.name} for row in rows]}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    namespace = common.namespace_for(session, request, "get_metadef_tag")
    return common.render_tag(_get(session, namespace, request.path_params["tag"]))


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = common.body_of(request, schemas.TAG, common.TIMESTAMPS)
    namespace = common.namespace_for(session, request, "modify_metadef_tag")
    tag = _get(session, namespace, request.path_params["tag"])
    if _taken(session, namespace, ref["name"], but=tag.id):
        raise duplicate(ref["name"], namespace)
    tag.name = ref["name"]
    tag.updated_at = common.now()
    session.flush()
    return common.render_tag(tag)


def delete_tag(request: rest.ApiRequest, session: Session) -> None:
    namespace = common.namespace_for(session, request, "delete_metadef_tag")
    tag = _get(session, namespace, request.path_params["tag"])
    common.check_unprotected(namespace, "tag", tag.name)
    session.delete(tag)


TAGS = common.NAMESPACES_PATH + "/{namespace}/tags"
ROUTES = [
    rest.Route("GET", TAGS, list_tags),
    rest.Route("POST", TAGS, create_many),
    rest.Route("POST", TAGS + "/{tag}", create),
    rest.Route("GET", TAGS + "/{tag}", show),
    rest.Route("PUT", TAGS + "/{tag}", update),
    rest.Route("DELETE", TAGS + "/{tag}", delete_tag),
]
