"""Metadef namespaces: create (with nested associations, properties, objects and
tags), list, show, replace, delete, and delete-all of a namespace's contents."""

from __future__ import annotations

import urllib.parse
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.image import metadefs_common as common
from stackbox.image import metadefs_resource_types as resource_types
from stackbox.image import metadefs_schemas as schemas
from stackbox.image import metadefs_tags as tags
from stackbox.image import models

SORT_KEYS = (
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "created_at",
    "updated_at",
)


def path(name: str) -> str:
    return f"{common.NAMESPACES_PATH}/{name}"


def render_base(namespace: models.MetadefNamespace) -> dict[str, Any]:
    body: dict[str, Any] = {"namespace": namespace.namespace}
    for key in ("display_name", "description"):
        value = getattr(namespace, key)
        if value is not None:
            body[key] = value
    body["visibility"] = namespace.visibility
    body["protected"] = namespace.protected
    if namespace.owner is not None:
        body["owner"] = namespace.owner
    body.update(common.stamps(namespace))
    return body


def render_links(body: dict[str, Any], namespace: models.MetadefNamespace) -> dict[str, Any]:
    body["self"] = path(namespace.namespace)
    body["schema"] = "/v2/schemas/metadefs/namespace"
    return body


def _associations(session: Session, namespace: models.MetadefNamespace) -> list[dict[str, Any]]:
    return [
        common.render_association(rt, link) for rt, link in common.associations(session, namespace)
    ]


def render_detail(
    session: Session, namespace: models.MetadefNamespace, resource_type: str | None = None
) -> dict[str, Any]:
    """The namespace with everything in it; ``resource_type`` prefixes property names
    with that association's prefix, as Glance's ``?resource_type=`` does."""
    body = render_base(namespace)
    links = common.associations(session, namespace)
    prefix = ""
    if resource_type:
        prefix = next((link.prefix or "" for rt, link in links if rt.name == resource_type), "")
    if links:
        body["resource_type_associations"] = [
            common.render_association(rt, link) for rt, link in links
        ]
    props = session.scalars(
        select(models.MetadefProperty)
        .where(models.MetadefProperty.namespace_id == namespace.id)
        .order_by(models.MetadefProperty.id)
    ).all()
    if props:
        body["properties"] = {prefix + p.name: common.render_property(p.json_schema) for p in props}
    objects = session.scalars(
        select(models.MetadefObject)
        .where(models.MetadefObject.namespace_id == namespace.id)
        .order_by(models.MetadefObject.id)
    ).all()
    if objects:
        body["objects"] = [common.render_object(namespace.namespace, o, prefix) for o in objects]
    tag_rows = tags.ordered(session, namespace, "created_at", "desc")
    if tag_rows:
        body["tags"] = [{"name": t.name} for t in tag_rows]
    return render_links(body, namespace)


def _name_taken(session: Session, name: str, but: int | None = None) -> bool:
    query = select(models.MetadefNamespace.id).where(models.MetadefNamespace.namespace == name)
    if but is not None:
        query = query.where(models.MetadefNamespace.id != but)
    return session.scalar(query) is not None


def _duplicate(name: str) -> rest.Conflict:
    return rest.Conflict(f"The metadata definition namespace={name} already exists.")


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = common.body_of(request, schemas.NAMESPACE, common.GENERATED)
    common.enforce(request, "add_metadef_namespace")
    nested = (
        ("resource_type_associations", "add_metadef_resource_type_association"),
        ("objects", "add_metadef_object"),
        ("properties", "add_metadef_property"),
        ("tags", "add_metadef_tag"),
    )
    for key, action in nested:
        if ref.get(key):
            common.enforce(request, action)
    name = ref["namespace"]
    if _name_taken(session, name):
        raise _duplicate(name)
    moment = common.now()
    namespace = models.MetadefNamespace(
        namespace=name,
        display_name=ref.get("display_name"),
        description=ref.get("description"),
        visibility=ref.get("visibility") or "private",
        protected=bool(ref.get("protected", False)),
        owner=ref.get("owner", request.context.project_id),
        created_at=moment,
        updated_at=moment,
    )
    session.add(namespace)
    try:
        session.flush()
    except IntegrityError:
        raise _duplicate(name) from None
    for association in ref.get("resource_type_associations") or []:
        resource_types.associate(session, namespace, association)
    for prop_name, definition in (ref.get("properties") or {}).items():
        session.add(
            models.MetadefProperty(
                namespace_id=namespace.id,
                name=prop_name,
                json_schema=common.property_schema(definition),
                created_at=moment,
                updated_at=moment,
            )
        )
    seen: set[str] = set()
    for obj in ref.get("objects") or []:
        if obj["name"] in seen:
            raise rest.Conflict(
                f"A metadata definition object with name={obj['name']} already exists in "
                f"namespace={name}."
            )
        seen.add(obj["name"])
        session.add(
            models.MetadefObject(
                namespace_id=namespace.id,
                name=obj["name"],
                description=obj.get("description"),
                required=obj.get("required"),
                properties={
                    k: common.property_schema(v) for k, v in (obj.get("properties") or {}).items()
                },
                created_at=moment,
                updated_at=moment,
            )
        )
    tags.add_all(session, namespace, [t["name"] for t in ref.get("tags") or []])
    session.flush()
    return rest.ApiResponse(
        201,
        render_detail(session, namespace),
        headers={"Location": f"{request.base_url}/image{path(name)}"},
    )


