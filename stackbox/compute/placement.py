"""Placing servers on compute nodes: host states from the rows, the filter scheduler's
decision, and the claims, all in the caller's transaction.

A claim is a ``compute_allocation`` row written in the same transaction that read
the node's usage, so two parallel boots never both take the last gigabyte: SQLite
serializes writers, and on PostgreSQL the nodes' rows are locked (``FOR UPDATE``)
before their usage is summed. A claim lives as long as the server (or, during a
resize, the old flavor's claim lives under the migration's id until confirm/revert).
"""

from __future__ import annotations

import datetime
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox.compute import liveness, models, runtime
from stackbox.compute.scheduler import host_state, request_spec
from stackbox.compute.scheduler import select as scheduler_select

COMPUTE_BINARY = "nova-compute"

NoValidHost = scheduler_select.NoValidHost

_scheduler_lock = threading.Lock()
_scheduler: tuple[int, scheduler_select.FilterScheduler] | None = None


def scheduler() -> scheduler_select.FilterScheduler:
    """The scheduler built from the current settings (built once per settings object)."""
    global _scheduler
    settings = runtime.get().settings
    with _scheduler_lock:
        if _scheduler is None or _scheduler[0] != id(settings):
            _scheduler = (id(settings), scheduler_select.FilterScheduler.from_settings(settings))
        return _scheduler[1]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def host_aggregates(session: Session) -> dict[str, list[host_state.Aggregate]]:
    """Each host's aggregates as (name, metadata)."""
    metadata: dict[int, dict[str, str]] = defaultdict(dict)
    for aggregate_id, key, value in session.execute(
        select(
            models.AggregateMetadata.aggregate_id,
            models.AggregateMetadata.key,
            models.AggregateMetadata.value,
        )
    ):
        metadata[aggregate_id][key] = value
    # Not dict(result): a Result has keys() (its column names), so dict() reads it as a mapping.
    names = {
        aggregate_id: name
        for aggregate_id, name in session.execute(
            select(models.Aggregate.id, models.Aggregate.name)
        )
    }
    by_host: dict[str, list[host_state.Aggregate]] = defaultdict(list)
    for aggregate_id, host in session.execute(
        select(models.AggregateHost.aggregate_id, models.AggregateHost.host)
    ):
        by_host[host].append(
            host_state.Aggregate(names.get(aggregate_id, ""), dict(metadata[aggregate_id]))
        )
    return by_host


def host_states(session: Session, *, lock: bool = False) -> list[host_state.HostState]:
    """One HostState per compute node, with its usage summed from the claims."""
    settings = runtime.get().settings
    query = (
        select(models.ComputeNode, models.Service)
        .join(models.Service, models.Service.id == models.ComputeNode.service_id)
        .where(models.Service.binary == COMPUTE_BINARY)
        .order_by(models.ComputeNode.id)
    )
    if lock and session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(of=models.ComputeNode)
    rows = session.execute(query).all()
    if not rows:
        return []
    used = {
        node_id: (vcpus or 0, memory or 0, disk or 0)
        for node_id, vcpus, memory, disk in session.execute(
            select(
                models.Allocation.node_id,
                func.sum(models.Allocation.vcpus),
                func.sum(models.Allocation.memory_mb),
                func.sum(models.Allocation.disk_gb),
            ).group_by(models.Allocation.node_id)
        )
    }
    instances: dict[str, set[str]] = defaultdict(set)
    for server_id, host in session.execute(
        select(models.Server.id, models.Server.host).where(
            models.Server.deleted.is_(False), models.Server.host.is_not(None)
        )
    ):
        if host:
            instances[host].add(server_id)
    aggregates = host_aggregates(session)
    now = _now()
    states = []
    for node, service in rows:
        vcpus_used, memory_used, disk_used = used.get(node.id, (0, 0, 0))
        host_aggs = aggregates.get(node.host, [])
        zones = [
            agg.metadata["availability_zone"]
            for agg in host_aggs
            if agg.metadata.get("availability_zone")
        ]
        states.append(
            host_state.HostState(
                host=node.host,
                nodename=node.hypervisor_hostname,
                uuid=node.uuid,
                service_up=liveness.is_up(service, now, settings.service_down_time),
                service_disabled=service.disabled,
                service_disabled_reason=service.disabled_reason,
                availability_zone=zones[0] if zones else settings.default_availability_zone,
                aggregates=list(host_aggs),
                vcpus=node.vcpus,
                vcpus_used=int(vcpus_used),
                memory_mb=node.memory_mb,
                memory_mb_used=int(memory_used),
                local_gb=node.local_gb,
                local_gb_used=int(disk_used),
                cpu_allocation_ratio=node.cpu_allocation_ratio,
                ram_allocation_ratio=node.ram_allocation_ratio,
                disk_allocation_ratio=node.disk_allocation_ratio,
                num_instances=len(instances.get(node.host, ())),
                instance_ids=set(instances.get(node.host, ())),
                hypervisor_type=node.hypervisor_type,
                hypervisor_version=node.hypervisor_version,
                host_ip=node.host_ip,
                supported_instances=[list(item) for item in node.supported_instances or []],
            )
        )
    return states


