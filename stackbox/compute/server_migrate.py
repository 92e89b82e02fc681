"""Moving a server to another host: cold migration (``migrate``), live migration
(``os-migrateLive``) and ``evacuate`` from a failed host (admin actions).

The scheduler picks the destination in the API's transaction, its own host excluded,
and the claim moves there at once. A cold migration then runs as a resize to the same
flavor (VERIFY_RESIZE, confirm or revert); a live migration is done when the agents
converge (the server keeps running: the source's agent lets its copy go, the
destination's makes it); an evacuation rebuilds the server on the new host. With no
other host that fits (an all-in-one), each answers 400 NoValidHost.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import (
    common,
    errors,
    liveness,
    models,
    network_glue,
    notify,
    placement,
    runtime,
    states,
)
from stackbox.compute import server_action_base as base
from stackbox.compute import server_action_schemas as schemas
from stackbox.compute import server_power as power
from stackbox.compute import server_rebuild_resize as moves
from stackbox.compute.scheduler import request_spec
from stackbox.db import session as db_session

HOST: dict[str, Any] = {
    "type": ["string", "null"],
    "pattern": "^[a-zA-Z0-9-._]*$",
    "minLength": 1,
    "maxLength": 255,
}
MIGRATE = {"type": ["object", "null"], "properties": {"host": HOST}, "additionalProperties": False}
BLOCK_MIGRATION: dict[str, Any] = {
    "type": ["boolean", "string"],
    "enum": [*schemas.BOOLEAN_VALUES, "auto"],
}


def _live_schema(request: rest.ApiRequest) -> dict[str, Any]:
    if base.at_least(request, "2.25"):
        props: dict[str, Any] = {"block_migration": BLOCK_MIGRATION, "host": HOST}
        if base.at_least(request, "2.30") and not base.at_least(request, "2.68"):
            props["force"] = schemas.BOOLEAN
        return _LIVE_BY_PROPS[tuple(sorted(props))]
    return _LIVE_BY_PROPS[("block_migration", "disk_over_commit", "host")]


def _live(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


# Built once (validators are cached per schema object).
_LIVE_BY_PROPS: dict[tuple[str, ...], dict[str, Any]] = {
    ("block_migration", "disk_over_commit", "host"): _live(
        {"block_migration": schemas.BOOLEAN, "disk_over_commit": schemas.BOOLEAN, "host": HOST},
        ["block_migration", "disk_over_commit", "host"],
    ),
    ("block_migration", "host"): _live(
        {"block_migration": BLOCK_MIGRATION, "host": HOST}, ["block_migration", "host"]
    ),
    ("block_migration", "force", "host"): _live(
        {"block_migration": BLOCK_MIGRATION, "host": HOST, "force": schemas.BOOLEAN},
        ["block_migration", "host"],
    ),
}


def _evacuate_schema(request: rest.ApiRequest) -> dict[str, Any]:
    if not base.at_least(request, "2.14"):
        return _EVACUATE_V2
    if not base.at_least(request, "2.29"):
        return _EVACUATE_V214
    if not base.at_least(request, "2.68"):
        return _EVACUATE_V229
    return _EVACUATE_V268


_EVACUATE_V2: dict[str, Any] = {
    "type": "object",
    "properties": {
        "host": HOST,
        "onSharedStorage": schemas.BOOLEAN,
        "adminPass": schemas.ADMIN_PASSWORD,
    },
    "required": ["onSharedStorage"],
    "additionalProperties": False,
}
_EVACUATE_V214: dict[str, Any] = {
    "type": "object",
    "properties": {"host": HOST, "adminPass": schemas.ADMIN_PASSWORD},
    "additionalProperties": False,
}
_EVACUATE_V229: dict[str, Any] = {
    **_EVACUATE_V214,
    "properties": {**_EVACUATE_V214["properties"], "force": schemas.BOOLEAN},
}
_EVACUATE_V268 = _EVACUATE_V214


# --- choosing and claiming a destination -----------------------------------------------------


def _compute_host(session: Session, host: str) -> models.ComputeNode | None:
    return session.scalars(
        select(models.ComputeNode).where(models.ComputeNode.host == host)
    ).first()


def pick_destination(
    session: Session,
    server: models.Server,
    *,
    host: str | None = None,
    ignore_source: bool = True,
) -> models.ComputeNode:
    """A node for the server's flavor on another host (``host`` if asked, through the
    filters); 400 NoValidHost when none fits."""
    spec = request_spec.RequestSpec(
        flavor=placement.flavor_of(server.flavor or {}),
        availability_zone=server.requested_availability_zone,
        scheduler_hints=dict(server.scheduler_hints or {}),
        instance_group=placement.instance_group(
            session, moves.group_of(session, server), exclude=server.id
        ),
        project_id=server.project_id,
        instance_id=server.id,
        ignore_hosts=[server.host] if ignore_source and server.host else [],
        requested_host=host,
    )
    hosts = placement.host_states(session, lock=True)
    try:
        chosen = placement.scheduler().select(hosts, spec, [server.id])[0]
    except placement.NoValidHost as exc:
        raise errors.bad_request(str(exc)) from None
    node = session.scalars(
        select(models.ComputeNode).where(models.ComputeNode.uuid == chosen.uuid)
    ).one()
    return node


def move_claim(
    session: Session, server: models.Server, node: models.ComputeNode, keep_old_as: str | None
) -> None:
    """The server's claim goes to ``node``; the old one is kept under ``keep_old_as``
    (a migration's id, until confirm/revert) or dropped."""
    old = session.get(models.Allocation, server.id)
    flavor = placement.flavor_of(server.flavor or {})
    if old is not None:
        session.delete(old)
        session.flush()
        if keep_old_as:
            session.add(
                models.Allocation(
                    consumer_id=keep_old_as,
                    node_id=old.node_id,
                    server_id=server.id,
                    vcpus=old.vcpus,
                    memory_mb=old.memory_mb,
                    disk_gb=old.disk_gb,
                )
            )
    session.add(
        models.Allocation(
            consumer_id=server.id,
            node_id=node.id,
            server_id=server.id,
            vcpus=flavor.vcpus,
            memory_mb=flavor.memory_mb,
            disk_gb=flavor.disk_gb,
        )
    )
    session.flush()


def _migration(server: models.Server, kind: str, node: models.ComputeNode) -> models.Migration:
    now = common.now()
    flavor_id = str((server.flavor or {}).get("id", ""))
    return models.Migration(
        uuid=common.new_id(),
        server_id=server.id,
        project_id=server.project_id,
        user_id=server.user_id,
        migration_type=kind,
        status="pre-migrating",
        source_compute=server.host,
        source_node=server.node,
        dest_compute=node.host,
        dest_node=node.hypervisor_hostname,
        dest_host=node.host_ip,
        old_flavor_id=flavor_id,
        new_flavor_id=flavor_id,
        old_vm_state=server.vm_state,
        created_at=now,
        updated_at=now,
    )


def _relocate(session: Session, server: models.Server, node: models.ComputeNode) -> str | None:
    """Point the server (and its ports) at ``node``; returns the host it left."""
    source = server.host
    server.host = node.host
    server.node = node.hypervisor_hostname
    network_glue.rebind(session, server)
    if source and source != node.host:
        notify.server(session, server.id, source)
    return source


def _check_host_known(session: Session, host: str | None) -> None:
    if host and _compute_host(session, host) is None:
        raise errors.bad_request(f"Compute host {host} could not be found.")


# --- migrate (cold) ---------------------------------------------------------------------------


def migrate(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = base.member(request, "migrate", MIGRATE if base.at_least(request, "2.56") else base.ANY)
    host = body.get("host") if base.at_least(request, "2.56") and isinstance(body, dict) else None
    rule = "os_compute_api:os-migrate-server:migrate" + (":host" if host else "")

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, rule, with_user=False)
        base.check_lock(request, server)
        base.check_state(server, "migrate", (states.ACTIVE, states.STOPPED))
        moves.check_host_up(server)
        _check_host_known(session, host)
        if host and host == server.host:
            raise errors.bad_request(
                f"Unable to migrate instance ({server.id}) to current host ({host})."
            )
        node = pick_destination(session, server, host=host)
        migration = _migration(server, "migration", node)
        session.add(migration)
        move_claim(session, server, node, keep_old_as=migration.uuid)
        server.old_flavor = dict(server.flavor or {})
        server.new_flavor = dict(server.flavor or {})
        _relocate(session, server, node)
        base.start_task(session, request, server, states.RESIZE_PREP, "migrate")
        return base.accepted()

    return db.run(apply, write=True)


# --- live migration -------------------------------------------------------------------------


def migrate_live(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = base.member(request, "os-migrateLive", _live_schema(request))
    host = body.get("host")
    force = schemas.as_bool(body.get("force", False))
    if force and not host:
        raise errors.bad_request("Can't force to a non-provided destination")
    rule = "os_compute_api:os-migrate-server:migrate_live" + (":host" if host else "")

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, rule, with_user=False)
        base.check_lock(request, server)
        base.check_state(server, "os-migrateLive", (states.ACTIVE, states.PAUSED))
        _check_host_known(session, host)
        if host and host == server.host:
            raise errors.bad_request(
                f"Unable to migrate instance ({server.id}) to current host ({host})."
            )
        node = pick_destination(session, server, host=host)
        migration = _migration(server, "live-migration", node)
        migration.status = "completed"
        session.add(migration)
        move_claim(session, server, node, keep_old_as=None)
        _relocate(session, server, node)
        # The agents converge the move: the guest keeps its state on the new host.
        base.finish_now(session, request, server, "live-migration", event="compute_live_migration")
        base.nudge(session, server)
        return base.accepted()

    return db.run(apply, write=True)


# --- evacuate ---------------------------------------------------------------------------------


def _service(session: Session, host: str | None) -> models.Service | None:
    if not host:
        return None
    return session.scalars(
        select(models.Service).where(
            models.Service.host == host, models.Service.binary == placement.COMPUTE_BINARY
        )
    ).first()


def evacuate(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = base.member(request, "evacuate", _evacuate_schema(request))
    host = body.get("host")
    if base.at_least(request, "2.29") and schemas.as_bool(body.get("force", False)) and not host:
        raise errors.bad_request("Can't force to a non-provided destination")
    shared = None if base.at_least(request, "2.14") else schemas.as_bool(body["onSharedStorage"])
    if shared and "adminPass" in body:
        raise errors.bad_request("admin password can't be changed on existing disk")
    password = body.get("adminPass") or (None if shared else power.generate_password())

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, "os_compute_api:os-evacuate")
        if host is not None and _compute_host(session, host) is None:
            raise errors.not_found(f"Compute host {host} not found.")
        if server.host == host:
            raise errors.bad_request("The target host can't be the same one.")
        base.check_state(server, "evacuate", (states.ACTIVE, states.STOPPED, states.ERROR))
        service = _service(session, server.host)
        settings = runtime.get().settings
        if service is not None and liveness.is_up(
            service, common.now(), settings.service_down_time
        ):
            raise errors.bad_request(f"Compute service of {server.host} is still in use.")
        node = pick_destination(session, server, host=host)
        migration = _migration(server, "evacuation", node)
        migration.status = "accepted"
        session.add(migration)
        move_claim(session, server, node, keep_old_as=None)
        _relocate(session, server, node)
        if password:
            server.admin_password = password
        if base.at_least(request, "2.95") or server.vm_state == states.ERROR:
            # 2.95: an evacuated server arrives stopped; an errored one is rebuilt active.
            server.vm_state = states.STOPPED if base.at_least(request, "2.95") else states.ACTIVE
        base.start_task(session, request, server, states.REBUILDING, "evacuate")
        if base.at_least(request, "2.14"):
            return rest.ApiResponse(200, None)
        return rest.ApiResponse(200, {"adminPass": password} if password else None)

    return db.run(apply, write=True)


ACTIONS: list[base.Action] = [
    base.Action("migrate", migrate),
    base.Action("os-migrateLive", migrate_live),
    base.Action("evacuate", evacuate),
]
