"""DHCP on the Linux data plane: a port's address comes from dnsmasq in the
network's qdhcp- namespace, over the network's bridge, to a namespace standing in
for the instance; what the agent made goes away with the network."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests import cloudfixture
from tests.linux import hostnet

pytestmark = hostnet.skip_unless_root()
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float = 20.0) -> T:
    return cloudfixture.wait_for(check, timeout, what)


def test_a_port_gets_its_address_gateway_and_dns_from_dnsmasq(tmp_path: Path) -> None:
    third = random.randint(0, 255)
    cidr, gateway, dns = f"10.251.{third}.0/24", f"10.251.{third}.1", f"10.251.{third}.53"
    with cloudfixture.in_process(tmp_path, network={"agent": "linux"}) as cloud:
        host = cloud.plane.agents[0].host
        conn = cloud.sdk()
        net = conn.network.create_network(name="dhcp-test")
        subnet = conn.network.create_subnet(
            network_id=net.id,
            ip_version=4,
            cidr=cidr,
            gateway_ip=gateway,
            dns_nameservers=[dns],
        )
        namespace = f"qdhcp-{net.id}"
        bridge = f"brq{net.id[:11]}"
        # The network is scheduled to this host's DHCP agent, which asks for its port.
        wait_for("the DHCP namespace", lambda: namespace in hostnet.namespaces())
        dhcp_ports = wait_for(
            "the DHCP port",
            lambda: list(conn.network.ports(network_id=net.id, device_owner="network:dhcp")),
        )
        assert dhcp_ports[0].binding_host_id == host
        assert dhcp_ports[0].fixed_ips[0]["subnet_id"] == subnet.id

        port = conn.network.create_port(network_id=net.id)
        tap = f"tap{port.id[:11]}"
        with hostnet.guest(tap, port.mac_address) as guest:
            conn.network.update_port(port, binding_host_id=host)
            wait_for("the port ACTIVE", lambda: conn.network.get_port(port.id).status == "ACTIVE")
            assert hostnet.sh("cat", f"/sys/class/net/{tap}/master/uevent").count(bridge) == 1
            lease = hostnet.dhcp_lease(guest, str(tmp_path))
            assert lease["ip"] == port.fixed_ips[0]["ip_address"]
            assert lease["subnet"] == "255.255.255.0"
            assert lease["router"] == gateway
            assert lease["dns"].split() == [dns]
            assert lease["mtu"] == str(net.mtu)
            assert lease["hostname"] == "host-" + lease["ip"].replace(".", "-")

            # An admin turns the port off: its tap goes down (and the port DOWN), then back.
            conn.network.update_port(port, is_admin_state_up=False)
            wait_for("the port DOWN", lambda: conn.network.get_port(port.id).status == "DOWN")
            flags = hostnet.sh("ip", "-br", "link", "show", tap).split()[-1]
            assert "UP" not in flags.strip("<>").split(","), flags
            conn.network.update_port(port, is_admin_state_up=True)
            wait_for(
                "the port ACTIVE again", lambda: conn.network.get_port(port.id).status == "ACTIVE"
            )
            assert hostnet.dhcp_lease(guest, str(tmp_path))["ip"] == lease["ip"]

            # A port made once dnsmasq runs is served too (dnsmasq restarted with the new
            # hosts: a SIGHUP reload crashed dnsmasq 2.90 after its first lease).
            second = conn.network.create_port(network_id=net.id, binding_host_id=host)
            with hostnet.guest(f"tap{second.id[:11]}", second.mac_address) as other:
                again = wait_for(
                    "a lease for the second port",
                    lambda: hostnet.dhcp_lease(other, str(tmp_path)).get("ip"),
                )
                assert again == second.fixed_ips[0]["ip_address"]
            conn.network.delete_port(second)
            conn.network.delete_port(port)

        conn.network.delete_network(net)
        wait_for("the DHCP namespace gone", lambda: namespace not in hostnet.namespaces())
        wait_for("the bridge gone", lambda: not hostnet.link_exists(bridge))
    assert namespace not in hostnet.namespaces()
