"""Metadef resource types (the kinds of resource a namespace applies to) and their
associations with namespaces, each with an optional property-name prefix and
properties target.

Glance gets its resource types from the default catalog that ``glance-manage
db_load_metadefs`` loads (DevStack does so); stackbox loads no namespaces but records
the resource types that catalog uses when it starts (``seed_standard``).
Associating a namespace with a new name creates that resource type.
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

# The resource types of Glance's default metadefs catalog.
STANDARD = (
    "OS::Glance::Image",
    "OS::Cinder::Volume",
    "OS::Nova::Flavor",
    "OS::Nova::Aggregate",
    "OS::Nova::Server",
    "OS::Trove::Instance",
)


def _by_name(session: Session, name: str) -> models.MetadefResourceType | None:
    return session.scalars(
        select(models.MetadefResourceType).where(models.MetadefResourceType.name == name)
    ).first()


def _new(name: str, protected: bool) -> models.MetadefResourceType:
    moment = common.now()
    return models.MetadefResourceType(
        name=name, protected=protected, created_at=moment, updated_at=moment
    )


def seed_standard(session: Session) -> None:
    """Record the standard resource types (idempotent; run at every start)."""
    known = set(session.scalars(select(models.MetadefResourceType.name)))
    missing = [name for name in STANDARD if name not in known]
    if not missing:
        return
    session.add_all(_new(name, True) for name in missing)


def list_resource_types(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "list_metadef_resource_types")
    rows = session.scalars(
        select(models.MetadefResourceType).order_by(models.MetadefResourceType.id)
    )
    return {"resource_types": [{"name": rt.name, **common.stamps(rt)} for rt in rows]}


def associate(
    session: Session, namespace: models.MetadefNamespace, ref: dict[str, Any]
) -> dict[str, Any]:
    """Associate ``ref["name"]`` with ``namespace`` (creating the resource type if new)."""
    name = ref["name"]
    resource_type = _by_name(session, name)
    if resource_type is None:
        resource_type = _new(name, False)
        session.add(resource_type)
        session.flush()
    duplicate = rest.Conflict(
        f"The metadata definition resource-type association of resource-type={name} to "
        f"namespace={namespace.namespace} already exists."
    )
    if session.get(models.MetadefNamespaceResourceType, (namespace.id, resource_type.id)):
        raise duplicate
    moment = common.now()
    link = models.MetadefNamespaceResourceType(
        namespace_id=namespace.id,
        resource_type_id=resource_type.id,
        prefix=ref.get("prefix"),
        properties_target=ref.get("properties_target"),
        created_at=moment,
        updated_at=moment,
    )
    session.add(link)
    try:
        session.flush()
    except IntegrityError:
        raise duplicate from None
    return common.render_association(resource_type, link)


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = common.body_of(request, schemas.RESOURCE_TYPE, common.TIMESTAMPS)
    namespace = common.namespace_for(session, request, "add_metadef_resource_type_association")
    return rest.ApiResponse(201, associate(session, namespace, ref))


def list_associations(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    namespace = common.namespace_for(session, request, "list_metadef_resource_types")
    links = []
    if common.allowed(request, "get_metadef_resource_type", namespace):
        links = [
            common.render_association(rt, link)
            for rt, link in common.associations(session, namespace)
        ]
    return {"resource_type_associations": links}


def delete_association(request: rest.ApiRequest, session: Session) -> None:
    namespace = common.namespace_for(session, request, "remove_metadef_resource_type_association")
    name = request.path_params["resource_type"]
    link = next(
        (link for rt, link in common.associations(session, namespace) if rt.name == name), None
    )
    if link is None:
        raise rest.NotFound(f"Failed to find resource type {name} to delete")
    common.check_unprotected(namespace, "resource-type-association", name)
    session.delete(link)


ASSOCIATIONS = common.NAMESPACES_PATH + "/{namespace}/resource_types"
ROUTES = [
    # A write transaction: the first listing records the standard resource types.
    rest.Route("GET", "/v2/metadefs/resource_types", list_resource_types),
    rest.Route("GET", ASSOCIATIONS, list_associations),
    rest.Route("POST", ASSOCIATIONS, create),
    rest.Route("DELETE", ASSOCIATIONS + "/{resource_type}", delete_association),
]