def _visible_sorted(request: rest.ApiRequest, session: Session) -> list[models.MetadefNamespace]:
    ns = models.MetadefNamespace
    query = common.visible(select(ns), request.context)
    visibility = request.arg("visibility")
    if visibility:
        if visibility not in ("public", "private"):
            raise rest.BadRequest(f"Invalid visibility value: {visibility}")
        query = query.where(ns.visibility == visibility)
    wanted = request.arg("resource_types")
    if wanted:
        names = [n for n in wanted.split(",") if n]
        query = query.where(
            ns.id.in_(
                select(models.MetadefNamespaceResourceType.namespace_id)
                .join(
                    models.MetadefResourceType,
                    models.MetadefResourceType.id
                    == models.MetadefNamespaceResourceType.resource_type_id,
                )
                .where(models.MetadefResourceType.name.in_(names))
            )
        )
    sort_key = request.arg("sort_key", "created_at") or "created_at"
    if sort_key not in SORT_KEYS:
        raise rest.BadRequest(f"Invalid sort key: {sort_key}")
    direction = common.sort_dir(request)
    columns = [getattr(ns, sort_key)]
    if sort_key != "created_at":
        columns.append(ns.created_at)
    columns.append(ns.id)
    query = query.order_by(*(c.desc() if direction == "desc" else c.asc() for c in columns))
    return list(session.scalars(query))


def _query_string(request: rest.ApiRequest, **changes: str) -> str:
    params = {key: values[-1] for key, values in request.query.items() if key != "marker"}
    params.update(changes)
    return urllib.parse.urlencode(params)


def list_namespaces(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "get_metadef_namespaces")
    common.enforce(request, "list_metadef_resource_types")
    limit = common.limit(request, common.DEFAULT_LIMIT)
    rows = _visible_sorted(request, session)
    marker = request.arg("marker")
    if marker is not None:
        common.find_namespace(session, request.context, marker)
        names = [row.namespace for row in rows]
        rows = rows[names.index(marker) + 1 :] if marker in names else []
    rows = [row for row in rows if common.allowed(request, "get_metadef_namespace", row)]
    page = rows[:limit] if limit is not None else rows
    items = []
    for row in page:
        body = render_base(row)
        links = _associations(session, row)
        if links:
            body["resource_type_associations"] = links
        items.append(render_links(body, row))
    query = _query_string(request)
    result: dict[str, Any] = {"namespaces": items}
    if page and len(page) == limit:
        result["next"] = (
            f"{common.NAMESPACES_PATH}?{_query_string(request, marker=page[-1].namespace)}"
        )
    result["schema"] = "/v2/schemas/metadefs/namespaces"
    result["first"] = f"{common.NAMESPACES_PATH}?{query}" if query else common.NAMESPACES_PATH
    return result


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    namespace = common.namespace_for(session, request, "get_metadef_namespace")
    for action in (
        "list_metadef_resource_types",
        "get_metadef_objects",
        "get_metadef_properties",
        "get_metadef_tags",
    ):
        common.enforce(request, action, namespace)
    return render_detail(session, namespace, request.arg("resource_type"))


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    namespace = common.find_namespace(session, request.context, request.path_params["namespace"])
    ref = common.body_of(request, schemas.NAMESPACE, common.GENERATED)
    common.enforce(request, "modify_metadef_namespace", namespace)
    name = ref["namespace"]
    if name != namespace.namespace and _name_taken(session, name, but=namespace.id):
        raise rest.Conflict(
            "Invalid update. It would result in a duplicate metadata definition namespace "
            f"with the same name of {name}"
        )
    # A replacement, as in Glance: what the body leaves out falls back to the defaults.
    namespace.namespace = name
    namespace.display_name = ref.get("display_name")
    namespace.description = ref.get("description")
    namespace.visibility = ref.get("visibility") or "private"
    namespace.protected = bool(ref.get("protected", False))
    namespace.owner = ref.get("owner") or request.context.project_id
    common.touch(namespace)
    session.flush()
    return render_links(render_base(namespace), namespace)


def _protected(namespace: models.MetadefNamespace) -> None:
    common.check_unprotected(namespace, "namespace", namespace.namespace)


def delete_namespace(request: rest.ApiRequest, session: Session) -> None:
    namespace = common.namespace_for(session, request, "delete_metadef_namespace")
    _protected(namespace)
    for table in (
        models.MetadefTag,
        models.MetadefObject,
        models.MetadefProperty,
        models.MetadefNamespaceResourceType,
    ):
        session.execute(delete(table).where(table.namespace_id == namespace.id))
    session.delete(namespace)


def _delete_contents(request: rest.ApiRequest, session: Session, table: Any, *actions: str) -> None:
    namespace = common.namespace_for(session, request, "delete_metadef_namespace")
    for action in actions:
        common.enforce(request, action, namespace)
    _protected(namespace)
    session.execute(delete(table).where(table.namespace_id == namespace.id))


def delete_objects(request: rest.ApiRequest, session: Session) -> None:
    _delete_contents(request, session, models.MetadefObject)


def delete_properties(request: rest.ApiRequest, session: Session) -> None:
    _delete_contents(request, session, models.MetadefProperty)


def delete_tags(request: rest.ApiRequest, session: Session) -> None:
    _delete_contents(request, session, models.MetadefTag, "delete_metadef_tags")


NS = common.NAMESPACES_PATH + "/{namespace}"
ROUTES = [
    rest.Route("GET", common.NAMESPACES_PATH, list_namespaces),
    rest.Route("POST", common.NAMESPACES_PATH, create),
    rest.Route("GET", NS, show),
    rest.Route("PUT", NS, update),
    rest.Route("DELETE", NS, delete_namespace),
    rest.Route("DELETE", NS + "/objects", delete_objects),
    rest.Route("DELETE", NS + "/properties", delete_properties),
    rest.Route("DELETE", NS + "/tags", delete_tags),
]
