"""The desired state compute agents ask for: the spec of every server on a host
(the ``GetServersForHost`` answer of ``bus.compute_messages``), read from the
compute, image and networking tables in one read transaction.

A server is on a host while its ``host`` names it and it is not deleted; a
server being deleted is still listed (task ``deleting``) until the agent reports
the guest destroyed and the intake marks the row deleted. Child rows are loaded
in batches per request, never per server, so a resync of a busy host costs a
handful of queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.bus import compute_specs, specs
from stackbox.compute import models, states
from stackbox.image import models as image_models
from stackbox.network import models as net_models

CHUNK = 500

# Tasks whose spec lists the snapshot images waiting for data.
SNAPSHOT_TASKS = frozenset(
    {states.IMAGE_SNAPSHOT, states.IMAGE_PENDING_UPLOAD, states.IMAGE_UPLOADING, states.SHELVING}
)
# The image property naming the server a snapshot is of (Nova sets it on every snapshot).
INSTANCE_PROPERTY = "instance_uuid"


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _rows(session: Session, model: Any, column: Any, ids: Iterable[str]) -> list[Any]:
    wanted = sorted(set(ids))
    return [
        row
        for part in _chunks(wanted)
        for row in session.scalars(select(model).where(column.in_(part)))
    ]


def servers_for_host(
    session: Session, host: str, server_ids: Sequence[str] = ()
) -> tuple[compute_specs.ServerSpec, ...]:
    query = select(models.Server).where(
        models.Server.host == host, models.Server.deleted.is_(False)
    )
    if server_ids:
        query = query.where(models.Server.id.in_(list(server_ids)))
    return server_specs(session, list(session.scalars(query.order_by(models.Server.id))))


def preexisting_ports(server: models.Server) -> set[str]:
    """Ports the user brought: ``requested_networks`` records with ``port`` set (Nova's
    network request; ``network_glue`` keeps them so): a delete only unbinds them."""
    records = server.requested_networks if isinstance(server.requested_networks, list) else []
    return {str(r["port"]) for r in records if isinstance(r, dict) and r.get("port")}


def flavor_spec(flavor: dict[str, Any] | None) -> compute_specs.FlavorSpec | None:
    """The embedded flavor copy (lenient about Nova's API names for the same fields)."""
    if not flavor:
        return None

    def number(*keys: str) -> int:
        for key in keys:
            value = flavor.get(key)
            if value not in (None, ""):
                return int(value)
        return 0

    return compute_specs.FlavorSpec(
        flavorid=str(flavor.get("flavorid") or flavor.get("id") or ""),
        name=str(flavor.get("name") or flavor.get("original_name") or ""),
        vcpus=number("vcpus"),
        memory_mb=number("memory_mb", "ram"),
        root_gb=number("root_gb", "disk"),
        ephemeral_gb=number("ephemeral_gb", "ephemeral", "OS-FLV-EXT-DATA:ephemeral"),
        swap=number("swap"),
        extra_specs={str(k): str(v) for k, v in (flavor.get("extra_specs") or {}).items()},
    )


def _images(session: Session, image_ids: set[str]) -> dict[str, compute_specs.ImageSpec]:
    rows = _rows(session, image_models.Image, image_models.Image.id, image_ids)
    properties: dict[str, dict[str, str]] = defaultdict(dict)
    for prop in _rows(
        session,
        image_models.ImageProperty,
        image_models.ImageProperty.image_id,
        [r.id for r in rows],
    ):
        properties[prop.image_id][prop.name] = prop.value
    return {
        image.id: compute_specs.ImageSpec(
            id=image.id,
            name=image.name or "",
            status=image.status,
            disk_format=image.disk_format or "",
            container_format=image.container_format or "",
            size=image.size,
            checksum=image.checksum or "",
            os_hash_algo=image.os_hash_algo or "",
            os_hash_value=image.os_hash_value or "",
            min_disk=image.min_disk,
            min_ram=image.min_ram,
            properties=properties[image.id],
        )
        for image in rows
    }


def pending_snapshots(
    session: Session, server_ids: Sequence[str]
) -> dict[str, list[compute_specs.SnapshotSpec]]:
    """Queued images whose ``instance_uuid`` property names one of the servers."""
    found: dict[str, list[compute_specs.SnapshotSpec]] = defaultdict(list)
    Image, Property = image_models.Image, image_models.ImageProperty
    for part in _chunks(sorted(set(server_ids))):
        rows = session.execute(
            select(Property.value, Image)
            .join(Image, Image.id == Property.image_id)
            .where(
                Property.name == INSTANCE_PROPERTY,
                Property.value.in_(part),
                Image.status == "queued",
            )
            .order_by(Image.created_at, Image.id)
        )
        for server_id, image in rows:
            found[server_id].append(
                compute_specs.SnapshotSpec(
                    image_id=image.id,
                    name=image.name or "",
                    disk_format=image.disk_format or "",
                    container_format=image.container_format or "",
                )
            )
    return found


def _vifs(session: Session, servers: list[models.Server]) -> dict[str, list[compute_specs.VifSpec]]:
    ports = _rows(session, net_models.Port, net_models.Port.device_id, [s.id for s in servers])
    addresses: dict[str, list[specs.FixedIP]] = defaultdict(list)
    for allocation in _rows(
        session, net_models.IPAllocation, net_models.IPAllocation.port_id, [p.id for p in ports]
    ):
        addresses[allocation.port_id].append(
            specs.FixedIP(allocation.subnet_id, allocation.ip_address)
        )
    mtus = {
        n.id: n.mtu
        for n in _rows(
            session, net_models.Network, net_models.Network.id, [p.network_id for p in ports]
        )
    }
    brought = {s.id: preexisting_ports(s) for s in servers}
    found: dict[str, list[compute_specs.VifSpec]] = defaultdict(list)
    for port in sorted(ports, key=lambda p: (p.created_at, p.id)):
        found[port.device_id].append(
            compute_specs.VifSpec(
                id=port.id,
                network_id=port.network_id,
                mac_address=port.mac_address,
                fixed_ips=tuple(
                    sorted(addresses[port.id], key=lambda a: (a.subnet_id, a.ip_address))
                ),
                mtu=mtus.get(port.network_id, 1500),
                vif_type=port.binding_vif_type,
                vif_details=dict(port.binding_vif_details or {}),
                vnic_type=port.binding_vnic_type,
                admin_state_up=port.admin_state_up,
                preexisting=port.id in brought.get(port.device_id, set()),
            )
        )
    return found


def server_specs(
    session: Session, servers: list[models.Server]
) -> tuple[compute_specs.ServerSpec, ...]:
    if not servers:
        return ()
    ids = [s.id for s in servers]
    metadata: dict[str, dict[str, str]] = defaultdict(dict)
    for item in _rows(session, models.ServerMetadata, models.ServerMetadata.server_id, ids):
        metadata[item.server_id][item.key] = item.value
    images = _images(session, {s.image_ref for s in servers if s.image_ref})
    vifs = _vifs(session, servers)
    snapshots = pending_snapshots(
        session, [s.id for s in servers if s.task_state in SNAPSHOT_TASKS]
    )
    return tuple(
        compute_specs.ServerSpec(
            id=server.id,
            generation=server.generation,
            vm_state=server.vm_state,
            project_id=server.project_id,
            user_id=server.user_id,
            name=server.name,
            hostname=server.hostname,
            node=server.node or "",
            observed_generation=server.observed_generation,
            task_state=server.task_state,
            power_state=server.power_state,
            flavor=flavor_spec(server.flavor),
            new_flavor=flavor_spec(server.new_flavor),
            old_flavor=flavor_spec(server.old_flavor),
            image=(
                images.get(server.image_ref, compute_specs.ImageSpec(server.image_ref))
                if server.image_ref
                else None
            ),
            ports=tuple(vifs[server.id]),
            user_data=server.user_data,
            key_name=server.key_name,
            key_data=server.key_data,
            metadata=metadata[server.id],
            config_drive=str(server.config_drive).lower() in ("true", "1", "yes"),
            admin_password=server.admin_password,
            availability_zone=server.availability_zone,
            launch_index=server.launch_index,
            snapshots=tuple(snapshots.get(server.id, ())),
        )
        for server in servers
    )