def flavor_of(flavor: dict[str, Any]) -> request_spec.Flavor:
    """A scheduler flavor from a server's embedded flavor copy."""
    return request_spec.Flavor(
        vcpus=int(flavor.get("vcpus", 0)),
        memory_mb=int(flavor.get("memory_mb", flavor.get("ram", 0))),
        root_gb=int(flavor.get("root_gb", flavor.get("disk", 0))),
        ephemeral_gb=int(flavor.get("ephemeral_gb", flavor.get("ephemeral", 0)) or 0),
        swap=int(flavor.get("swap", 0) or 0),
        extra_specs={str(k): str(v) for k, v in (flavor.get("extra_specs") or {}).items()},
        name=str(flavor.get("name", "")),
        flavorid=str(flavor.get("flavorid", flavor.get("id", ""))),
    )


def instance_group(
    session: Session, group: models.ServerGroup | None, *, exclude: str | None = None
) -> request_spec.InstanceGroup | None:
    """The group as the scheduler sees it: its policy and where its members are."""
    if group is None:
        return None
    hosts: dict[str, int] = defaultdict(int)
    members: set[str] = set()
    for server_id, host in session.execute(
        select(models.Server.id, models.Server.host)
        .join(models.ServerGroupMember, models.ServerGroupMember.server_id == models.Server.id)
        .where(models.ServerGroupMember.group_id == group.id, models.Server.deleted.is_(False))
    ):
        if server_id == exclude:
            continue
        members.add(server_id)
        if host:
            hosts[host] += 1
    return request_spec.InstanceGroup(
        policy=group.policy,
        id=group.id,
        rules=dict(group.rules or {}),
        members=members,
        hosts=dict(hosts),
    )


def _claim(
    session: Session,
    consumer_id: str,
    server_id: str,
    node_uuid: str | None,
    flavor: request_spec.Flavor,
) -> models.ComputeNode:
    node = session.scalars(
        select(models.ComputeNode).where(models.ComputeNode.uuid == node_uuid)
    ).one()
    session.add(
        models.Allocation(
            consumer_id=consumer_id,
            node_id=node.id,
            server_id=server_id,
            vcpus=flavor.vcpus,
            memory_mb=flavor.memory_mb,
            disk_gb=flavor.disk_gb,
        )
    )
    return node


