"""The fake compute driver: instances as state in memory, for API-only clouds and tests.

It keeps the contract of a real driver (``driver.Driver``): spawn is all or
nothing (a failed or cancelled spawn leaves nothing behind), destroy is
idempotent, an unknown instance raises ``InstanceNotFound``. Its console log reads
like a small Linux guest booting (kernel lines, a DHCP lease per address, a login
prompt) and grows with every power change, so console-output clients see
something real. A snapshot is a small, valid image the driver makes itself (it
cannot read the source image): an empty qcow2 v3 of the flavor's root disk size
(unless the image asks for another format: then a short raw disk).

Knobs for tests: ``fail_next(operation, message)`` makes the next call of that
operation raise ``DriverError(message)``; ``spawn_delay`` makes every spawn take
that long (a slow hypervisor).
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from pathlib import Path

from stackbox.agent.compute import driver
from stackbox.bus import compute_specs

# A console keeps this many lines (a real serial log is a ring buffer too).
CONSOLE_LINES = 1000
RAW_SNAPSHOT_BYTES = 1 << 20
GIB = 1 << 30


@dataclasses.dataclass
class FakeInstance:
    id: str
    name: str
    hostname: str
    power_state: int
    flavor: compute_specs.FlavorSpec | None
    image_id: str
    ports: tuple[compute_specs.VifSpec, ...]
    console: list[str] = dataclasses.field(default_factory=list)
    rescued: bool = False
    clock: float = 0.0


class FakeDriver(driver.Driver):
    hypervisor_type = "fake"

    def __init__(
        self,
        host: str,
        *,
        vcpus: int = 32,
        memory_mb: int = 65536,
        local_gb: int = 1024,
        host_ip: str | None = "127.0.0.1",
        spawn_delay: float = 0.0,
    ) -> None:
        self.host = host
        self.vcpus = vcpus
        self.memory_mb = memory_mb
        self.local_gb = local_gb
        self.host_ip = host_ip
        self.spawn_delay = spawn_delay
        self.instances: dict[str, FakeInstance] = {}
        self._failures: dict[str, list[str]] = {}
        # (operation, server id) of every call, in order: what tests look at.
        self.calls: list[tuple[str, str]] = []

    # --- knobs ------------------------------------------------------------------------------

    def fail_next(self, operation: str, message: str = "The fake driver was told to fail.") -> None:
        """The next ``operation`` (``spawn``, ``reboot``, ``snapshot``...) raises ``message``."""
        self._failures.setdefault(operation, []).append(message)

    def _step(self, operation: str, server_id: str) -> None:
        self.calls.append((operation, server_id))
        pending = self._failures.get(operation)
        if pending:
            raise driver.DriverError(pending.pop(0))

    def _get(self, server_id: str) -> FakeInstance:
        instance = self.instances.get(server_id)
        if instance is None:
            raise driver.InstanceNotFound(server_id)
        return instance

    # --- what the host has and holds --------------------------------------------------------

    def host_resources(self) -> compute_specs.HypervisorReport:
        return compute_specs.HypervisorReport(
            hypervisor_hostname=self.host,
            hypervisor_type=self.hypervisor_type,
            hypervisor_version=1000,
            vcpus=self.vcpus,
            memory_mb=self.memory_mb,
            local_gb=self.local_gb,
            cpu_info={
                "arch": "x86_64",
                "model": "fake",
                "vendor": "stackbox",
                "topology": {"sockets": 1, "cores": self.vcpus, "threads": 1},
                "features": [],
            },
            supported_instances=(("x86_64", self.hypervisor_type, "hvm"),),
            host_ip=self.host_ip,
        )

    async def list_instances(self) -> list[str]:
        return list(self.instances)

    async def get_info(self, server_id: str) -> driver.InstanceInfo | None:
        instance = self.instances.get(server_id)
        return None if instance is None else driver.InstanceInfo(server_id, instance.power_state)

    # --- life cycle -------------------------------------------------------------------------

    async def spawn(self, server: compute_specs.ServerSpec) -> None:
        if server.id in self.instances:
            raise driver.DriverError(f"Instance {server.id} already exists on {self.host}.")
        instance = FakeInstance(
            id=server.id,
            name=server.name,
            hostname=server.hostname or server.name or server.id,
            power_state=compute_specs.NOSTATE,
            flavor=server.flavor,
            image_id=server.image.id if server.image else "",
            ports=server.ports,
        )
        self.instances[server.id] = instance
        try:
            if self.spawn_delay > 0:
                await asyncio.sleep(self.spawn_delay)
            self._step("spawn", server.id)
        except BaseException:
            # All or nothing, cancellation included.
            self.instances.pop(server.id, None)
            raise
        self._boot(instance, server.image.name if server.image else "volume")

    async def destroy(self, server_id: str) -> None:
        self._step("destroy", server_id)
        self.instances.pop(server_id, None)

    async def rebuild(self, server: compute_specs.ServerSpec) -> None:
        self._step("rebuild", server.id)
        await self.destroy(server.id)
        await self.spawn(server)

    async def resize(
        self, server: compute_specs.ServerSpec, flavor: compute_specs.FlavorSpec
    ) -> None:
        instance = self._get(server.id)
        self._step("resize", server.id)
        instance.flavor = flavor
        self._log(
            instance, f"virtio_balloon: resized to {flavor.memory_mb} MB, {flavor.vcpus} CPUs"
        )

    # --- power ------------------------------------------------------------------------------

    async def power_on(self, server_id: str) -> None:
        instance = self._get(server_id)
        self._step("power_on", server_id)
        if instance.power_state != compute_specs.RUNNING:
            self._boot(instance)

    async def power_off(self, server_id: str) -> None:
        instance = self._get(server_id)
        self._step("power_off", server_id)
        if instance.power_state != compute_specs.SHUTDOWN:
            self._log(instance, "The system is going down NOW!")
            self._log(instance, "reboot: Power down")
            instance.power_state = compute_specs.SHUTDOWN

    async def reboot(self, server: compute_specs.ServerSpec, hard: bool) -> None:
        instance = self._get(server.id)
        self._step("reboot", server.id)
        if not hard:
            self._log(instance, "The system is going down NOW!")
            self._log(instance, "reboot: Restarting system")
        self._boot(instance)

    async def pause(self, server_id: str) -> None:
        instance = self._get(server_id)
        self._step("pause", server_id)
        instance.power_state = compute_specs.PAUSED

    async def unpause(self, server_id: str) -> None:
        instance = self._get(server_id)
        self._step("unpause", server_id)
        instance.power_state = compute_specs.RUNNING

    async def suspend(self, server_id: str) -> None:
        instance = self._get(server_id)
        self._step("suspend", server_id)
        self._log(instance, "PM: suspend entry (deep)")
        instance.power_state = compute_specs.SUSPENDED

    async def resume(self, server_id: str) -> None:
        instance = self._get(server_id)
        self._step("resume", server_id)
        self._log(instance, "PM: suspend exit")
        instance.power_state = compute_specs.RUNNING

    async def rescue(self, server: compute_specs.ServerSpec) -> None:
        instance = self._get(server.id)
        self._step("rescue", server.id)
        instance.rescued = True
        self._boot(instance, "rescue")

    async def unrescue(self, server_id: str) -> None:
        instance = self._get(server_id)
        self._step("unrescue", server_id)
        instance.rescued = False
        self._boot(instance)

    # --- data out ---------------------------------------------------------------------------

    async def get_console_output(self, server_id: str) -> str:
        return "\n".join(self._get(server_id).console)

    async def snapshot(
        self, server_id: str, snapshot: compute_specs.SnapshotSpec, path: Path
    ) -> str:
        instance = self._get(server_id)
        self._step("snapshot", server_id)
        root_gb = instance.flavor.root_gb if instance.flavor else 0
        # qcow2 unless the image asks for a format whose data is raw bytes (raw, ami...).
        disk_format = "qcow2" if snapshot.disk_format in ("", "qcow2") else "raw"
        if disk_format == "qcow2":
            data = empty_qcow2(max(root_gb, 1) * GIB)
        else:
            data = f"stackbox fake snapshot of {server_id}\n".encode()
        await asyncio.to_thread(
            _write, path, data, RAW_SNAPSHOT_BYTES if disk_format == "raw" else 0
        )
        return disk_format

    # --- the guest's console ----------------------------------------------------------------

    def _log(self, instance: FakeInstance, line: str) -> None:
        instance.clock += 0.137
        instance.console.append(f"[{instance.clock:12.6f}] {line}")
        del instance.console[:-CONSOLE_LINES]

    def _boot(self, instance: FakeInstance, image_name: str = "") -> None:
        flavor = instance.flavor
        memory = flavor.memory_mb if flavor else 512
        vcpus = flavor.vcpus if flavor else 1
        instance.clock = 0.0
        self._log(instance, "Linux version 6.1.0-stackbox (fake) #1 SMP PREEMPT_DYNAMIC")
        self._log(instance, "Command line: console=ttyS0 root=/dev/vda rw")
        self._log(instance, f"Memory: {memory * 1024}K available")
        self._log(instance, f"smp: Brought up 1 node, {vcpus} CPUs")
        self._log(instance, "Freeing unused kernel image memory")
        if instance.rescued:
            self._log(instance, "rescue: root disk attached as /dev/vdb")
        for index, port in enumerate(instance.ports):
            for address in port.fixed_ips:
                self._log(instance, f"udhcpc: lease of {address.ip_address} obtained on eth{index}")
        self._log(instance, f"metadata: instance-id {instance.id}, hostname {instance.hostname}")
        self._log(instance, "Starting dropbear sshd: OK")
        banner = f"stackbox fake guest {image_name}".rstrip()
        instance.console.append(banner)
        instance.console.append(f"{instance.hostname} login: ")
        del instance.console[:-CONSOLE_LINES]
        instance.power_state = compute_specs.RUNNING


def _write(path: Path, data: bytes, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write(data)
        if size > len(data):
            out.truncate(size)


def empty_qcow2(virtual_size: int) -> bytes:
    """A valid, empty qcow2 v3 image of ``virtual_size`` bytes (what ``qemu-img create``
    makes): a header, a one-cluster refcount table and block, and a zeroed L1 table."""
    cluster_bits = 16
    cluster = 1 << cluster_bits
    # Each L2 table maps cluster/8 clusters.
    per_l1_entry = cluster * (cluster // 8)
    l1_size = max(1, -(-virtual_size // per_l1_entry))
    refcount_table, refcount_block, l1_table = cluster, 2 * cluster, 3 * cluster
    header = struct.pack(
        ">IIQIIQIIQQIIQQQQII",
        0x514649FB,  # "QFI\xfb"
        3,  # version
        0,  # backing file offset
        0,  # backing file size
        cluster_bits,
        virtual_size,
        0,  # no encryption
        l1_size,
        l1_table,
        refcount_table,
        1,  # refcount table clusters
        0,  # snapshots
        0,
        0,  # incompatible features
        0,  # compatible features
        0,  # autoclear features
        4,  # refcount order: 16-bit refcounts
        104,  # header length
    )
    image = bytearray(l1_table + cluster)
    image[: len(header)] = header
    struct.pack_into(">Q", image, refcount_table, refcount_block)
    for index in range(4):  # header, refcount table, refcount block, L1 table
        struct.pack_into(">H", image, refcount_block + 2 * index, 1)
    return bytes(image)
