"""What one compute node offers the scheduler: Nova's HostState.

The caller fills one per node from its rows: the service (up, disabled), the node's
reported totals and allocation ratios, the sum of the allocations claimed on it
(``*_used``, including whatever the host reserves for itself), its aggregates and
the servers on it. Field names follow Nova's compute node columns (``vcpus``,
``memory_mb``, ``local_gb``); Nova's HostState names (``vcpus_total``,
``free_ram_mb``, ``free_disk_mb``, ``total_usable_ram_mb`` ...) are properties, so
JsonFilter queries written for Nova (``$free_ram_mb``) work unchanged.

Capacity is placement's: ``total * allocation_ratio - used``. A server never fits a
host whose physical total is smaller than the server, whatever the ratio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from stackbox.compute.scheduler import request_spec


class Aggregate(NamedTuple):
    """A host aggregate the host belongs to: (name, metadata)."""

    name: str
    metadata: Mapping[str, str]


@dataclasses.dataclass(eq=False)
class HostState:
    """One compute node. Mutable: ``consume`` charges a placed server to it."""

    host: str
    nodename: str = ""
    # The compute node's id (its row), for the caller to write the claim against.
    uuid: str | None = None
    service_up: bool = True
    service_disabled: bool = False
    service_disabled_reason: str | None = None
    # The zone the caller computed (an aggregate's ``availability_zone`` or the default).
    availability_zone: str = "nova"
    aggregates: list[Aggregate] = dataclasses.field(default_factory=list)
    vcpus: int = 0
    vcpus_used: int = 0
    memory_mb: int = 0
    memory_mb_used: int = 0
    local_gb: int = 0
    local_gb_used: int = 0
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    num_instances: int = 0
    instance_ids: set[str] = dataclasses.field(default_factory=set)
    hypervisor_type: str = "fake"
    # Nova's integer form: 1.2.3 is 1002003.
    hypervisor_version: int = 0
    host_ip: str | None = None
    # What the hypervisor runs: (architecture, hypervisor type, vm mode) triples.
    supported_instances: list[Sequence[str]] = dataclasses.field(default_factory=list)
    # Free-form facts a JsonFilter query may read as ``$stats.<key>``.
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.nodename:
            self.nodename = self.host

    def __repr__(self) -> str:
        return (
            f"HostState({self.host!r}, {self.nodename!r}, ram {self.free_ram_mb} MB, "
            f"disk {self.free_disk_gb} GB, vcpus {self.vcpus_used}/{self.vcpus}, "
            f"instances {self.num_instances})"
        )

    # --- Nova's names for the same facts ----------------------------------------------------

    @property
    def vcpus_total(self) -> int:
        return self.vcpus

    @property
    def total_usable_ram_mb(self) -> int:
        return self.memory_mb

    @property
    def total_usable_disk_gb(self) -> int:
        return self.local_gb

    @property
    def free_ram_mb(self) -> int:
        """Physical RAM left (negative when overcommitted), as Nova reports it."""
        return self.memory_mb - self.memory_mb_used

    @property
    def free_disk_gb(self) -> int:
        return self.local_gb - self.local_gb_used

    @property
    def free_disk_mb(self) -> int:
        return self.free_disk_gb * 1024

    @property
    def disk_mb_used(self) -> int:
        return self.local_gb_used * 1024

    @property
    def free_vcpus(self) -> int:
        return self.vcpus - self.vcpus_used

    # --- capacity under the allocation ratios -----------------------------------------------

    @property
    def usable_vcpus(self) -> float:
        return self.vcpus * self.cpu_allocation_ratio - self.vcpus_used

    @property
    def usable_ram_mb(self) -> float:
        return self.memory_mb * self.ram_allocation_ratio - self.memory_mb_used

    @property
    def usable_disk_gb(self) -> float:
        return self.local_gb * self.disk_allocation_ratio - self.local_gb_used

    def fits_vcpus(self, vcpus: int) -> bool:
        return vcpus <= self.vcpus and vcpus <= self.usable_vcpus

    def fits_ram(self, memory_mb: int) -> bool:
        return memory_mb <= self.memory_mb and memory_mb <= self.usable_ram_mb

    def fits_disk(self, disk_gb: int) -> bool:
        return disk_gb <= self.local_gb and disk_gb <= self.usable_disk_gb

    def fits(self, flavor: request_spec.Flavor) -> bool:
        """All three resources at once: the check a claim must pass when written."""
        return (
            self.fits_vcpus(flavor.vcpus)
            and self.fits_ram(flavor.memory_mb)
            and self.fits_disk(flavor.disk_gb)
        )

    # --- aggregates -------------------------------------------------------------------------

    def aggregate_values(self, key: str) -> set[str]:
        """The values ``key`` has in the host's aggregates (whole values, unsplit)."""
        return {agg.metadata[key] for agg in self.aggregates if key in agg.metadata}

    def aggregate_metadata(self) -> dict[str, set[str]]:
        """Every aggregate key with all its values; comma lists are split, as Nova does."""
        merged: dict[str, set[str]] = {}
        for agg in self.aggregates:
            for key, value in agg.metadata.items():
                merged.setdefault(key, set()).update(part.strip() for part in value.split(","))
        return merged

    def availability_zones(self) -> set[str]:
        """The zones the host is in: its aggregates' zones, else ``availability_zone``."""
        return self.aggregate_values("availability_zone") or {self.availability_zone}

    # --- placing a server -------------------------------------------------------------------

    def consume(self, spec: request_spec.RequestSpec, instance_id: str | None = None) -> None:
        """Charge one server of ``spec`` to this host, so later picks see it."""
        self.vcpus_used += spec.vcpus
        self.memory_mb_used += spec.memory_mb
        self.local_gb_used += spec.disk_gb
        self.num_instances += 1
        if instance_id:
            self.instance_ids.add(instance_id)
