"""Real instances: a server booted by the qemu driver from the stackbox guest gets
its address from dnsmasq over the network's bridge and answers SSH with the key it
was booted with, as its own hostname, with the flavor's vCPUs (what Tempest's
validation tests check from inside a guest)."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

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


def ssh(
    namespace: str, key: Path, address: str, command: str, user: str = "cirros"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ip", "netns", "exec", namespace, "ssh", "-i", str(key),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=3", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            f"{user}@{address}", command,
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


@dataclasses.dataclass
class Booting:
    """What a test boots guests with: the images, a 2-vCPU flavor, a key."""

    image_id: str
    flavor_id: str
    key_name: str
    key: Path


def prepare(conn: Any, guest_image: guest_build.GuestImage, tmp_path: Path) -> Booting:
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
    return Booting(image.id, flavor.id, keypair.name, key)


def boot(conn: Any, booting: Booting, name: str, network_id: str) -> Any:
    """A server ACTIVE with its sshd up (from its console, read through the API)."""
    server = conn.compute.create_server(
        name=name, image_id=booting.image_id, flavor_id=booting.flavor_id,
        networks=[{"uuid": network_id}], key_name=booting.key_name,
    )  # fmt: skip
    server = wait_for(
        "the server to leave BUILD",
        lambda: (found := conn.compute.get_server(server.id)).status != "BUILD" and found,
        timeout=120,
    )
    assert server.status == "ACTIVE", server.fault
    wait_for(
        "the guest's sshd",
        lambda: "sshd ready" in (conn.compute.get_server_console_output(server)["output"] or ""),
        timeout=180,
    )
    return server


@contextlib.contextmanager
def client_on(conn: Any, network_id: str, host: str, prefixlen: int) -> Iterator[str]:
    """A namespace on ``network_id`` through a port of its own (its tap made here)."""
    port = conn.network.create_port(network_id=network_id, binding_host_id=host)
    address = port.fixed_ips[0]["ip_address"]
    with hostnet.guest(f"tap{port.id[:11]}", port.mac_address) as namespace:
        hostnet.sh("ip", "-n", namespace, "addr", "add", f"{address}/{prefixlen}", "dev", "eth0")
        wait_for(
            "the client port wired", lambda: conn.network.get_port(port.id).status == "ACTIVE",
            timeout=20,
        )  # fmt: skip
        yield namespace
    conn.network.delete_port(port)


def ssh_answer(namespace: str, key: Path, address: str, command: str) -> str:
    """``command``'s output once the guest answers SSH at ``address``."""

    def attempt() -> subprocess.CompletedProcess[str] | None:
        answer = ssh(namespace, key, address, command)
        return answer if answer.returncode == 0 else None

    return wait_for(f"an SSH answer from {address}", attempt, timeout=60).stdout.strip()


@dataclasses.dataclass
class Guests:
    """A qemu cloud ready to boot: its SDK connection, its host, a random octet for
    addresses no other test uses."""

    conn: Any
    host: str
    booting: Booting
    third: int = dataclasses.field(default_factory=lambda: random.randint(0, 255))


@pytest.fixture
def guests(
    cloud: cloudfixture.Cloud, guest_image: guest_build.GuestImage, tmp_path: Path
) -> Guests:
    conn = cloud.sdk()
    return Guests(conn, cloud.plane.agents[0].host, prepare(conn, guest_image, tmp_path))


