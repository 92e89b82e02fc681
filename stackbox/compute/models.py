"""Compute tables: flavors, keypairs, servers and what hangs off them, compute
services and nodes with their claims, aggregates, server groups, quotas,
instance actions and migrations.

Claims that concurrency must not break are rows checked in the transaction
that picks a host (``compute_allocation`` against ``compute_node`` totals);
names that must be unique are database constraints (keypair per user,
aggregate name, flavor id).
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from stackbox.db.base import ID, Base, JSONText, utcnow

UUID = String(36)


# --- flavors --------------------------------------------------------------------------------


class Flavor(Base):
    __tablename__ = "compute_flavor"
    # Internal key; ``flavorid`` is the id clients see (a string: "42", "m1.foo", a uuid).
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class FlavorExtraSpec(Base):
    __tablename__ = "compute_flavor_extra_spec"
    flavor_id: Mapped[int] = mapped_column(
        ForeignKey("compute_flavor.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class FlavorAccess(Base):
    """Projects that may use a private flavor."""

    __tablename__ = "compute_flavor_access"
    flavor_id: Mapped[int] = mapped_column(
        ForeignKey("compute_flavor.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


# --- keypairs -------------------------------------------------------------------------------


class KeyPair(Base):
    __tablename__ = "compute_keypair"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(8), default="ssh")
    fingerprint: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


# --- servers --------------------------------------------------------------------------------


class Server(Base):
    """An instance. ``vm_state``/``task_state``/``power_state`` are Nova's; the API's
    ``status`` is derived from them. ``generation`` counts changes of desired state;
    the compute agent reports the generation it converged (``observed_generation``)."""

    __tablename__ = "compute_server"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    user_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str] = mapped_column(String(255), default="")
    hostname: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    image_ref: Mapped[str] = mapped_column(String(255), default="")
    # The flavor as it was at boot (Nova embeds a copy: later flavor edits don't apply):
    # {id, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, rxtx_factor, extra_specs, ...}
    flavor: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    # During a resize: the flavor being moved to / from.
    new_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSONText, nullable=True)
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSONText, nullable=True)
    vm_state: Mapped[str] = mapped_column(String(32), default="building", index=True)
    task_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The zone the user asked for (None: any), as Nova's request spec keeps it.
    requested_availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    config_drive: Mapped[str] = mapped_column(String(255), default="")
    access_ip_v4: Mapped[str | None] = mapped_column(String(64), nullable=True)
    access_ip_v6: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The admin password set at boot / rebuild / changePassword (never shown after create).
    admin_password: Mapped[str | None] = mapped_column(String(255), nullable=True)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    locked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reservation_id: Mapped[str] = mapped_column(String(255), default="")
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    # Names of the security groups asked for at boot (ports carry the real ones).
    security_groups: Mapped[list[str]] = mapped_column(JSONText, default=list)
    # What the server asked of the network at boot ("auto", "none" or a list), so a
    # rebuild or an unshelve can find it again.
    requested_networks: Mapped[Any] = mapped_column(JSONText, default=list)
    # Block device mappings as given (v2 format), with the image source filled in.
    block_device_mapping: Mapped[list[dict[str, Any]]] = mapped_column(JSONText, default=list)
    scheduler_hints: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    auto_disk_config: Mapped[bool] = mapped_column(Boolean, default=False)
    root_device_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    trusted_image_certificates: Mapped[list[str] | None] = mapped_column(JSONText, nullable=True)
    # The driver's own state (e.g. which reboot it last did), for the agent.
    driver_state: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    # Desired-state changes the agent must converge (bumped by every action).
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    launched_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    terminated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # Soft delete, as Nova: deleted servers stay listable with changes-since / deleted=True
    # (admins) until purged.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class ServerMetadata(Base):
    __tablename__ = "compute_server_metadata"
    server_id: Mapped[str] = mapped_column(
        ForeignKey("compute_server.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class ServerTag(Base):
    __tablename__ = "compute_server_tag"
    server_id: Mapped[str] = mapped_column(
        ForeignKey("compute_server.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(80), primary_key=True)


class ServerFault(Base):
    """Why a server is in ERROR (the newest row is the one shown)."""

    __tablename__ = "compute_server_fault"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(
        ForeignKey("compute_server.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[int] = mapped_column(Integer, default=500)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class InstanceAction(Base):
    """One user-visible action on a server (os-instance-actions)."""

    __tablename__ = "compute_instance_action"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(UUID, index=True)
    action: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    start_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    finish_time: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class InstanceActionEvent(Base):
    __tablename__ = "compute_instance_action_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("compute_instance_action.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(255))
    result: Mapped[str | None] = mapped_column(String(255), nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    start_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    finish_time: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


# --- hosts ----------------------------------------------------------------------------------


class Service(Base):
    """A compute service (nova-compute on a host) or the API/scheduler's own entries."""

    __tablename__ = "compute_service"
    __table_args__ = (UniqueConstraint("host", "binary"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str | None] = mapped_column(String(255), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_up: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    # The agent's report interval, so liveness can be judged per service.
    report_interval: Mapped[float] = mapped_column(Float, default=10.0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class ComputeNode(Base):
    """A hypervisor: what a compute host reported it has (and what is claimed of it)."""

    __tablename__ = "compute_node"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("compute_service.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(255), index=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisor_type: Mapped[str] = mapped_column(String(255), default="fake")
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=1000)
    host_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    local_gb: Mapped[int] = mapped_column(Integer, default=0)
    cpu_allocation_ratio: Mapped[float] = mapped_column(Float, default=4.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    disk_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    # Architectures / hypervisor types / vm modes the host runs: [[arch, hv_type, vm_mode]].
    supported_instances: Mapped[list[list[str]]] = mapped_column(JSONText, default=list)
    cpu_info: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class Allocation(Base):
    """A server's claim on a node, made in the transaction that picked the node.
    A resize holds two: the new one under ``server_id`` and the old one under the
    migration's ``consumer`` id, until confirmed or reverted."""

    __tablename__ = "compute_allocation"
    consumer_id: Mapped[str] = mapped_column(UUID, primary_key=True)
    node_id: Mapped[int] = mapped_column(
        ForeignKey("compute_node.id", ondelete="CASCADE"), index=True
    )
    server_id: Mapped[str] = mapped_column(UUID, index=True)
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class Aggregate(Base):
    __tablename__ = "compute_aggregate"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class AggregateHost(Base):
    __tablename__ = "compute_aggregate_host"
    aggregate_id: Mapped[int] = mapped_column(
        ForeignKey("compute_aggregate.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(255), primary_key=True)


class AggregateMetadata(Base):
    """Metadata of an aggregate; ``availability_zone`` here makes it a zone."""

    __tablename__ = "compute_aggregate_metadata"
    aggregate_id: Mapped[int] = mapped_column(
        ForeignKey("compute_aggregate.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


# --- server groups --------------------------------------------------------------------------


class ServerGroup(Base):
    __tablename__ = "compute_server_group"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(ID, index=True)
    user_id: Mapped[str] = mapped_column(ID)
    policy: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class ServerGroupMember(Base):
    __tablename__ = "compute_server_group_member"
    group_id: Mapped[str] = mapped_column(
        ForeignKey("compute_server_group.id", ondelete="CASCADE"), primary_key=True
    )
    # A server is in at most one group.
    server_id: Mapped[str] = mapped_column(UUID, primary_key=True, unique=True)


# --- quotas ---------------------------------------------------------------------------------


class Quota(Base):
    """A per-project (``user_id`` "") or per-user limit that overrides the class default."""

    __tablename__ = "compute_quota"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, primary_key=True, default="")
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaClass(Base):
    """Quota class limits (only ``default`` is used, as in Nova)."""

    __tablename__ = "compute_quota_class"
    class_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaLock(Base):
    """One row per project, written first by every quota-checked create, so two
    concurrent creates in one project serialize on it (PostgreSQL row lock; SQLite
    serializes writers anyway) and never both take the last slot."""

    __tablename__ = "compute_quota_lock"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    counter: Mapped[int] = mapped_column(Integer, default=0)


# --- migrations -----------------------------------------------------------------------------


class Migration(Base):
    """A resize, cold or live migration, or evacuation (os-migrations)."""

    __tablename__ = "compute_migration"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    server_id: Mapped[str] = mapped_column(UUID, index=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    migration_type: Mapped[str] = mapped_column(String(32), default="resize")
    status: Mapped[str] = mapped_column(String(32), default="pre-migrating")
    source_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    old_flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    new_flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The vm_state the server left (active or stopped), which confirm and revert return
    # it to (Nova keeps it in the instance's system_metadata as old_vm_state).
    old_vm_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


# --- outbox ---------------------------------------------------------------------------------
# Nudges for compute agents use the networking outbox table (``net_outbox``) and its relay:
# one relay, one ordering; see ``compute.notify``.
