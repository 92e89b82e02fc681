"""The ``qemu`` compute driver: each server a QEMU machine on this host (DESIGN §7).

Boots kernel + ramdisk images directly (Glance ``aki``/``ari`` images named by the
boot image's ``kernel_id`` and ``ramdisk_id`` properties, as Nova's libvirt driver
does for ``ami`` images), with the flavor's vCPUs and memory, one virtio NIC per
port on a tap named ``tap<port11>`` (the Linux network agent plugs it into the
network's bridge) and the serial console in a log file. The instance's data (its
hostname, SSH keys, user data, metadata) travels in a small cpio archive appended
to the ramdisk, which the stackbox guest reads at boot (``stackbox.guest``): a
config drive by other means until the metadata service exists.

Software emulation (TCG) unless ``accel`` says otherwise. Not done yet: disk images
(bootable root disks), snapshots, rescue, live migration.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from stackbox.agent.compute import driver, images
from stackbox.bus import compute_specs
from stackbox.guest import build as guest_build
from stackbox.linux import qemu as vm
from stackbox.linux import run as linux_run

# How long a guest may take to power off when asked before its machine is stopped.
SHUTDOWN_GRACE = 10.0
POWER = {
    "running": compute_specs.RUNNING,
    "paused": compute_specs.PAUSED,
    "suspended": compute_specs.SUSPENDED,
    "shutdown": compute_specs.SHUTDOWN,
}


def _tap(port_id: str) -> str:
    return f"tap{port_id[:11]}"


def _user_data(value: str | None) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value.encode()


def instance_files(server: compute_specs.ServerSpec) -> dict[str, bytes]:
    """What the guest reads from ``/stackbox/instance``."""
    hostname = server.hostname or server.name or server.id
    meta: dict[str, Any] = {
        "uuid": server.id,
        "name": server.name,
        "hostname": hostname,
        "launch_index": server.launch_index,
        "availability_zone": server.availability_zone,
        "project_id": server.project_id,
        "meta": dict(server.metadata),
        "public_keys": {server.key_name: server.key_data} if server.key_data else {},
    }
    files = {
        "hostname": f"{hostname}\n".encode(),
        "meta_data.json": json.dumps(meta).encode(),
        "authorized_keys": f"{server.key_data}\n".encode() if server.key_data else b"",
    }
    user_data = _user_data(server.user_data)
    if user_data is not None:
        files["user_data"] = user_data
    if server.admin_password:
        files["password"] = server.admin_password.encode()
    return files


class QemuDriver(driver.Driver):
    hypervisor_type = "QEMU"

    def __init__(
        self,
        host: str,
        work_dir: Path,
        call: images.Call,
        *,
        accel: str = "tcg",
        machine: str = "pc",
        host_ip: str | None = None,
    ) -> None:
        self.host = host
        self.work_dir = work_dir
        self.call = call
        self.accel = accel
        self.machine = machine
        self.host_ip = host_ip
        self.instances_dir = work_dir / "instances"
        self.image_cache = work_dir / "images"

    # --- the host ---------------------------------------------------------------------------

    def host_resources(self) -> compute_specs.HypervisorReport:
        vcpus = os.cpu_count() or 1
        with open("/proc/meminfo") as meminfo:
            total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        disk = shutil.disk_usage(self.work_dir)
        return compute_specs.HypervisorReport(
            hypervisor_hostname=self.host,
            hypervisor_type=self.hypervisor_type,
            hypervisor_version=7002000,
            vcpus=vcpus,
            memory_mb=total_kb // 1024,
            local_gb=disk.total // 2**30,
            cpu_info={
                "arch": "x86_64",
                "model": self.accel,
                "vendor": "QEMU",
                "topology": {"sockets": 1, "cores": vcpus, "threads": 1},
                "features": [],
            },
            supported_instances=(("x86_64", "qemu", "hvm"),),
            host_ip=self.host_ip,
        )

    def _dir(self, server_id: str) -> Path:
        return self.instances_dir / server_id

    async def list_instances(self) -> list[str]:
        if not self.instances_dir.is_dir():
            return []
        return sorted(p.name for p in self.instances_dir.iterdir() if (p / "spec.json").exists())

    async def get_info(self, server_id: str) -> driver.InstanceInfo | None:
        directory = self._dir(server_id)
        if not (directory / "spec.json").exists():
            return None
        state = await asyncio.to_thread(vm.status, directory)
        if state == "paused" and (directory / "suspended").exists():
            state = "suspended"
        return driver.InstanceInfo(server_id, POWER.get(state or "shutdown", compute_specs.NOSTATE))

    def _existing(self, server_id: str) -> Path:
        directory = self._dir(server_id)
        if not (directory / "spec.json").exists():
            raise driver.InstanceNotFound(server_id)
        return directory

    # --- the machine ------------------------------------------------------------------------

    def _argv(self, directory: Path, spec: dict[str, Any]) -> list[str]:
        pci = self.machine != "microvm"
        nic = "virtio-net-pci" if pci else "virtio-net-device"
        # Entropy for the guest: without it dropbear's host key waits ~1 s for the pool.
        rng = "virtio-rng-pci" if pci else "virtio-rng-device"
        argv = [
            "-name", spec["id"],
            "-machine", self.machine,
            "-accel", self.accel,
            "-nodefaults", "-no-user-config",
            "-m", str(spec["memory_mb"]),
            "-smp", str(spec["vcpus"]),
            "-kernel", spec["kernel"],
            "-initrd", str(directory / "initrd"),
            "-append", guest_build.KERNEL_CMDLINE,
            "-device", rng,
        ]  # fmt: skip
        for index, port in enumerate(spec["ports"]):
            argv += [
                "-netdev", f"tap,id=n{index},ifname={_tap(port['id'])},script=no,downscript=no",
                "-device", f"{nic},netdev=n{index},mac={port['mac']}",
            ]  # fmt: skip
        return argv

    def _start(self, directory: Path) -> None:
        spec = json.loads((directory / "spec.json").read_text())
        (directory / "suspended").unlink(missing_ok=True)
        try:
            vm.ensure_running(directory, self._argv(directory, spec))
        except linux_run.LinuxError as exc:
            raise driver.DriverError(f"QEMU did not start: {exc.stderr.strip()[:300]}") from None

    def _write_spec(
        self,
        directory: Path,
        server: compute_specs.ServerSpec,
        flavor: compute_specs.FlavorSpec,
        kernel: Path,
    ) -> None:
        spec = {
            "id": server.id,
            "vcpus": flavor.vcpus,
            "memory_mb": flavor.memory_mb,
            "kernel": str(kernel),
            "ports": [{"id": p.id, "mac": p.mac_address} for p in server.ports],
        }
        (directory / "spec.json").write_text(json.dumps(spec))

    async def spawn(self, server: compute_specs.ServerSpec) -> None:
        image = server.image
        if image is None:
            raise driver.NotSupported("The qemu driver cannot boot from volumes.")
        kernel_id = image.properties.get("kernel_id")
        ramdisk_id = image.properties.get("ramdisk_id")
        if not kernel_id or not ramdisk_id:
            raise driver.NotSupported(
                f"Image {image.id} names no kernel_id and ramdisk_id: the qemu driver boots "
                "kernel and ramdisk images only (disk images are not supported yet)."
            )
        flavor = server.flavor or compute_specs.FlavorSpec("unknown")
        directory = self._dir(server.id)
        try:
            kernel = await images.fetch(self.call, self.image_cache, server.id, kernel_id)
            ramdisk = await images.fetch(self.call, self.image_cache, server.id, ramdisk_id)
            directory.mkdir(parents=True, exist_ok=True)
            archive = guest_build.instance_archive(instance_files(server))
            initrd = ramdisk.read_bytes() + archive
            await asyncio.to_thread((directory / "initrd").write_bytes, initrd)
            self._write_spec(directory, server, flavor, kernel)
            await asyncio.to_thread(self._start, directory)
        except BaseException:
            await asyncio.to_thread(self._remove, directory)
            raise

    def _remove(self, directory: Path) -> None:
        vm.remove(directory)
        shutil.rmtree(directory, ignore_errors=True)

    async def destroy(self, server_id: str) -> None:
        await asyncio.to_thread(self._remove, self._dir(server_id))

    async def resize(
        self, server: compute_specs.ServerSpec, flavor: compute_specs.FlavorSpec
    ) -> None:
        directory = self._existing(server.id)
        spec = json.loads((directory / "spec.json").read_text())
        spec.update(vcpus=flavor.vcpus, memory_mb=flavor.memory_mb)
        (directory / "spec.json").write_text(json.dumps(spec))
        if vm.pid_of(directory) is not None:
            await asyncio.to_thread(vm.remove, directory)
            await asyncio.to_thread(self._start, directory)

    # --- power ------------------------------------------------------------------------------

    async def power_on(self, server_id: str) -> None:
        await asyncio.to_thread(self._start, self._existing(server_id))

    def _shut_down(self, directory: Path, grace: float) -> None:
        """Ask the guest to power off (ACPI), then stop the machine if it has not."""
        if grace > 0 and vm.pid_of(directory) is not None:
            with contextlib.suppress(OSError, linux_run.LinuxError):
                vm.qmp(directory, "system_powerdown", timeout=2.0)
                deadline = time.monotonic() + grace
                while vm.pid_of(directory) is not None and time.monotonic() < deadline:
                    time.sleep(0.1)
        vm.remove(directory)

    async def power_off(self, server_id: str) -> None:
        await asyncio.to_thread(self._shut_down, self._existing(server_id), SHUTDOWN_GRACE)

    async def reboot(self, server: compute_specs.ServerSpec, hard: bool) -> None:
        """Soft: the guest shuts down (ACPI) and boots again; hard: the machine restarts
        at once (a fresh start boots in ~3 s; an in-place reset took ~8 s)."""
        directory = self._existing(server.id)
        await asyncio.to_thread(self._shut_down, directory, 0.0 if hard else SHUTDOWN_GRACE)
        await asyncio.to_thread(self._start, directory)

    async def _qmp(self, directory: Path, command: str) -> None:
        try:
            await asyncio.to_thread(vm.qmp, directory, command)
        except (OSError, linux_run.LinuxError) as exc:
            raise driver.DriverError(f"QEMU refused {command}: {exc}") from None

    async def pause(self, server_id: str) -> None:
        await self._qmp(self._existing(server_id), "stop")

    async def unpause(self, server_id: str) -> None:
        await self._qmp(self._existing(server_id), "cont")

    async def suspend(self, server_id: str) -> None:
        directory = self._existing(server_id)
        await self._qmp(directory, "stop")
        (directory / "suspended").touch()

    async def resume(self, server_id: str) -> None:
        directory = self._existing(server_id)
        (directory / "suspended").unlink(missing_ok=True)
        await self._qmp(directory, "cont")

    # --- data out ---------------------------------------------------------------------------

    async def get_console_output(self, server_id: str) -> str:
        log = self._existing(server_id) / "console.log"
        if not log.exists():
            return ""
        data = await asyncio.to_thread(log.read_bytes)
        return data.decode(errors="replace")

    async def snapshot(
        self, server_id: str, snapshot: compute_specs.SnapshotSpec, path: Path
    ) -> str:
        raise driver.NotSupported("The qemu driver cannot snapshot kernel-booted instances yet.")
