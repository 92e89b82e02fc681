"""Real instances: a server booted by the qemu driver from the stackbox guest gets
its address from dnsmasq over the network's bridge and answers SSH with the key it
was booted with, as its own hostname, with the flavor's vCPUs (what Tempest's
validation tests check from inside a guest)."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from stackbox.guest import build as guest_build
from stackbox.linux import qemu as linux_qemu
from tests import cloudfixture
from tests.linux import hostnet

T = TypeVar("T")
pytestmark = [
    hostnet.skip_unless_root(),
    pytest.mark.skipif(
        shutil.which(linux_qemu.BINARY) is None or shutil.which("ssh") is None,
        reason="needs qemu-system-x86 and openssh-client (`make test` installs them)",
    ),
]


def wait_for(what: str, check: Callable[[], T | None], timeout: float) -> T:
    return cloudfixture.wait_for(check, timeout, what)


@pytest.fixture(scope="module")
def guest_image(tmp_path_factory: pytest.TempPathFactory) -> guest_build.GuestImage:
    return guest_build.build(tmp_path_factory.mktemp("guest"))


def stop_leftover_machines(state_dir: Path) -> None:
    """Machines a failed test left: stopped by the pid files this cloud's driver wrote."""
    for directory in (state_dir / "compute-agent" / "instances").glob("*"):
        linux_qemu.remove(directory)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[cloudfixture.Cloud]:
    try:
        with cloudfixture.in_process(
            tmp_path, network={"agent": "linux"}, compute={"driver": "qemu"}
        ) as running:
            yield running
    finally:
        stop_leftover_machines(tmp_path)


def ssh(namespace: str, key: Path, address: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ip", "netns", "exec", namespace, "ssh", "-i", str(key),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=3", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            f"cirros@{address}", command,
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_a_server_boots_leases_its_address_and_answers_ssh(
    cloud: cloudfixture.Cloud, guest_image: guest_build.GuestImage, tmp_path: Path
) -> None:
    conn = cloud.sdk()
    host = cloud.plane.agents[0].host
    kernel = conn.image.create_image(
        name="guest-kernel", disk_format="aki", container_format="aki",
        data=guest_image.kernel.read_bytes(), visibility="public",
    )  # fmt: skip
    ramdisk = conn.image.create_image(
        name="guest-ramdisk", disk_format="ari", container_format="ari",
        data=guest_image.initramfs.read_bytes(), visibility="public",
    )  # fmt: skip
    image = conn.image.create_image(
        name="guest", disk_format="ami", container_format="ami", data=b"\0" * 512,
        visibility="public", kernel_id=kernel.id, ramdisk_id=ramdisk.id,
    )  # fmt: skip
    flavor = conn.compute.create_flavor(name="two-cpus", ram=192, vcpus=2, disk=1)
    keypair = conn.compute.create_keypair(name="guest-key")
    key = tmp_path / "id"
    key.write_text(keypair.private_key)
    key.chmod(0o600)
    third = random.randint(0, 255)
    net = conn.network.create_network(name="guests")
    conn.network.create_subnet(
        network_id=net.id, ip_version=4, cidr=f"10.253.{third}.0/24", gateway_ip=None
    )

    name = f"guest-{third}"
    server = conn.compute.create_server(
        name=name, image_id=image.id, flavor_id=flavor.id,
        networks=[{"uuid": net.id}], key_name=keypair.name,
    )  # fmt: skip
    server = wait_for(
        "the server to leave BUILD",
        lambda: (found := conn.compute.get_server(server.id)).status != "BUILD" and found,
        timeout=120,
    )
    assert server.status == "ACTIVE", server.fault
    address = next(iter(server.addresses.values()))[0]["addr"]
    wait_for(
        "the guest's sshd",
        lambda: "sshd ready" in (conn.compute.get_server_console_output(server)["output"] or ""),
        timeout=180,
    )
    console = conn.compute.get_server_console_output(server)["output"]
    assert f"lease {address}" in console

    # A client on the same network: a port of its own, its tap made by this test.
    client = conn.network.create_port(network_id=net.id, binding_host_id=host)
    client_ip = client.fixed_ips[0]["ip_address"]
    with hostnet.guest(f"tap{client.id[:11]}", client.mac_address) as namespace:
        hostnet.sh("ip", "-n", namespace, "addr", "add", f"{client_ip}/24", "dev", "eth0")
        wait_for(
            "the client port wired", lambda: conn.network.get_port(client.id).status == "ACTIVE",
            timeout=20,
        )  # fmt: skip

        def hostname() -> subprocess.CompletedProcess[str] | None:
            answer = ssh(namespace, key, address, "hostname")
            return answer if answer.returncode == 0 else None

        answer = wait_for("an SSH answer", hostname, timeout=60)
        assert answer.stdout.strip().split(".")[0] == name
        cpus = ssh(namespace, key, address, "grep -c ^processor /proc/cpuinfo")
        assert cpus.stdout.strip() == "2"

    port = next(iter(conn.network.ports(device_id=server.id)))
    tap = f"tap{port.id[:11]}"
    assert hostnet.link_exists(tap)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    # The machine is gone, and with it its tap.
    assert not (cloud.state_dir / "compute-agent" / "instances" / server.id).exists()
    assert not hostnet.link_exists(tap)
