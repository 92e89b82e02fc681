"""POST /servers: Nova's create, in one transaction (DESIGN §4).

Parse and check the body (``server_create_request``), then flavor, image, key pair,
security groups, networks, zone and quotas; write the server rows (BUILD, task
scheduling, generation 1); add them to their server group; place them (host, node,
zone and claims from ``placement``); bind ports on the host; record the ``create``
action and nudge the host's agent. A request no host can take still answers 202: its
servers go to ERROR with a "No valid host was found." fault and get no ports. Any
other error answers 4xx and leaves nothing behind.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import (
    actions_log,
    aggregates,
    common,
    errors,
    flavors,
    keypairs,
    models,
    network_glue,
    notify,
    placement,
    quotas,
    server_create_request,
    server_groups,
    states,
)
from stackbox.compute.server_create_request import TRUE_STRINGS, Ask
from stackbox.image import access as image_access
from stackbox.image import models as image_models

BUILD_EVENT = "compute__do_build_and_run_instance"
SCHEDULE_EVENT = "conductor_schedule_and_build_instances"
COMPUTE_BINARY = "nova-compute"


# --- checks -----------------------------------------------------------------------------------


def _flavor(session: Session, request: rest.ApiRequest, ref: str) -> models.Flavor:
    try:
        flavor = flavors.find(session, request, ref)
    except rest.NotFound:
        raise errors.bad_request(f"Flavor {ref} could not be found.") from None
    if flavor.disabled:
        raise errors.bad_request(f"Flavor {ref} could not be found.")
    return flavor


def _image(
    session: Session, request: rest.ApiRequest, image_id: str, flavor: models.Flavor, ask: Ask
) -> tuple[image_models.Image | None, dict[str, str]]:
    if not image_id:
        return None, {}
    try:
        image = image_access.get_visible(session, request.context, image_id)
    except rest.ApiError:
        raise errors.bad_request("Can not find requested image") from None
    if image.status != "active":
        raise errors.bad_request(f"Image {image_id} is not active.")
    props = dict(
        session.execute(
            select(image_models.ImageProperty.name, image_models.ImageProperty.value).where(
                image_models.ImageProperty.image_id == image.id
            )
        ).all()
    )
    if flavor.memory_mb < int(image.min_ram or 0):
        raise errors.bad_request("Flavor's memory is too small for requested image.")
    gib = 1024**3
    disk = flavor.root_gb * gib
    if disk:
        if int(image.size or 0) > disk:
            raise errors.bad_request(
                "Flavor's disk is too small for requested image. Flavor disk is "
                f"{disk} bytes, image is {int(image.size or 0)} bytes."
            )
        if int(image.min_disk or 0) * gib > disk:
            raise errors.bad_request(
                "Flavor's disk is smaller than the minimum size specified in image metadata. "
                f"Flavor disk is {disk} bytes, minimum size is {int(image.min_disk) * gib} bytes."
            )
    elif not common.allowed(request, "os_compute_api:servers:create:zero_disk_flavor"):
        raise errors.forbidden("Only volume-backed servers are allowed for flavors with zero disk.")
    if ask.auto_disk_config and props.get("auto_disk_config", "").lower() == "disabled":
        raise errors.bad_request(
            f"Requested instance images {image_id} which have auto disk config disabled."
        )
    return image, props


def _key(session: Session, request: rest.ApiRequest, name: str | None) -> models.KeyPair | None:
    if name is None:
        return None
    user_id = request.context.user_id or ""
    lookup = getattr(keypairs, "get_for_boot", None)
    if lookup is not None:
        try:
            found: models.KeyPair | None = lookup(session, user_id, name)
        except rest.ApiError:
            found = None
    else:
        found = session.scalars(
            select(models.KeyPair).where(
                models.KeyPair.user_id == user_id, models.KeyPair.name == name
            )
        ).first()
    if found is None:
        raise errors.bad_request("Invalid key_name provided.")
    return found


def available_zones(session: Session) -> set[str]:
    """Zones with an enabled compute service (Nova's get_only_available zones)."""
    zones = aggregates.host_zones(session)
    default = aggregates.default_zone()
    return {
        zones.get(host, default)
        for (host,) in session.execute(
            select(models.Service.host).where(
                models.Service.binary == COMPUTE_BINARY, models.Service.disabled.is_(False)
            )
        )
    }


def _node_host(session: Session, node: str) -> str:
    host = session.scalar(
        select(models.ComputeNode.host).where(models.ComputeNode.hypervisor_hostname == node)
    )
    if host is None:
        raise errors.bad_request(f"Compute host {node} could not be found.")
    return host


def _check_destination(session: Session, ask: Ask) -> None:
    """2.74 host / hypervisor_hostname must name a compute node (Nova's 400)."""
    if ask.requested_host:
        found = session.scalar(
            select(models.ComputeNode.id).where(models.ComputeNode.host == ask.requested_host)
        )
        if found is None:
            raise errors.bad_request(f"Compute host {ask.requested_host} could not be found.")
    if ask.requested_node:
        host = _node_host(session, ask.requested_node)
        if ask.requested_host and host != ask.requested_host:
            raise errors.bad_request(f"Compute host {ask.requested_host} could not be found.")


def _group(
    session: Session, request: rest.ApiRequest, hints: dict[str, Any]
) -> models.ServerGroup | None:
    wanted = hints.get("group")
    if isinstance(wanted, list):
        wanted = wanted[0] if wanted else None
    if not wanted:
        return None
    group = session.get(models.ServerGroup, wanted)
    if group is None or (
        not common.is_admin(request.context) and group.project_id != request.context.project_id
    ):
        raise errors.bad_request(f"Instance group {wanted} could not be found.")
    return group


# --- the rows ---------------------------------------------------------------------------------


def _new_server(
    request: rest.ApiRequest,
    ask: Ask,
    flavor_copy: dict[str, Any],
    key: models.KeyPair | None,
    index: int,
    count: int,
    reservation: str,
    image_props: dict[str, str],
) -> models.Server:
    ctx = request.context
    server_id = common.new_id()
    name = ask.name
    hostname = ask.hostname
    if not hostname:
        hostname = server_create_request.sanitize_hostname(name) or f"Server-{server_id}"
        if count > 1:
            hostname = f"{hostname}-{index + 1}"
    if count > 1:
        name = f"{name}-{index + 1}"
    # Microseconds kept: the newest-first listing orders servers made in one second.
    moment = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    auto_disk = ask.auto_disk_config
    if auto_disk is None:
        auto_disk = image_props.get("auto_disk_config", "").lower() in TRUE_STRINGS
    return models.Server(
        id=server_id,
        project_id=ctx.project_id or "",
        user_id=ctx.user_id or "",
        name=name,
        hostname=hostname,
        description=ask.description,
        image_ref=ask.image_ref,
        flavor=flavor_copy,
        vm_state=states.BUILDING,
        task_state=states.SCHEDULING,
        power_state=states.NOSTATE,
        requested_availability_zone=ask.zone,
        availability_zone=ask.zone,
        key_name=ask.key_name,
        key_data=key.public_key if key is not None else None,
        user_data=ask.user_data,
        config_drive=ask.config_drive,
        access_ip_v4=ask.access_v4,
        access_ip_v6=ask.access_v6,
        admin_password=ask.password,
        reservation_id=reservation,
        launch_index=index,
        progress=0,
        security_groups=list(ask.security_groups or ["default"]),
        requested_networks=[],
        block_device_mapping=ask.bdms
        or (
            [
                {
                    "source_type": "image",
                    "destination_type": "local",
                    "boot_index": 0,
                    "uuid": ask.image_ref,
                    "delete_on_termination": True,
                }
            ]
            if ask.image_ref
            else []
        ),
        scheduler_hints=dict(ask.hints),
        auto_disk_config=bool(auto_disk),
        root_device_name="/dev/vda",
        trusted_image_certificates=ask.trusted_certs,
        generation=1,
        observed_generation=0,
        created_at=moment,
        updated_at=moment.replace(microsecond=0),
    )


def _fail_scheduling(session: Session, servers: list[models.Server], reason: str) -> None:
    """Nova's conductor on NoValidHost: every server ERROR, a fault, no task."""
    moment = common.now()
    for server in servers:
        server.vm_state = states.ERROR
        server.task_state = None
        server.host = None
        server.node = None
        server.updated_at = moment
        session.add(
            models.ServerFault(
                server_id=server.id, code=500, message=reason, details="", created_at=moment
            )
        )


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ask = server_create_request.parse(request)
    server_create_request.check_policies(request, ask)
    server_create_request.check_request(request, ask)
    ctx = request.context
    project_id = ctx.project_id or ""
    flavor = _flavor(session, request, ask.flavor_ref)
    _image_row, image_props = _image(session, request, ask.image_ref, flavor, ask)
    if ask.zone and not ask.forced_host and ask.zone not in available_zones(session):
        raise errors.bad_request("The requested availability zone is not available")
    if ask.forced_node and not ask.forced_host:
        ask.forced_host = _node_host(session, ask.forced_node)
    _check_destination(session, ask)
    quotas.check_metadata_items(session, project_id, len(ask.metadata))
    quotas.check_personality(session, project_id, ask.personality)
    key = _key(session, request, ask.key_name)
    group_ids = (
        network_glue.resolve_security_groups(session, ctx, project_id, ask.security_groups)
        if ask.security_groups
        else None
    )
    nics = network_glue.plan(session, ctx, ask.networks)
    group = _group(session, request, ask.hints)
    count = quotas.check_instances(
        session,
        project_id,
        ctx.user_id or "",
        ask.max_count,
        flavor.vcpus,
        flavor.memory_mb,
        min_count=ask.min_count,
    )
    flavor_copy = flavors.copy_for_server(session, flavor)
    reservation = server_create_request.reservation_id()
    servers = [
        _new_server(request, ask, flavor_copy, key, i, count, reservation, image_props)
        for i in range(count)
    ]
    session.add_all(servers)
    session.flush()
    for server in servers:
        for key_, value in ask.metadata.items():
            session.add(models.ServerMetadata(server_id=server.id, key=key_, value=value))
        for tag in ask.tags:
            session.add(models.ServerTag(server_id=server.id, tag=tag))
        if group is not None:
            server_groups.add_member(session, group.id, server.id, admin=common.is_admin(ctx))
    failure: str | None = None
    try:
        with session.begin_nested():
            placement.schedule(
                session,
                servers,
                flavor=flavor_copy,
                image_properties=image_props,
                availability_zone=ask.zone,
                forced_host=ask.forced_host,
                forced_node=ask.forced_node,
                requested_host=ask.requested_host,
                requested_node=ask.requested_node,
                hints=ask.hints,
                group=group,
            )
    except placement.NoValidHost as exc:
        failure = str(exc)
        for server in servers:
            server.availability_zone = ask.zone
    if failure is not None:
        _fail_scheduling(session, servers, failure)
    else:
        for server in servers:
            server.requested_networks = (
                "none"
                if ask.networks == "none"
                else network_glue.allocate(session, ctx, server, nics, group_ids)
            )
    for server in servers:
        action = actions_log.start(session, request, server, "create")
        if failure is not None:
            actions_log.add_event(session, action, SCHEDULE_EVENT, result=actions_log.ERROR)
            continue  # no host: no agent to tell
        actions_log.add_event(session, action, BUILD_EVENT, host=server.host)
        notify.server(session, server.id, server.host)
    session.flush()
    if ask.reservation:
        return rest.ApiResponse(
            202, {"reservation_id": reservation}, headers={"x-compute-request-id": ctx.request_id}
        )
    first = servers[0]
    links = common.link(request, f"servers/{first.id}")
    body: dict[str, Any] = {
        "id": first.id,
        "links": links,
        "OS-DCF:diskConfig": "AUTO" if first.auto_disk_config else "MANUAL",
        # Nova echoes the groups as asked.
        "security_groups": request.body["server"].get("security_groups", [{"name": "default"}]),
        "adminPass": ask.password,
    }
    # Nova's legacy request id header: clients find the create action by it.
    headers = {"Location": links[0]["href"], "x-compute-request-id": ctx.request_id}
    return rest.ApiResponse(202, {"server": body}, headers=headers)