def schedule(
    session: Session,
    servers: Sequence[models.Server],
    *,
    flavor: dict[str, Any],
    image_properties: dict[str, Any] | None = None,
    availability_zone: str | None = None,
    forced_host: str | None = None,
    forced_node: str | None = None,
    requested_host: str | None = None,
    requested_node: str | None = None,
    hints: dict[str, Any] | None = None,
    group: models.ServerGroup | None = None,
) -> None:
    """Place ``servers`` (one request: same flavor and hints) and claim their resources;
    sets each server's host, node and availability zone. Raises NoValidHost (nothing
    is claimed: the caller records the fault)."""
    settings = runtime.get().settings
    zone = availability_zone or settings.default_schedule_zone or None
    spec = request_spec.RequestSpec(
        flavor=flavor_of(flavor),
        image_properties=dict(image_properties or {}),
        availability_zone=zone,
        scheduler_hints=dict(hints or {}),
        instance_group=instance_group(session, group),
        num_instances=len(servers),
        project_id=servers[0].project_id if servers else None,
        force_hosts=[forced_host] if forced_host else [],
        force_nodes=[forced_node] if forced_node else [],
        requested_host=requested_host,
        requested_node=requested_node,
    )
    states = host_states(session, lock=True)
    chosen = scheduler().select(states, spec, [server.id for server in servers])
    for server, state in zip(servers, chosen, strict=True):
        node = _claim(session, server.id, server.id, state.uuid, spec.flavor)
        server.host = node.host
        server.node = node.hypervisor_hostname
        server.availability_zone = state.availability_zone


def release(session: Session, server_id: str) -> None:
    """Drop every claim of the server (its own and any resize's old one)."""
    session.query(models.Allocation).filter(models.Allocation.server_id == server_id).delete(
        synchronize_session=False
    )


def claim_resize(
    session: Session,
    server: models.Server,
    new_flavor: dict[str, Any],
    migration_uuid: str,
    *,
    group: models.ServerGroup | None = None,
) -> models.ComputeNode:
    """Hold the old flavor's claim under the migration and claim the new flavor for the
    server on a host the scheduler picks (its own host included, as with
    allow_resize_to_same_host). Raises NoValidHost."""
    old = session.get(models.Allocation, server.id)
    if old is not None:
        # The old claim keeps counting against its node while the resize is unconfirmed.
        session.delete(old)
        session.flush()
        session.add(
            models.Allocation(
                consumer_id=migration_uuid,
                node_id=old.node_id,
                server_id=server.id,
                vcpus=old.vcpus,
                memory_mb=old.memory_mb,
                disk_gb=old.disk_gb,
            )
        )
        session.flush()
    spec = request_spec.RequestSpec(
        flavor=flavor_of(new_flavor),
        availability_zone=server.availability_zone,
        scheduler_hints=dict(server.scheduler_hints or {}),
        instance_group=instance_group(session, group, exclude=server.id),
        project_id=server.project_id,
        instance_id=server.id,
    )
    states = host_states(session, lock=True)
    chosen = scheduler().select(states, spec, [server.id])
    return _claim(session, server.id, server.id, chosen[0].uuid, spec.flavor)


def confirm_resize(session: Session, migration_uuid: str) -> None:
    """The resize stays: the old flavor's claim goes."""
    old = session.get(models.Allocation, migration_uuid)
    if old is not None:
        session.delete(old)


def revert_resize(
    session: Session, server: models.Server, migration_uuid: str
) -> models.ComputeNode | None:
    """The resize is undone: the new claim goes, the old one is the server's again.
    Returns the node the server is back on."""
    new = session.get(models.Allocation, server.id)
    if new is not None:
        session.delete(new)
        session.flush()
    old = session.get(models.Allocation, migration_uuid)
    if old is None:
        return None
    node = session.get(models.ComputeNode, old.node_id)
    session.add(
        models.Allocation(
            consumer_id=server.id,
            node_id=old.node_id,
            server_id=server.id,
            vcpus=old.vcpus,
            memory_mb=old.memory_mb,
            disk_gb=old.disk_gb,
        )
    )
    session.delete(old)
    return node
