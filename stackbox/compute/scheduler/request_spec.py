"""What a server asks of a host: Nova's RequestSpec, reduced to what filters read.

Built by the API from the flavor, the image's properties, the requested zone, the
scheduler hints and the server group. The ``zone:host``, ``zone::node`` and
``zone:host:node`` forms of ``availability_zone`` (Nova's admin-only forced host)
are split into the zone and ``force_hosts``/``force_nodes`` when the spec is made.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


@dataclasses.dataclass
class Flavor:
    """The sizes a server claims. ``swap`` is in MB, as in Nova's flavors."""

    vcpus: int
    memory_mb: int
    root_gb: int = 0
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = ""
    flavorid: str = ""

    @property
    def disk_gb(self) -> int:
        """Local disk claimed, as Nova asks placement for DISK_GB (swap rounded up)."""
        return self.root_gb + self.ephemeral_gb + math.ceil(self.swap / 1024)


@dataclasses.dataclass
class InstanceGroup:
    """A server group as the scheduler sees it.

    ``hosts`` counts the group's members on each host (build it from the members'
    servers); the scheduler adds to it as it places servers of this request, so
    anti-affinity spreads and affinity packs within one multi-create.
    """

    policy: str
    id: str | None = None
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)
    members: set[str] = dataclasses.field(default_factory=set)
    hosts: dict[str, int] = dataclasses.field(default_factory=dict)
    max_server_per_host: int = dataclasses.field(init=False, default=1)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown server group policy {self.policy!r}")
        # Rules are stored as given; the count may arrive as a string.
        value = self.rules.get("max_server_per_host")
        self.max_server_per_host = 1 if value is None else int(value)
        if self.max_server_per_host < 1:
            raise ValueError("max_server_per_host must be at least 1")

    def count_on(self, host: str) -> int:
        return self.hosts.get(host, 0)

    def add(self, host: str, instance_id: str | None = None) -> None:
        """Record a member placed on ``host`` by the request being scheduled."""
        self.hosts[host] = self.hosts.get(host, 0) + 1
        if instance_id:
            self.members.add(instance_id)


def parse_availability_zone(value: str | None) -> tuple[str | None, str | None, str | None]:
    """Split ``zone``, ``zone:host``, ``zone::node`` or ``zone:host:node``.

    Returns (zone, host, node), each None when absent. An empty zone (``:host``)
    means any zone. More than two colons is a ValueError, as Nova's InvalidInput.
    """
    if not value:
        return None, None, None
    if ":" not in value:
        return value, None, None
    colons = value.count(":")
    host: str | None = None
    node: str | None = None
    if colons == 1:
        zone, host = value.split(":")
    elif colons == 2 and "::" in value:
        zone, node = value.split("::")
    elif colons == 2:
        zone, host, node = value.split(":")
    else:
        raise ValueError("Unable to parse availability_zone")
    return zone or None, host or None, node or None


@dataclasses.dataclass
class RequestSpec:
    """One scheduling request for ``num_instances`` identical servers."""

    flavor: Flavor
    image_properties: dict[str, Any] = dataclasses.field(default_factory=dict)
    availability_zone: str | None = None
    scheduler_hints: dict[str, Any] = dataclasses.field(default_factory=dict)
    instance_group: InstanceGroup | None = None
    num_instances: int = 1
    project_id: str | None = None
    force_hosts: list[str] = dataclasses.field(default_factory=list)
    force_nodes: list[str] = dataclasses.field(default_factory=list)
    ignore_hosts: list[str] = dataclasses.field(default_factory=list)
    # Microversion 2.74's ``host``/``hypervisor_hostname``: narrows the candidates but,
    # unlike a forced host, every filter still runs.
    requested_host: str | None = None
    requested_node: str | None = None
    # The server being moved (resize, migrate), so group filters accept its own host.
    instance_id: str | None = None

    def __post_init__(self) -> None:
        if self.num_instances < 1:
            raise ValueError("num_instances must be at least 1")
        zone, host, node = parse_availability_zone(self.availability_zone)
        self.availability_zone = zone
        if host and host not in self.force_hosts:
            self.force_hosts.append(host)
        if node and node not in self.force_nodes:
            self.force_nodes.append(node)

    @property
    def vcpus(self) -> int:
        return self.flavor.vcpus

    @property
    def memory_mb(self) -> int:
        return self.flavor.memory_mb

    @property
    def disk_gb(self) -> int:
        return self.flavor.disk_gb

    @property
    def forced(self) -> bool:
        return bool(self.force_hosts or self.force_nodes)

    def hint(self, name: str, default: Any = None) -> Any:
        """A scheduler hint's value; a one-item list is unwrapped, as Nova does."""
        value = self.scheduler_hints.get(name, default)
        if isinstance(value, list) and len(value) == 1:
            return value[0]
        return value

    def hint_values(self, name: str) -> list[str]:
        """A hint that may be given once or as a list (same_host, different_host)."""
        value = self.scheduler_hints.get(name)
        if value is None or value == "":
            return []
        items: Iterable[Any] = value if isinstance(value, list | tuple | set) else [value]
        return [str(item) for item in items]
