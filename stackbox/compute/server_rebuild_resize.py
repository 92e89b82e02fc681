"""Rebuild, resize with confirm/revert, and the move they share with cold migration.

A resize is decided in the API's transaction: the old flavor's claim moves to the
migration's id and the new flavor is claimed on a host the scheduler picks (its own
host included: Nova's allow_resize_to_same_host), a ``compute_migration`` row records
it, and the server carries the new flavor with the old one kept for a revert. The
agent converges the ``resize_prep`` task (VERIFY_RESIZE when done). Confirm drops the
old claim; revert gives the old claim and flavor back and lets the agent undo it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import (
    common,
    errors,
    flavors,
    microversions,
    models,
    network_glue,
    notify,
    placement,
    quotas,
    server_views,
    states,
)
from stackbox.compute import server_action_base as base
from stackbox.compute import server_action_schemas as schemas
from stackbox.compute import server_power as power
from stackbox.db import session as db_session
from stackbox.image import access as image_access
from stackbox.image import models as image_models

SERVERS = "os_compute_api:servers:"
GIB = 1024**3
# Migrations a confirm or revert can still act on.
OPEN_MIGRATIONS = ("pre-migrating", "migrating", "post-migrating", "finished")


# --- rebuild --------------------------------------------------------------------------------


def find_image(session: Session, request: rest.ApiRequest, image_id: str) -> image_models.Image:
    """The active image a rebuild asks for (400 otherwise, as Nova's rebuild)."""
    try:
        image = image_access.get_visible(session, request.context, image_id)
    except rest.NotFound:
        raise errors.bad_request("Cannot find image for rebuild") from None
    if image.status != "active":
        raise errors.bad_request(f"Image {image_id} is not active.")
    return image


def check_flavor_fits(flavor: dict[str, Any], image: image_models.Image) -> None:
    """Nova's flavor/image checks: memory, and disk where the flavor has a root disk."""
    if int(flavor.get("memory_mb", 0)) < (image.min_ram or 0):
        raise errors.bad_request("Flavor's memory is too small for requested image.")
    root_gb = int(flavor.get("root_gb", 0))
    if root_gb == 0:
        return
    if image.size and image.size > root_gb * GIB:
        raise errors.bad_request(
            f"Flavor's disk is too small for requested image. Flavor disk is {root_gb * GIB} "
            f"bytes, image is {image.size} bytes."
        )
    if (image.min_disk or 0) > root_gb:
        raise errors.bad_request(
            "Flavor's disk is smaller than the minimum size specified in image metadata. "
            f"Flavor disk is {root_gb * GIB} bytes, minimum size is {image.min_disk * GIB} bytes."
        )


def _set_metadata(session: Session, server: models.Server, metadata: dict[str, str]) -> None:
    quotas.check_metadata_items(session, server.project_id, len(metadata))
    session.execute(
        delete(models.ServerMetadata).where(models.ServerMetadata.server_id == server.id)
    )
    for key, value in metadata.items():
        session.add(models.ServerMetadata(server_id=server.id, key=key, value=value))


def _set_key(session: Session, request: rest.ApiRequest, server: models.Server, name: Any) -> None:
    """From 2.54: the caller's keypair (another user of the project may rebuild)."""
    if name is None:
        server.key_name = None
        server.key_data = None
        return
    pair = session.scalars(
        select(models.KeyPair).where(
            models.KeyPair.user_id == request.context.user_id, models.KeyPair.name == name
        )
    ).first()
    if pair is None:
        raise errors.bad_request("Invalid key_name provided.")
    server.key_name = pair.name
    server.key_data = pair.public_key


def rebuild(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    version = microversions_of(request)
    body = base.whole(request, "rebuild", schemas.rebuild(version))
    password = body.get("adminPass") or power.generate_password()

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, SERVERS + "rebuild")
        if "trusted_image_certificates" in body:
            common.enforce(request, SERVERS + "rebuild:trusted_certs", common.server_target(server))
        base.check_lock(request, server)
        base.check_action(server, "rebuild", "rebuild")
        image = find_image(session, request, body["imageRef"])
        check_flavor_fits(server.flavor or {}, image)
        files = [
            (str(item.get("path", "")), str(item.get("contents", "")).encode())
            for item in body.get("personality") or []
        ]
        quotas.check_personality(session, server.project_id, files)
        if "key_name" in body:
            _set_key(session, request, server, body["key_name"])
        if "metadata" in body:
            _set_metadata(session, server, body["metadata"])
        server.image_ref = image.id
        for field, attribute in (
            ("name", "name"),
            ("description", "description"),
            ("accessIPv4", "access_ip_v4"),
            ("accessIPv6", "access_ip_v6"),
            ("user_data", "user_data"),
            ("hostname", "hostname"),
            ("trusted_image_certificates", "trusted_image_certificates"),
        ):
            if field in body:
                setattr(server, attribute, body[field])
        if "OS-DCF:diskConfig" in body:
            server.auto_disk_config = body["OS-DCF:diskConfig"] == "AUTO"
        server.admin_password = password
        server.progress = 0
        # The rebuild ends in the state it ran from; an errored server comes back active.
        if server.vm_state == states.ERROR:
            server.vm_state = states.ACTIVE
        base.start_task(session, request, server, states.REBUILDING, "rebuild")
        session.flush()
        view = server_views.render(session, request, server, purpose="rebuild")
        view["adminPass"] = password
        if base.at_least(request, "2.57"):
            view["user_data"] = server.user_data
        return rest.ApiResponse(
            202,
            {"server": view},
            headers={"Location": common.link(request, f"servers/{server.id}")[0]["href"]},
        )

    return db.run(apply, write=True)


def microversions_of(request: rest.ApiRequest) -> tuple[int, int]:
    version = microversions.of(request)
    return (version.major, version.minor)


# --- the move (resize and cold migration) ---------------------------------------------------


def group_of(session: Session, server: models.Server) -> models.ServerGroup | None:
    member = session.scalars(
        select(models.ServerGroupMember).where(models.ServerGroupMember.server_id == server.id)
    ).first()
    return session.get(models.ServerGroup, member.group_id) if member else None


def check_host_up(server: models.Server) -> None:
    """Nova's check_instance_host: a server must be placed (409 InstanceNotReady)."""
    if not server.host:
        raise errors.conflict(f"Instance {server.id} is not ready")


def begin_move(
    session: Session,
    request: rest.ApiRequest,
    server: models.Server,
    new_flavor: dict[str, Any],
    *,
    migration_type: str,
    action: str,
) -> models.Migration:
    """Claim ``new_flavor`` on a host the scheduler picks, record the migration, and
    leave ``resize_prep`` for the agent(s); 400 NoValidHost when no host fits."""
    now = common.now()
    migration = models.Migration(
        uuid=common.new_id(),
        server_id=server.id,
        project_id=server.project_id,
        user_id=server.user_id,
        migration_type=migration_type,
        status="pre-migrating",
        source_compute=server.host,
        source_node=server.node,
        old_flavor_id=str((server.flavor or {}).get("id", "")),
        new_flavor_id=str(new_flavor.get("id", "")),
        old_vm_state=server.vm_state,
        created_at=now,
        updated_at=now,
    )
    try:
        node = placement.claim_resize(
            session, server, new_flavor, migration.uuid, group=group_of(session, server)
        )
    except placement.NoValidHost as exc:
        raise errors.bad_request(str(exc)) from None
    migration.dest_compute = node.host
    migration.dest_node = node.hypervisor_hostname
    session.add(migration)
    source = server.host
    # The server shows the new flavor once the agent has resized it (VERIFY_RESIZE).
    server.old_flavor = dict(server.flavor or {})
    server.new_flavor = dict(new_flavor)
    server.progress = 0
    if node.host != source:
        server.host = node.host
        server.node = node.hypervisor_hostname
        network_glue.rebind(session, server)
        # The source's agent lets its copy go once the server is no longer on its host.
        notify.server(session, server.id, source)
    base.start_task(session, request, server, states.RESIZE_PREP, action)
    return migration


def open_migration(session: Session, server: models.Server) -> models.Migration:
    migration = session.scalars(
        select(models.Migration)
        .where(
            models.Migration.server_id == server.id,
            models.Migration.status.in_(OPEN_MIGRATIONS),
        )
        .order_by(models.Migration.id.desc())
    ).first()
    if migration is None:
        raise errors.bad_request("Instance has not been resized.")
    return migration


def _new_flavor(session: Session, request: rest.ApiRequest, flavor_ref: str) -> models.Flavor:
    try:
        flavor = flavors.find(session, request, flavor_ref)
    except rest.NotFound as exc:
        raise errors.bad_request(exc.message) from None
    return flavor


def resize(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = base.whole(request, "resize", schemas.RESIZE)
    flavor_ref = str(body["flavorRef"]).rstrip("/").rsplit("/", 1)[-1]

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, SERVERS + "resize")
        base.check_lock(request, server)
        base.check_action(server, "resize", "resize")
        check_host_up(server)
        current = server.flavor or {}
        flavor = _new_flavor(session, request, flavor_ref)
        if flavor.flavorid == str(current.get("id", "")):
            raise errors.bad_request("When resizing, instances must change flavor!")
        if flavor.disabled:
            raise errors.bad_request(f"Flavor {flavor_ref} could not be found.")
        if flavor.root_gb == 0 and int(current.get("root_gb", 0)) != 0:
            raise errors.bad_request(
                "Server disk was unable to be resized because: Resize to zero disk flavor is "
                "not allowed."
            )
        new = flavors.copy_for_server(session, flavor)
        image = session.get(image_models.Image, server.image_ref) if server.image_ref else None
        if image is not None:
            check_flavor_fits(new, image)
        quotas.check_resize(session, server.project_id, server.user_id, current, new)
        if "OS-DCF:diskConfig" in body:
            server.auto_disk_config = body["OS-DCF:diskConfig"] == "AUTO"
        begin_move(session, request, server, new, migration_type="resize", action="resize")
        return base.accepted()

    return db.run(apply, write=True)


def confirm_resize(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    base.member(request, "confirmResize", base.ANY)

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, SERVERS + "confirm_resize", with_user=False)
        base.check_lock(request, server)
        base.check_action(server, "confirmResize", "confirmResize")
        migration = open_migration(session, server)
        placement.confirm_resize(session, migration.uuid)
        migration.status = "confirmed"
        migration.updated_at = common.now()
        stopped = migration.old_vm_state == states.STOPPED
        server.vm_state = states.STOPPED if stopped else states.ACTIVE
        server.power_state = states.SHUTDOWN if stopped else states.RUNNING
        server.old_flavor = None
        server.new_flavor = None
        base.finish_now(session, request, server, "confirmResize", event="compute_confirm_resize")
        base.nudge(session, server)
        if migration.source_compute and migration.source_compute != server.host:
            notify.server(session, server.id, migration.source_compute)
        return rest.ApiResponse(204)

    return db.run(apply, write=True)


def revert_resize(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    base.member(request, "revertResize", base.ANY)

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, SERVERS + "revert_resize", with_user=False)
        base.check_lock(request, server)
        base.check_action(server, "revertResize", "revertResize")
        migration = open_migration(session, server)
        if not server.old_flavor:
            raise errors.bad_request("Flavor used by the instance could not be found.")
        node = placement.revert_resize(session, server, migration.uuid)
        moved_from = server.host
        if node is not None and node.host != server.host:
            server.host = node.host
            server.node = node.hypervisor_hostname
            network_glue.rebind(session, server)
            notify.server(session, server.id, moved_from)
        server.flavor = dict(server.old_flavor)
        server.new_flavor = None
        migration.status = "reverted"
        migration.updated_at = common.now()
        # The revert runs from the state it returns to (the agent undoes the resize).
        stopped = migration.old_vm_state == states.STOPPED
        server.vm_state = states.STOPPED if stopped else states.ACTIVE
        base.start_task(session, request, server, states.RESIZE_REVERTING, "revertResize")
        return base.accepted()

    return db.run(apply, write=True)


ACTIONS: list[base.Action] = [
    base.Action("rebuild", rebuild),
    base.Action("resize", resize),
    base.Action("confirmResize", confirm_resize),
    base.Action("revertResize", revert_resize),
]
