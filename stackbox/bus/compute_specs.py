"""Desired and observed state of servers as compute agents exchange it with the controller.

A ``ServerSpec`` is everything a driver needs to make one server real on its host:
the flavor, the image, the ports to plug, what the guest is given (user data, key,
metadata, admin password) and the task to carry out for this ``generation``. It
carries nothing of the API's presentation. Fields are added with defaults only
(see ``codec``).

The strings and integers are Nova's: ``vm_state`` / ``task_state`` values as
``stackbox.compute.states`` defines them, power states as Nova's integers (repeated
here because agents must not import a service package).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from stackbox.bus import codec, specs

# Nova's power_state integers.
NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7


@dataclasses.dataclass(frozen=True)
class FlavorSpec(codec.Record):
    """The flavor a server was booted (or is being resized) with, as embedded in it."""

    flavorid: str
    name: str = ""
    vcpus: int = 1
    memory_mb: int = 512
    root_gb: int = 0
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ImageSpec(codec.Record):
    """The image to boot from (or rebuild to), as the Image service has it now. ``status``
    is "" when the image no longer exists (only ``id`` is then known)."""

    id: str
    name: str = ""
    status: str = ""
    disk_format: str = ""
    container_format: str = ""
    size: int | None = None
    checksum: str = ""
    os_hash_algo: str = ""
    os_hash_value: str = ""
    min_disk: int = 0
    min_ram: int = 0
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class VifSpec(codec.Record):
    """A port of the server (``device_id`` is the server): what the driver plugs."""

    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[specs.FixedIP, ...] = ()
    mtu: int = 1500
    vif_type: str = "unbound"
    vif_details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    vnic_type: str = "normal"
    admin_state_up: bool = True
    # The user brought the port (boot with port=..., interface attach): a finished
    # delete only unbinds it.
    preexisting: bool = False


@dataclasses.dataclass(frozen=True)
class SnapshotSpec(codec.Record):
    """An image waiting for the server's snapshot data (Image status ``queued``)."""

    image_id: str
    name: str = ""
    # The formats the image declares ("" = not set yet: the agent says what it wrote).
    disk_format: str = ""
    container_format: str = ""


@dataclasses.dataclass(frozen=True)
class ServerSpec(codec.Record):
    """One server as its host must make it, for desired-state ``generation``.

    ``task_state`` says what to do (spawn while ``vm_state`` is building, reboot,
    delete...); ``observed_generation`` is what the controller last recorded, so an
    agent that restarted knows whether this generation was already carried out.
    """

    id: str
    generation: int
    vm_state: str
    project_id: str = ""
    user_id: str = ""
    name: str = ""
    hostname: str = ""
    node: str = ""
    observed_generation: int = 0
    task_state: str | None = None
    power_state: int = NOSTATE
    flavor: FlavorSpec | None = None
    # During a resize: the flavor to move to, and the one to go back to on revert.
    new_flavor: FlavorSpec | None = None
    old_flavor: FlavorSpec | None = None
    # None when booted from a volume.
    image: ImageSpec | None = None
    ports: tuple[VifSpec, ...] = ()
    user_data: str | None = None
    key_name: str | None = None
    key_data: str | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    config_drive: bool = False
    # Set at boot, rebuild or changePassword; for the guest to pick up.
    admin_password: str | None = None
    availability_zone: str | None = None
    launch_index: int = 0
    # Snapshot images waiting for data (while the task is image_* or shelving).
    snapshots: tuple[SnapshotSpec, ...] = ()


@dataclasses.dataclass(frozen=True)
class ServerStatus(codec.Record):
    """What an agent did for one server's generation and what it sees now.

    ``task`` is the task_state of the spec it carried out (None: nothing to do but
    observe, e.g. a power state that changed on its own). ``ok`` False means the task
    failed: ``fault_message`` is for users, ``fault_details`` for admins.
    """

    id: str
    observed_generation: int
    ok: bool = True
    task: str | None = None
    power_state: int = NOSTATE
    fault_message: str = ""
    fault_details: str = ""
    fault_code: int = 500
    # When the agent started the task (Unix time; 0 unknown), for the action event.
    started_at: float = 0.0


@dataclasses.dataclass(frozen=True)
class HypervisorReport(codec.Record):
    """What a compute host has (Nova's compute node fields), from its driver."""

    hypervisor_hostname: str
    hypervisor_type: str = "fake"
    # Nova's integer form: 1.2.3 is 1002003.
    hypervisor_version: int = 1000
    vcpus: int = 0
    memory_mb: int = 0
    local_gb: int = 0
    cpu_info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # (architecture, hypervisor type, vm mode) triples.
    supported_instances: tuple[tuple[str, ...], ...] = ()
    host_ip: str | None = None
