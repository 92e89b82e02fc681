"""Metadef objects: named groups of property definitions in a namespace.

PUT replaces an object (what the body leaves out is cleared) and may rename it.
The list is every object of the namespace in creation order, as Glance answers
(it takes but ignores limit, marker and sort).
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
        f"A metadata definition object with name={name} already exists in "
        f"namespace={namespace.namespace}."
    )


def _get(
    session: Session, namespace: models.MetadefNamespace, name: str
) -> models.MetadefObject | None:
    return session.scalars(
        select(models.MetadefObject).where(
            models.MetadefObject.namespace_id == namespace.id, models.MetadefObject.name == name
        )
    ).first()


def _existing(
    session: Session, namespace: models.MetadefNamespace, name: str
) -> models.MetadefObject:
    found = _get(session, namespace, name)
    if found is None:
        raise rest.NotFound(
            f"The metadata definition object with name={name} was not found in "
            f"namespace={namespace.namespace}."
        )
    return found


def _definitions(ref: dict[str, Any]) -> dict[str, Any]:
    return {k: common.property_schema(v) for k, v in (ref.get("properties") or {}).items()}


def _render(namespace: models.MetadefNamespace, obj: models.MetadefObject) -> dict[str, Any]:
    return common.render_object(namespace.namespace, obj)


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = common.body_of(request, schemas.OBJECT, common.GENERATED)
    namespace = common.namespace_for(session, request, "add_metadef_object")
    if _get(session, namespace, ref["name"]) is not None:
        raise duplicate(ref["name"], namespace)
    moment = common.now()
    obj = models.MetadefObject(
        namespace_id=namespace.id,
        name=ref["name"],
        description=ref.get("description"),
        required=ref.get("required"),
        properties=_definitions(ref),
        created_at=moment,
        updated_at=moment,
    )
    session.add(obj)
    try:
        session.flush()
    except IntegrityError:
        raise duplicate(ref["name"], namespace) from None
    return rest.ApiResponse(201, _render(namespace, obj))


def list_objects(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.sort_dir(request)
    common.limit(request, None)
    namespace = common.namespace_for(session, request, "get_metadef_objects")
    rows = session.scalars(
        select(models.MetadefObject)
        .where(models.MetadefObject.namespace_id == namespace.id)
        .order_by(models.MetadefObject.id)
    )
    return {
        "objects": [_render(namespace, obj) for obj in rows],
        "schema": "v2/schemas/metadefs/objects",
    }


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    namespace = common.namespace_for(session, request, "get_metadef_object")
    return _render(namespace, _existing(session, namespace, request.path_params["name"]))


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = common.body_of(request, schemas.OBJECT, common.GENERATED)
    namespace = common.namespace_for(session, request, "modify_metadef_object")
    obj = _existing(session, namespace, request.path_params["name"])
    other = _get(session, namespace, ref["name"])
    if other is not None and other.id != obj.id:
        raise duplicate(ref["name"], namespace)
    obj.name = ref["name"]
    obj.description = ref.get("description")
    obj.required = ref.get("required")
    obj.properties = _definitions(ref)
    obj.updated_at = common.now()
    session.flush()
    return _render(namespace, obj)


def delete_object(request: rest.ApiRequest, session: Session) -> None:
    namespace = common.namespace_for(session, request, "delete_metadef_object")
    obj = _existing(session, namespace, request.path_params["name"])
    common.check_unprotected(namespace, "object", obj.name)
    session.delete(obj)


OBJECTS = common.NAMESPACES_PATH + "/{namespace}/objects"
ROUTES = [
    rest.Route("GET", OBJECTS, list_objects),
    rest.Route("POST", OBJECTS, create),
    rest.Route("GET", OBJECTS + "/{name}", show),
    rest.Route("PUT", OBJECTS + "/{name}", update),
    rest.Route("DELETE", OBJECTS + "/{name}", delete_object),
]
