"""The compute driver contract (DESIGN §7): what every backend (fake, namespace, qemu)
does for the agent's reconciler.

Rules every driver keeps:

- Instances are named by server id; ``list_instances`` returns every instance the
  driver made on this host (and nothing else), so the reconciler can destroy what
  is not wanted.
- ``spawn`` either leaves a running instance or raises after removing everything
  it made (disks, taps, processes); a cancelled spawn cleans up too.
- ``destroy`` is idempotent: destroying what is not there succeeds.
- Operations on an instance that does not exist raise ``InstanceNotFound``; what a
  driver cannot do raises ``NotSupported`` (the task fails with a fault, the
  server keeps its state).
- Everything is a coroutine: a driver that blocks (files, processes) does so in a
  thread (``asyncio.to_thread``), never on the agent's event loop.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path

from stackbox.bus import compute_specs


class DriverError(Exception):
    """A driver operation failed; the message is what the server's fault shows."""


class InstanceNotFound(DriverError):
    def __init__(self, server_id: str) -> None:
        super().__init__(f"Instance {server_id} could not be found.")
        self.server_id = server_id


class NotSupported(DriverError):
    """The driver cannot do this (Nova's NotImplementedError)."""


@dataclasses.dataclass(frozen=True)
class InstanceInfo:
    """What the driver sees of one instance."""

    id: str
    power_state: int


class Driver(abc.ABC):
    """One hypervisor backend of one host."""

    # Nova's hypervisor_type (what /os-hypervisors shows).
    hypervisor_type = "abstract"

    # --- what the host has and holds --------------------------------------------------------

    @abc.abstractmethod
    def host_resources(self) -> compute_specs.HypervisorReport:
        """What the host offers (reported with every heartbeat)."""

    @abc.abstractmethod
    async def list_instances(self) -> list[str]:
        """Ids of every instance that exists on this host."""

    @abc.abstractmethod
    async def get_info(self, server_id: str) -> InstanceInfo | None:
        """The instance, or None if it does not exist."""

    # --- life cycle -------------------------------------------------------------------------

    @abc.abstractmethod
    async def spawn(self, server: compute_specs.ServerSpec) -> None:
        """Create and start the instance (image, flavor, ports, user data); all or nothing."""

    @abc.abstractmethod
    async def destroy(self, server_id: str) -> None:
        """Stop and remove the instance and everything made for it (idempotent)."""

    async def rebuild(self, server: compute_specs.ServerSpec) -> None:
        """Recreate the instance from ``server.image`` (same id, ports and flavor)."""
        await self.destroy(server.id)
        await self.spawn(server)

    @abc.abstractmethod
    async def resize(
        self, server: compute_specs.ServerSpec, flavor: compute_specs.FlavorSpec
    ) -> None:
        """Give the instance ``flavor`` (also used to go back on revert); keeps its power."""

    # --- power ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def power_on(self, server_id: str) -> None: ...

    @abc.abstractmethod
    async def power_off(self, server_id: str) -> None: ...

    @abc.abstractmethod
    async def reboot(self, server: compute_specs.ServerSpec, hard: bool) -> None:
        """Soft (ask the guest) or hard (reset) reboot; leaves the instance running."""

    @abc.abstractmethod
    async def pause(self, server_id: str) -> None: ...

    @abc.abstractmethod
    async def unpause(self, server_id: str) -> None: ...

    @abc.abstractmethod
    async def suspend(self, server_id: str) -> None: ...

    @abc.abstractmethod
    async def resume(self, server_id: str) -> None: ...

    async def rescue(self, server: compute_specs.ServerSpec) -> None:
        """Boot the instance from its rescue image (optional)."""
        raise NotSupported("This compute driver does not support rescue.")

    async def unrescue(self, server_id: str) -> None:
        raise NotSupported("This compute driver does not support unrescue.")

    # --- data out ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def get_console_output(self, server_id: str) -> str:
        """The whole console log of the instance (the agent cuts the tail)."""

    @abc.abstractmethod
    async def snapshot(
        self, server_id: str, snapshot: compute_specs.SnapshotSpec, path: Path
    ) -> str:
        """Write the instance's root disk to ``path``; return the disk_format written
        (``snapshot.disk_format`` when it names one the driver can write)."""

    async def close(self) -> None:  # noqa: B027 (optional: most drivers hold nothing)
        """Release what the driver holds for itself (not the instances)."""
