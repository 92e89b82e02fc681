"""``shelve``, ``shelveOffload`` and ``unshelve``.

Shelving snapshots the server into ``<name>-shelved`` (a queued image the agent
fills, as createImage) and powers it off (SHELVED); offloading lets its host go (the
claims and port bindings: SHELVED_OFFLOADED, no host). Unshelving an offloaded server
schedules it again (a new claim, its ports bound to the new host) and the agent makes
it anew; a shelved one is just powered on. The shelve image goes when the server is
unshelved, as Nova's compute deletes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import (
    common,
    errors,
    models,
    network_glue,
    placement,
    server_create,
    states,
)
from stackbox.compute import server_action_base as base
from stackbox.compute import server_rebuild_resize as moves
from stackbox.compute import server_snapshot as snapshots
from stackbox.db import session as db_session
from stackbox.image import images as image_rows
from stackbox.image import models as image_models

POLICY = "os_compute_api:os-shelve:"
SHELVE_SUFFIX = "-shelved"

_UNSHELVE_V277: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {"availability_zone": {"type": "string", "minLength": 1, "maxLength": 255}},
    "required": ["availability_zone"],
    "additionalProperties": False,
}
_UNSHELVE_V291: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {
        "availability_zone": {"type": ["string", "null"]},
        "host": {"type": "string"},
    },
    "additionalProperties": False,
}


def shelve(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    base.member(request, "shelve", base.ANY)

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, POLICY + "shelve")
        base.check_lock(request, server)
        row = base.check_action(server, "shelve", "shelve")
        if server.image_ref:
            snapshots.create_image(
                session, request, server, f"{server.name}{SHELVE_SUFFIX}", "snapshot"
            )
        base.start_task(session, request, server, row.task, "shelve")
        return base.accepted()

    return db.run(apply, write=True)


def shelve_offload(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    base.member(request, "shelveOffload", base.ANY)

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, POLICY + "shelve_offload")
        base.check_lock(request, server)
        row = base.check_action(server, "shelveOffload", "shelveOffload")
        base.start_task(session, request, server, row.task, "shelveOffload")
        return base.accepted()

    return db.run(apply, write=True)


def _shelve_images(session: Session, server: models.Server) -> list[image_models.Image]:
    """The snapshots shelving made of the server (newest first)."""
    P = image_models.ImageProperty
    of_server = select(P.image_id).where(P.name == "instance_uuid", P.value == server.id)
    return list(
        session.scalars(
            select(image_models.Image)
            .where(
                image_models.Image.id.in_(of_server.scalar_subquery()),
                image_models.Image.name.like(f"%{SHELVE_SUFFIX}"),
            )
            .order_by(image_models.Image.created_at.desc())
        )
    )


def _unshelve_body(request: rest.ApiRequest) -> dict[str, Any]:
    if base.at_least(request, "2.91"):
        body = base.member(request, "unshelve", _UNSHELVE_V291)
    elif base.at_least(request, "2.77"):
        body = base.member(request, "unshelve", _UNSHELVE_V277)
    else:
        body = base.member(request, "unshelve", base.ANY)
        return {}
    return body if isinstance(body, dict) else {}


def _place(
    session: Session,
    request: rest.ApiRequest,
    server: models.Server,
    zone: str | None,
    host: str | None,
) -> None:
    """Schedule an offloaded server again (its claim, host and node; ports rebound)."""
    try:
        placement.schedule(
            session,
            [server],
            flavor=server.flavor or {},
            availability_zone=zone,
            requested_host=host,
            hints=dict(server.scheduler_hints or {}),
            group=moves.group_of(session, server),
        )
    except placement.NoValidHost as exc:
        raise errors.bad_request(str(exc)) from None
    network_glue.rebind(session, server)


def unshelve(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = _unshelve_body(request)
    zone_given = "availability_zone" in body
    zone = body.get("availability_zone")
    host = body.get("host")

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, POLICY + "unshelve", with_user=False)
        if host:
            common.enforce(request, POLICY + "unshelve_to_host", {"project_id": server.project_id})
        base.check_lock(request, server)
        row = base.check_action(server, "unshelve", "unshelve")
        offloaded = server.vm_state == states.SHELVED_OFFLOADED
        if (zone_given or host) and not offloaded:
            raise errors.conflict(
                f"The unshelve action cannot be performed on instance {server.id} while it "
                f"is in vm_state {server.vm_state}; only an offloaded server may move."
            )
        if zone and zone not in server_create.available_zones(session):
            raise errors.bad_request("The requested availability zone is not available")
        if offloaded:
            if zone_given:
                server.requested_availability_zone = zone
            _place(session, request, server, server.requested_availability_zone, host)
        for image in _shelve_images(session, server):
            image_rows.delete_row(session, image)
        base.start_task(session, request, server, row.task, "unshelve")
        return base.accepted()

    return db.run(apply, write=True)


ACTIONS: list[base.Action] = [
    base.Action("shelve", shelve),
    base.Action("shelveOffload", shelve_offload),
    base.Action("unshelve", unshelve),
]