def test_a_server_boots_leases_its_address_and_answers_ssh(
    cloud: cloudfixture.Cloud, guests: Guests
) -> None:
    conn, host, booting, third = guests.conn, guests.host, guests.booting, guests.third
    net = conn.network.create_network(name="guests")
    conn.network.create_subnet(
        network_id=net.id, ip_version=4, cidr=f"10.253.{third}.0/24", gateway_ip=None
    )
    name = f"guest-{third}"
    server = boot(conn, booting, name, net.id)
    address = next(iter(server.addresses.values()))[0]["addr"]
    assert f"lease {address}" in conn.compute.get_server_console_output(server)["output"]

    with client_on(conn, net.id, host, 24) as namespace:
        hostname = ssh_answer(namespace, booting.key, address, "hostname")
        assert hostname.split(".")[0] == name
        cpus = ssh(namespace, booting.key, address, "grep -c ^processor /proc/cpuinfo")
        assert cpus.stdout.strip() == "2"

    port = next(iter(conn.network.ports(device_id=server.id)))
    tap = f"tap{port.id[:11]}"
    assert hostnet.link_exists(tap)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    # The machine is gone, and with it its tap.
    assert not (cloud.state_dir / "compute-agent" / "instances" / server.id).exists()
    assert not hostnet.link_exists(tap)


def test_a_floating_ip_reaches_the_server_through_its_router(guests: Guests) -> None:
    conn, host, booting, third = guests.conn, guests.host, guests.booting, guests.third
    # An external network whose bridge has no uplink: "outside" is a test namespace on it.
    public = conn.network.create_network(
        name="public", is_router_external=True,
        provider_network_type="flat", provider_physical_network="public",
    )  # fmt: skip
    conn.network.create_subnet(
        network_id=public.id, ip_version=4, cidr=f"172.31.{third}.0/24", enable_dhcp=False
    )
    private = conn.network.create_network(name="private")
    subnet = conn.network.create_subnet(
        network_id=private.id, ip_version=4, cidr=f"10.254.{third}.0/24"
    )
    router = conn.network.create_router(name="r", external_gateway_info={"network_id": public.id})
    conn.network.add_interface_to_router(router, subnet=subnet.id)
    namespace = f"qrouter-{router.id}"
    wait_for("the router's namespace", lambda: namespace in hostnet.namespaces(), timeout=20)

    name = f"behind-{third}"
    server = boot(conn, booting, name, private.id)
    port = next(iter(conn.network.ports(device_id=server.id)))
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    with client_on(conn, public.id, host, 24) as outside:
        hostname = ssh_answer(outside, booting.key, fip.floating_ip_address, "hostname")
        assert hostname.split(".")[0] == name
        # Out of the guest, through the router: its packets leave as the floating IP.
        outside_ip = hostnet.sh("ip", "-n", outside, "-4", "-o", "addr", "show", "eth0").split()[3]
        ping = ssh(
            outside, booting.key, fip.floating_ip_address,
            f"busybox ping -c 1 -W 2 {outside_ip.split('/')[0]}", user="root",
        )  # fmt: skip
        assert ping.returncode == 0, ping.stdout + ping.stderr

    conn.network.delete_ip(fip)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    conn.network.remove_interface_from_router(router, subnet=subnet.id)
    conn.network.delete_router(router)
    wait_for("the router's namespace gone", lambda: namespace not in hostnet.namespaces(), 20)


def test_servers_booted_at_once_share_one_download_of_each_image(
    cloud: cloudfixture.Cloud, guests: Guests
) -> None:
    conn, booting = guests.conn, guests.booting
    net = conn.network.create_network(name="pair")
    conn.network.create_subnet(
        network_id=net.id, ip_version=4, cidr=f"10.252.{guests.third}.0/24", gateway_ip=None
    )
    first = conn.compute.create_server(
        name="pair", image_id=booting.image_id, flavor_id=booting.flavor_id,
        networks=[{"uuid": net.id}], min_count=2, max_count=2,
    )  # fmt: skip
    servers = wait_for(
        "both servers to leave BUILD",
        lambda: (
            len(s := [x for x in conn.compute.servers(name="pair") if x.status != "BUILD"]) == 2
            and s
        ),
        timeout=120,
    )
    assert {s.status for s in servers} == {"ACTIVE"}, [s.fault for s in servers]
    cache = cloud.state_dir / "compute-agent" / "images"
    # The kernel and the ramdisk, once each; no partial download left behind.
    assert len(list(cache.iterdir())) == 2, sorted(p.name for p in cache.iterdir())
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=60)
    assert first.id in {s.id for s in servers}
