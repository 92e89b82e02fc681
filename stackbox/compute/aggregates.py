"""Host aggregates (``os-aggregates``) and the availability zones they define.

An aggregate groups compute hosts and carries metadata; the ``availability_zone``
key makes its hosts a zone. A host in no zoned aggregate is in the default zone.
Nova's rules keep a host in one zone: adding it to an aggregate of another zone,
or renaming the zone of an aggregate whose hosts are zoned elsewhere, is refused;
so is moving a host that has servers into (or out of) a zone.

The zone readers and those rules live in ``aggregate_zones``; ``host_zone`` /
``host_zones`` / ``host_aggregates`` / ``default_zone`` are re-exported here for the
modules that read them (services, availability zones, the scheduler, servers).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import aggregate_zones, common, errors, microversions, models
from stackbox.image import models as image_models

ZONE_KEY = aggregate_zones.ZONE_KEY

# Printable, no leading/trailing whitespace (Nova's "name" format); zones also refuse ':'.
_NAME = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
_ZONE = r"^[^\s\x00-\x1f\x7f:](?:[^\x00-\x1f\x7f:]*[^\s\x00-\x1f\x7f:])?$"
# Updates accept names padded with spaces (stripped), as Nova's update schema does.
_PADDED_NAME = r"^\s*[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?\s*$"

NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _NAME}
ZONE = {
    "oneOf": [
        {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _ZONE},
        {"type": "null"},
    ]
}
HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9-._]*$"}

CREATE = {
    "type": "object",
    "properties": {"name": NAME, "availability_zone": ZONE},
    "required": ["name"],
    "additionalProperties": False,
}
UPDATE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _PADDED_NAME},
        "availability_zone": ZONE,
    },
    "additionalProperties": False,
    "anyOf": [{"required": ["name"]}, {"required": ["availability_zone"]}],
}
HOST_ACTION = {
    "type": "object",
    "properties": {"host": HOST},
    "required": ["host"],
    "additionalProperties": False,
}
SET_METADATA = {
    "type": "object",
    "properties": {
        "metadata": {
            "type": "object",
            "patternProperties": {
                r"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "null"], "maxLength": 255}
            },
            "additionalProperties": False,
        }
    },
    "required": ["metadata"],
    "additionalProperties": False,
}
IMAGES = {
    "type": "object",
    "properties": {
        "cache": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"id": {"type": "string", "format": "uuid"}},
                "required": ["id"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["cache"],
    "additionalProperties": False,
}


# What other modules read (defined with the zone rules).
host_zones = aggregate_zones.host_zones
host_zone = aggregate_zones.host_zone
host_aggregates = aggregate_zones.host_aggregates
default_zone = aggregate_zones.default_zone
remove_host_everywhere = aggregate_zones.remove_host_everywhere


# --- rendering ------------------------------------------------------------------------------


def _hosts_of(session: Session, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for aggregate_id, host in session.execute(
        select(models.AggregateHost.aggregate_id, models.AggregateHost.host)
        .where(models.AggregateHost.aggregate_id.in_(ids))
        .order_by(models.AggregateHost.host)
    ):
        found[aggregate_id].append(host)
    return found


def _render_many(
    request: rest.ApiRequest,
    session: Session,
    aggregates: list[models.Aggregate],
    *,
    with_members: bool = True,
) -> list[dict[str, Any]]:
    ids = [a.id for a in aggregates]
    metadata = aggregate_zones.metadata_of(session, ids)
    hosts = _hosts_of(session, ids) if with_members else {}
    show_uuid = microversions.at_least(request, "aggregate_uuid")
    bodies = []
    for aggregate in aggregates:
        meta = metadata.get(aggregate.id, {})
        body: dict[str, Any] = {
            "availability_zone": meta.get(ZONE_KEY),
            "created_at": common.isotime_micro(aggregate.created_at),
            "deleted": False,
            "deleted_at": None,
            "id": aggregate.id,
            "name": aggregate.name,
            "updated_at": common.isotime_micro(aggregate.updated_at),
        }
        if with_members:
            body["hosts"] = hosts.get(aggregate.id, [])
            body["metadata"] = dict(meta)
        if show_uuid:
            body["uuid"] = aggregate.uuid
        bodies.append(body)
    return bodies


def _one(request: rest.ApiRequest, session: Session, aggregate: models.Aggregate) -> dict[str, Any]:
    session.flush()
    return {"aggregate": _render_many(request, session, [aggregate])[0]}


# --- lookups and checks ---------------------------------------------------------------------


def _get(session: Session, raw_id: str) -> models.Aggregate:
    try:
        aggregate_id = int(raw_id)
    except ValueError:
        raise errors.bad_request("Invalid input received: id must be an integer") from None
    aggregate = session.get(models.Aggregate, aggregate_id)
    if aggregate is None:
        raise errors.not_found(f"Aggregate {raw_id} could not be found.")
    return aggregate


def _set_metadata(session: Session, aggregate: models.Aggregate, metadata: dict[str, Any]) -> None:
    """Null deletes a key (missing keys are ignored), anything else sets it."""
    for key, value in metadata.items():
        row = session.get(models.AggregateMetadata, (aggregate.id, key))
        if value is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(models.AggregateMetadata(aggregate_id=aggregate.id, key=key, value=value))
        else:
            row.value = value
    aggregate.updated_at = common.now()


def _name_taken(session: Session, name: str, but: int | None = None) -> bool:
    query = select(models.Aggregate.id).where(models.Aggregate.name == name)
    if but is not None:
        query = query.where(models.Aggregate.id != but)
    return session.scalar(query) is not None


def _flush_name(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        raise errors.conflict(f"Aggregate {name} already exists.") from None


def _compute_service(session: Session, host: str) -> models.Service:
    service = session.scalar(
        select(models.Service).where(
            models.Service.host == host, models.Service.binary == "nova-compute"
        )
    )
    if service is None:
        raise errors.not_found(f"Compute host {host} could not be found.")
    return service


# --- handlers -------------------------------------------------------------------------------


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-aggregates:index")
    aggregates = list(session.scalars(select(models.Aggregate).order_by(models.Aggregate.id)))
    return {"aggregates": _render_many(request, session, aggregates)}


def create(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-aggregates:create")
    body = common.body_of(request, "aggregate", CREATE)
    name = body["name"].strip()
    zone = body.get("availability_zone")
    zone = zone.strip() if zone else zone
    if _name_taken(session, name):
        raise errors.conflict(f"Aggregate {name} already exists.")
    aggregate = models.Aggregate(uuid=common.new_id(), name=name, created_at=common.now())
    session.add(aggregate)
    _flush_name(session, name)
    if zone:
        session.add(models.AggregateMetadata(aggregate_id=aggregate.id, key=ZONE_KEY, value=zone))
        session.flush()
    return {"aggregate": _render_many(request, session, [aggregate], with_members=False)[0]}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-aggregates:show")
    return _one(request, session, _get(session, request.path_params["aggregate_id"]))


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-aggregates:update")
    body = common.body_of(request, "aggregate", UPDATE)
    aggregate = _get(session, request.path_params["aggregate_id"])
    if "name" in body:
        name = body["name"].strip()
        if _name_taken(session, name, but=aggregate.id):
            raise errors.conflict(f"Aggregate {name} already exists.")
        aggregate.name = name
        aggregate.updated_at = common.now()
        _flush_name(session, name)
    if "availability_zone" in body:
        zone = body["availability_zone"]
        changes = {ZONE_KEY: zone.strip() if zone else zone}
        hosts = aggregate_zones.hosts_of(session, aggregate)
        aggregate_zones.check_zone_change(
            session, aggregate, changes, hosts, what="update", check_servers=True
        )
        _set_metadata(session, aggregate, changes)
    return _one(request, session, aggregate)


def delete_aggregate(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    common.enforce(request, "os_compute_api:os-aggregates:delete")
    aggregate = _get(session, request.path_params["aggregate_id"])
    if aggregate_zones.hosts_of(session, aggregate):
        raise errors.bad_request(
            f"Cannot remove host from aggregate {aggregate.id}. "
            "Reason: Host aggregate is not empty."
        )
    session.delete(aggregate)
    # Nova answers 200 with an empty body here (not 204).
    return rest.ApiResponse(status=200)


def _add_host(
    request: rest.ApiRequest, session: Session, aggregate: models.Aggregate, host: str
) -> None:
    common.enforce(request, "os_compute_api:os-aggregates:add_host")
    _compute_service(session, host)
    if session.get(models.AggregateHost, (aggregate.id, host)) is not None:
        raise errors.conflict(f"Aggregate {aggregate.id} already has host {host}.")
    aggregate_zones.check_host_joins(session, aggregate, host)
    session.add(models.AggregateHost(aggregate_id=aggregate.id, host=host))
    aggregate.updated_at = common.now()


def _remove_host(
    request: rest.ApiRequest, session: Session, aggregate: models.Aggregate, host: str
) -> None:
    common.enforce(request, "os_compute_api:os-aggregates:remove_host")
    member = session.get(models.AggregateHost, (aggregate.id, host))
    service_exists = session.scalar(
        select(models.Service.id).where(
            models.Service.host == host, models.Service.binary == "nova-compute"
        )
    )
    if member is None or service_exists is None:
        raise errors.not_found(f"Cannot remove host {host} in aggregate {aggregate.id}")
    aggregate_zones.check_host_leaves(session, aggregate, host)
    session.delete(member)
    aggregate.updated_at = common.now()


def _set_metadata_action(
    request: rest.ApiRequest, session: Session, aggregate: models.Aggregate, body: Any
) -> None:
    common.enforce(request, "os_compute_api:os-aggregates:set_metadata")
    metadata = body["metadata"]
    aggregate_zones.check_zone_change(
        session,
        aggregate,
        metadata,
        aggregate_zones.hosts_of(session, aggregate),
        what="metadata",
        check_servers=True,
    )
    _set_metadata(session, aggregate, metadata)


_ACTIONS = {"add_host": HOST_ACTION, "remove_host": HOST_ACTION, "set_metadata": SET_METADATA}


def action(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    body = request.body
    if not isinstance(body, dict) or not body:
        raise errors.bad_request("Malformed request body")
    name = next(iter(body))
    if name not in _ACTIONS or len(body) != 1:
        raise errors.bad_request(f"There is no such action: {name}")
    params = common.body_of(request, name, _ACTIONS[name])
    aggregate = _get(session, request.path_params["aggregate_id"])
    if name == "add_host":
        _add_host(request, session, aggregate, params["host"])
    elif name == "remove_host":
        _remove_host(request, session, aggregate, params["host"])
    else:
        _set_metadata_action(request, session, aggregate, params)
    return _one(request, session, aggregate)


def cache_images(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    """Image pre-caching (2.81). Accepted after checking the aggregate and that each image
    exists; nothing is cached (no driver keeps an image cache yet)."""
    microversions.require(request, "image_cache_api")
    common.enforce(request, "compute:aggregates:images")
    body = common.body_of(request, None, IMAGES)
    ids = [item["id"] for item in body["cache"]]
    if len(set(ids)) != len(ids):
        raise errors.bad_request("Duplicate images in request")
    _get(session, request.path_params["aggregate_id"])
    for image_id in ids:
        image = session.get(image_models.Image, image_id)
        if image is None or image.status == "deleted":
            raise errors.bad_request(f"Image {image_id} could not be found.")
    return rest.ApiResponse(status=202)


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-aggregates", index),
    rest.Route("POST", "/v2.1/os-aggregates", create),
    rest.Route("GET", "/v2.1/os-aggregates/{aggregate_id}", show),
    rest.Route("PUT", "/v2.1/os-aggregates/{aggregate_id}", update),
    rest.Route("DELETE", "/v2.1/os-aggregates/{aggregate_id}", delete_aggregate),
    rest.Route("POST", "/v2.1/os-aggregates/{aggregate_id}/action", action),
    rest.Route("POST", "/v2.1/os-aggregates/{aggregate_id}/images", cache_images),
]
