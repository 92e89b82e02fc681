"""Metadef properties: JSON-schema-like definitions (type, title, enum, bounds, ...)
of the keys a namespace describes. PUT replaces a definition and may rename it.

``GET .../properties/{name}?resource_type=X`` accepts the name with X's prefix
(``hw_cpu_cores`` for ``cpu_cores`` under prefix ``hw_``), as Glance does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.image import metadefs_common as common
from stackbox.image import metadefs_schemas as schemas
from stackbox.image import models


def duplicate(name: str, namespace: models.MetadefNamespace) -> rest.Conflict:
    return rest.Conflict(
        f"A metadata definition property with name={name} already exists in "
        f"namespace={namespace.namespace}."
    )


def not_found(name: str, namespace: models.MetadefNamespace) -> rest.NotFound:
    return rest.NotFound(
        f"The metadata definition property with name={name} was not found in "
        f"namespace={namespace.namespace}."
    )


def _get(
    session: Session, namespace: models.MetadefNamespace, name: str
) -> models.MetadefProperty | None:
    return session.scalars(
        select(models.MetadefProperty).where(
            models.MetadefProperty.namespace_id == namespace.id,
            models.MetadefProperty.name == name,
        )
    ).first()


def _existing(
    session: Session, namespace: models.MetadefNamespace, name: str
) -> models.MetadefProperty:
    found = _get(session, namespace, name)
    if found is None:
        raise not_found(name, namespace)
    return found


def _render(prop: models.MetadefProperty) -> dict[str, Any]:
    return common.render_property(prop.json_schema, prop.name)


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = common.body_of(request, schemas.PROPERTY, common.TIMESTAMPS)
    namespace = common.namespace_for(session, request, "add_metadef_property")
    if _get(session, namespace, ref["name"]) is not None:
        raise duplicate(ref["name"], namespace)
    moment = common.now()
    prop = models.MetadefProperty(
        namespace_id=namespace.id,
        name=ref["name"],
        json_schema=common.property_schema(ref),
        created_at=moment,
        updated_at=moment,
    )
    session.add(prop)
    try:
        session.flush()
    except IntegrityError:
        raise duplicate(ref["name"], namespace) from None
    return rest.ApiResponse(201, _render(prop))


def list_properties(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    namespace = common.namespace_for(session, request, "get_metadef_properties")
    rows = session.scalars(
        select(models.MetadefProperty)
        .where(models.MetadefProperty.namespace_id == namespace.id)
        .order_by(models.MetadefProperty.id)
    )
    return {"properties": {p.name: common.render_property(p.json_schema) for p in rows}}


def _unprefixed(
    session: Session, request: rest.ApiRequest, namespace: models.MetadefNamespace, name: str
) -> str:
    resource_type = request.arg("resource_type")
    if not resource_type:
        return name
    common.enforce(request, "get_metadef_resource_type", namespace)
    link = next(
        (link for rt, link in common.associations(session, namespace) if rt.name == resource_type),
        None,
    )
    if link is None:
        raise rest.NotFound(
            "The metadata definition resource-type association of "
            f"resource-type={resource_type} to namespace={namespace.namespace}, was not found."
        )
    prefix = link.prefix
    if not prefix or not name.startswith(prefix):
        raise rest.NotFound(
            f"Property {name} does not start with the expected resource type association "
            f"prefix of '{prefix}'."
        )
    return name[len(prefix) :]


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    namespace = common.namespace_for(session, request, "get_metadef_property")
    name = _unprefixed(session, request, namespace, request.path_params["name"])
    return _render(_existing(session, namespace, name))


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = common.body_of(request, schemas.PROPERTY, common.TIMESTAMPS)
    namespace = common.namespace_for(session, request, "modify_metadef_property")
    prop = _existing(session, namespace, request.path_params["name"])
    other = _get(session, namespace, ref["name"])
    if other is not None and other.id != prop.id:
        raise duplicate(ref["name"], namespace)
    prop.name = ref["name"]
    prop.json_schema = common.property_schema(ref)
    prop.updated_at = common.now()
    session.flush()
    return _render(prop)


def delete_property(request: rest.ApiRequest, session: Session) -> None:
    namespace = common.namespace_for(session, request, "remove_metadef_property")
    prop = _existing(session, namespace, request.path_params["name"])
    common.check_unprotected(namespace, "property", prop.name)
    session.delete(prop)


PROPERTIES = common.NAMESPACES_PATH + "/{namespace}/properties"
ROUTES = [
    rest.Route("GET", PROPERTIES, list_properties),
    rest.Route("POST", PROPERTIES, create),
    rest.Route("GET", PROPERTIES + "/{name}", show),
    rest.Route("PUT", PROPERTIES + "/{name}", update),
    rest.Route("DELETE", PROPERTIES + "/{name}", delete_property),
]
