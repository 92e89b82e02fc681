"""Subnets and IPAM through the Neutron API (plain HTTP as admin, demo and alt_demo;
openstacksdk where it helps)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests import cloudfixture
from tests.functional import netapi
from tests.functional.netapi import fresh_v4, network, ok, port, post_subnet, refused, subnet


@pytest.fixture(scope="module")
def admin_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with netapi.client(cloud, cloud.token()) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with netapi.client(cloud, cloud.token("demo", project="demo")) as client:
        yield client


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with netapi.client(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        yield client


# --- IPv4 subnets ---------------------------------------------------------------------------


def test_ipv4_subnet_gets_neutron_defaults_and_shows_on_its_network(demo: httpx.Client) -> None:
    net = network(demo)
    made = subnet(demo, net["id"], cidr="10.20.30.0/24", name="s1")
    assert made["gateway_ip"] == "10.20.30.1"
    assert made["allocation_pools"] == [{"start": "10.20.30.2", "end": "10.20.30.254"}]
    assert made["enable_dhcp"] is True
    assert made["ipv6_ra_mode"] is None and made["ipv6_address_mode"] is None
    assert made["dns_nameservers"] == [] and made["host_routes"] == []
    assert made["subnetpool_id"] is None and made["revision_number"] == 0
    assert ok(demo.get(f"/networks/{net['id']}"))["network"]["subnets"] == [made["id"]]
    assert ok(demo.get(f"/subnets/{made['id']}"))["subnet"] == made
    listed = ok(demo.get("/subnets", params={"network_id": net["id"], "fields": ["id", "cidr"]}))
    assert listed["subnets"] == [{"id": made["id"], "cidr": "10.20.30.0/24"}]


def test_cidr_with_host_bits_names_its_network(demo: httpx.Client) -> None:
    made = subnet(demo, network(demo)["id"], cidr="10.21.0.77/24")
    assert made["cidr"] == "10.21.0.0/24"
    refused(post_subnet(demo, network(demo)["id"], cidr="10.21/16", ip_version=4), 400)
    refused(post_subnet(demo, network(demo)["id"], cidr="10.21.0.0/24", ip_version=6), 400)


def test_gateway_null_gives_the_whole_range_and_outside_gateway_is_allowed(
    demo: httpx.Client,
) -> None:
    none = subnet(demo, network(demo)["id"], cidr="10.22.0.0/24", gateway_ip=None)
    assert none["gateway_ip"] is None
    assert none["allocation_pools"] == [{"start": "10.22.0.1", "end": "10.22.0.254"}]
    outside = subnet(demo, network(demo)["id"], cidr="10.22.1.0/24", gateway_ip="10.99.0.1")
    assert outside["gateway_ip"] == "10.99.0.1"
    assert outside["allocation_pools"] == [{"start": "10.22.1.1", "end": "10.22.1.254"}]
    middle = subnet(demo, network(demo)["id"], cidr="10.22.2.0/24", gateway_ip="10.22.2.100")
    assert middle["allocation_pools"] == [
        {"start": "10.22.2.1", "end": "10.22.2.99"},
        {"start": "10.22.2.101", "end": "10.22.2.254"},
    ]
    for bad in ("10.22.3.0", "10.22.3.255"):
        message = refused(
            post_subnet(
                demo, network(demo)["id"], cidr="10.22.3.0/24", ip_version=4, gateway_ip=bad
            ),
            400,
            "InvalidInput",
        )
        assert "Gateway is not valid on subnet" in message
    refused(
        post_subnet(demo, network(demo)["id"], cidr="10.22.4.0/24", ip_version=4, gateway_ip="::1"),
        400,
        "InvalidInput",
    )


def test_allocation_pools_are_checked_as_neutron_does(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    base = {"cidr": "10.23.0.0/24", "ip_version": 4}
    cases = [
        ([{"start": "10.23.0.10", "end": "10.23.1.10"}], 400, "OutOfBoundsAllocationPool"),
        ([{"start": "10.23.0.0", "end": "10.23.0.10"}], 400, "OutOfBoundsAllocationPool"),
        ([{"start": "10.23.0.20", "end": "10.23.0.10"}], 400, "InvalidAllocationPool"),
        (
            [
                {"start": "10.23.0.10", "end": "10.23.0.20"},
                {"start": "10.23.0.15", "end": "10.23.0.30"},
            ],
            409,
            "OverlappingAllocationPools",
        ),
        ([{"start": "10.23.0.1", "end": "10.23.0.20"}], 409, "GatewayConflictWithAllocationPools"),
        ([{"start": "10.23.0.10"}], 400, "InvalidInput"),
        ([{"start": "10.23.0.x", "end": "10.23.0.20"}], 400, "InvalidInput"),
    ]
    for pools, status, kind in cases:
        refused(post_subnet(demo, net_id, allocation_pools=pools, **base), status, kind)
    assert ok(demo.get("/subnets", params={"network_id": net_id}))["subnets"] == []
    made = subnet(
        demo,
        net_id,
        allocation_pools=[
            {"start": "10.23.0.100", "end": "10.23.0.110"},
            {"start": "10.23.0.10", "end": "10.23.0.20"},
        ],
        **base,
    )
    assert made["allocation_pools"] == [
        {"start": "10.23.0.10", "end": "10.23.0.20"},
        {"start": "10.23.0.100", "end": "10.23.0.110"},
    ]


def test_dns_nameservers_keep_their_order_and_refuse_duplicates(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    made = subnet(demo, net_id, dns_nameservers=["9.9.9.9", "1.1.1.1", "8.8.8.8"])
    assert made["dns_nameservers"] == ["9.9.9.9", "1.1.1.1", "8.8.8.8"]
    updated = ok(
        demo.put(
            f"/subnets/{made['id']}", json={"subnet": {"dns_nameservers": ["8.8.8.8", "9.9.9.9"]}}
        )
    )["subnet"]
    assert updated["dns_nameservers"] == ["8.8.8.8", "9.9.9.9"]
    assert updated["revision_number"] == made["revision_number"] + 1
    message = refused(
        post_subnet(
            demo, net_id, cidr=fresh_v4(), ip_version=4, dns_nameservers=["8.8.8.8", "8.8.8.8"]
        ),
        400,
    )
    assert "Duplicate nameserver" in message
    refused(
        post_subnet(
            demo,
            net_id,
            cidr=fresh_v4(),
            ip_version=4,
            dns_nameservers=[f"8.8.8.{i}" for i in range(6)],
        ),
        400,
        "DNSNameServersExhausted",
    )
    refused(
        post_subnet(demo, net_id, cidr=fresh_v4(), ip_version=4, dns_nameservers=["2001:db8::53"]),
        400,
        "InvalidInput",
    )


def test_host_routes_are_validated(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    route = {"destination": "10.200.0.0/16", "nexthop": "10.24.0.5"}
    made = subnet(demo, net_id, cidr="10.24.0.0/24", host_routes=[route])
    assert made["host_routes"] == [route]
    for bad in (
        [{"destination": "10.200.0.1/16", "nexthop": "10.24.0.5"}],
        [{"destination": "10.200.0.0/16"}],
        [route, route],
        [{"destination": "2001:db8::/64", "nexthop": "10.24.0.5"}],
    ):
        refused(post_subnet(demo, net_id, cidr=fresh_v4(), ip_version=4, host_routes=bad), 400)
    cleared = ok(demo.put(f"/subnets/{made['id']}", json={"subnet": {"host_routes": None}}))
    assert cleared["subnet"]["host_routes"] == []


def test_overlapping_cidrs_in_one_network_are_refused(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    subnet(demo, net_id, cidr="10.25.0.0/24")
    message = refused(
        post_subnet(demo, net_id, cidr="10.25.0.128/25", ip_version=4), 400, "InvalidInput"
    )
    assert "overlaps with another subnet" in message
    # Other networks may reuse the range.
    subnet(demo, network(demo)["id"], cidr="10.25.0.0/24")


def test_cidr_and_ip_version_are_immutable_and_unknown_attributes_refused(
    demo: httpx.Client,
) -> None:
    made = subnet(demo, network(demo)["id"])
    for change in ({"cidr": "10.26.0.0/24"}, {"ip_version": 6}, {"network_id": made["network_id"]}):
        message = refused(demo.put(f"/subnets/{made['id']}", json={"subnet": change}), 400)
        assert "not allowed in PUT" in message
    refused(demo.put(f"/subnets/{made['id']}", json={"subnet": {"bogus": 1}}), 400)
    refused(post_subnet(demo, made["network_id"], cidr=fresh_v4()), 400)  # no ip_version


def test_update_pools_and_gateway(demo: httpx.Client) -> None:
    made = subnet(demo, network(demo)["id"], cidr="10.27.0.0/24")
    url = f"/subnets/{made['id']}"
    pools = [{"start": "10.27.0.50", "end": "10.27.0.60"}]
    assert (
        ok(demo.put(url, json={"subnet": {"allocation_pools": pools}}))["subnet"][
            "allocation_pools"
        ]
        == pools
    )
    refused(
        demo.put(url, json={"subnet": {"gateway_ip": "10.27.0.55"}}),
        409,
        "GatewayConflictWithAllocationPools",
    )
    refused(
        demo.put(
            url, json={"subnet": {"allocation_pools": [{"start": "10.27.0.1", "end": "10.27.0.9"}]}}
        ),
        409,
        "GatewayConflictWithAllocationPools",
    )
    refused(
        demo.put(
            url,
            json={"subnet": {"allocation_pools": [{"start": "10.27.0.50", "end": "10.27.1.9"}]}},
        ),
        400,
        "OutOfBoundsAllocationPool",
    )
    moved = ok(demo.put(url, json={"subnet": {"gateway_ip": "10.27.0.254", "name": "moved"}}))[
        "subnet"
    ]
    assert moved["gateway_ip"] == "10.27.0.254" and moved["name"] == "moved"
    assert moved["allocation_pools"] == pools  # pools stay as they were
    assert ok(demo.put(url, json={"subnet": {"gateway_ip": None}}))["subnet"]["gateway_ip"] is None


def test_dhcp_needs_room_for_the_server(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    refused(post_subnet(demo, net_id, cidr="10.28.0.0/31", ip_version=4), 400, "InvalidInput")
    tiny = subnet(demo, net_id, cidr="10.28.0.0/31", enable_dhcp=False, gateway_ip=None)
    assert tiny["allocation_pools"] == [{"start": "10.28.0.0", "end": "10.28.0.1"}]
    refused(demo.put(f"/subnets/{tiny['id']}", json={"subnet": {"enable_dhcp": True}}), 400)


def test_bulk_create_is_all_or_nothing(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    good = {"network_id": net_id, "ip_version": 4, "cidr": "10.29.0.0/24"}
    bad = {"network_id": net_id, "ip_version": 4, "cidr": "10.29.0.0/25"}  # overlaps the first
    refused(demo.post("/subnets", json={"subnets": [good, bad]}), 400)
    assert ok(demo.get("/subnets", params={"network_id": net_id}))["subnets"] == []
    other = {"network_id": net_id, "ip_version": 4, "cidr": "10.29.1.0/24"}
    made = ok(demo.post("/subnets", json={"subnets": [good, other]}), 201)["subnets"]
    assert [s["cidr"] for s in made] == ["10.29.0.0/24", "10.29.1.0/24"]


# --- IPv6 -----------------------------------------------------------------------------------


def test_ipv6_modes_follow_neutron_rules(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    v6 = {"ip_version": 6}
    plain = subnet(demo, net_id, cidr="2001:db8:1::/64", **v6)
    assert plain["gateway_ip"] == "2001:db8:1::"  # the subnet-router anycast address
    assert plain["allocation_pools"] == [
        {"start": "2001:db8:1::1", "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}
    ]
    for mode in ("slaac", "dhcpv6-stateful", "dhcpv6-stateless"):
        made = subnet(
            demo,
            network(demo)["id"],
            cidr="2001:db8:2::/64",
            ipv6_ra_mode=mode,
            ipv6_address_mode=mode,
            **v6,
        )
        assert (made["ipv6_ra_mode"], made["ipv6_address_mode"]) == (mode, mode)
    only_ra = subnet(demo, network(demo)["id"], cidr="2001:db8:3::/64", ipv6_ra_mode="slaac", **v6)
    assert only_ra["ipv6_address_mode"] is None
    cases = [
        {
            "cidr": "2001:db8:4::/64",
            "ipv6_ra_mode": "slaac",
            "ipv6_address_mode": "dhcpv6-stateful",
        },
        {"cidr": "2001:db8:4::/64", "ipv6_address_mode": "slaac", "enable_dhcp": False},
        {"cidr": "2001:db8:4::/80", "ipv6_address_mode": "slaac"},
        {"cidr": "2001:db8:4::/64", "ipv6_address_mode": "bogus"},
        {"cidr": "::/64"},
    ]
    for case in cases:
        refused(post_subnet(demo, network(demo)["id"], ip_version=6, **case), 400)
    refused(
        post_subnet(demo, net_id, ip_version=4, cidr=fresh_v4(), ipv6_ra_mode="slaac"),
        400,
        "InvalidInput",
    )
    stateful = subnet(
        demo,
        network(demo)["id"],
        cidr="2001:db8:5::/64",
        ipv6_ra_mode="dhcpv6-stateful",
        ipv6_address_mode="dhcpv6-stateful",
        **v6,
    )
    message = refused(
        demo.put(f"/subnets/{stateful['id']}", json={"subnet": {"enable_dhcp": False}}), 400
    )
    assert "Cannot disable enable_dhcp with ipv6 attributes set" in message
    refused(demo.put(f"/subnets/{stateful['id']}", json={"subnet": {"ipv6_ra_mode": "slaac"}}), 400)


def test_slaac_ports_get_eui64_addresses(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    v4 = subnet(demo, net_id, cidr="10.30.0.0/24")
    early = port(demo, net_id)  # made before the SLAAC subnet exists
    slaac = subnet(
        demo,
        net_id,
        cidr="2001:db8:30::/64",
        ip_version=6,
        ipv6_ra_mode="slaac",
        ipv6_address_mode="slaac",
    )
    mac = "fa:16:3e:12:34:56"
    made = port(demo, net_id, mac_address=mac)
    addresses = {ip["subnet_id"]: ip["ip_address"] for ip in made["fixed_ips"]}
    assert addresses == {v4["id"]: "10.30.0.3", slaac["id"]: "2001:db8:30:0:f816:3eff:fe12:3456"}
    # The port that was there before the subnet got one too.
    early_now = ok(demo.get(f"/ports/{early['id']}"))["port"]
    assert slaac["id"] in {ip["subnet_id"] for ip in early_now["fixed_ips"]}
    assert early_now["revision_number"] > early["revision_number"]
    # An address other than the EUI-64 one may not be asked for.
    refused(
        demo.post(
            "/ports",
            json={"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "2001:db8:30::99"}]}},
        ),
        400,
        "AllocationOnAutoAddressSubnet",
    )
    # A SLAAC subnet can be deleted under its ports; they just lose the address.
    ok(demo.delete(f"/subnets/{slaac['id']}"), 204)
    left = ok(demo.get(f"/ports/{made['id']}"))["port"]["fixed_ips"]
    assert left == [{"subnet_id": v4["id"], "ip_address": "10.30.0.3"}]
    refused(demo.delete(f"/networks/{net_id}"), 409, "NetworkInUse")


def test_stateful_ipv6_ports_get_the_first_free_address(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    subnet(
        demo,
        net_id,
        cidr="2001:db8:31::/64",
        ip_version=6,
        gateway_ip="2001:db8:31::1",
        ipv6_ra_mode="dhcpv6-stateful",
        ipv6_address_mode="dhcpv6-stateful",
    )
    made = port(demo, net_id)
    assert [ip["ip_address"] for ip in made["fixed_ips"]] == ["2001:db8:31::2"]


# --- IPAM -----------------------------------------------------------------------------------


def test_ipam_honours_pools_requests_and_exhaustion(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    made = subnet(
        demo,
        net_id,
        cidr="10.31.0.0/24",
        allocation_pools=[{"start": "10.31.0.10", "end": "10.31.0.12"}],
    )
    first = port(demo, net_id)
    assert first["fixed_ips"] == [{"subnet_id": made["id"], "ip_address": "10.31.0.10"}]
    # Outside the pools but inside the subnet: allowed when asked for.
    asked = port(demo, net_id, fixed_ips=[{"ip_address": "10.31.0.200"}])
    assert asked["fixed_ips"][0]["ip_address"] == "10.31.0.200"
    refused(
        demo.post(
            "/ports",
            json={"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "10.31.0.200"}]}},
        ),
        409,
        "IpAddressAlreadyAllocated",
    )
    refused(
        demo.post(
            "/ports",
            json={"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "10.31.1.5"}]}},
        ),
        400,
        "InvalidIpForNetwork",
    )
    refused(
        demo.post(
            "/ports",
            json={
                "port": {
                    "network_id": net_id,
                    "fixed_ips": [{"subnet_id": made["id"], "ip_address": "10.31.0.255"}],
                }
            },
        ),
        400,
        "InvalidIpForSubnet",
    )
    port(demo, net_id)
    third = port(demo, net_id)
    assert third["fixed_ips"][0]["ip_address"] == "10.31.0.12"
    refused(
        demo.post("/ports", json={"port": {"network_id": net_id}}),
        409,
        "IpAddressGenerationFailure",
    )
    ok(demo.delete(f"/ports/{first['id']}"), 204)
    assert port(demo, net_id)["fixed_ips"][0]["ip_address"] == "10.31.0.10"


def test_ports_take_addresses_from_the_subnets_their_owner_may_use(
    admin_http: httpx.Client,
) -> None:
    net_id = network(admin_http)["id"]
    general = subnet(admin_http, net_id, cidr="10.32.0.0/24")
    routers_only = subnet(
        admin_http, net_id, cidr="10.32.1.0/24", service_types=["network:router_gateway"]
    )
    assert routers_only["service_types"] == ["network:router_gateway"]
    ordinary = port(admin_http, net_id)
    assert [ip["subnet_id"] for ip in ordinary["fixed_ips"]] == [general["id"]]
    refused(
        post_subnet(admin_http, net_id, cidr=fresh_v4(), ip_version=4, service_types=["bogus"]),
        400,
        "InvalidInput",
    )


def test_subnet_with_user_ports_cannot_be_deleted(demo: httpx.Client) -> None:
    net_id = network(demo)["id"]
    made = subnet(demo, net_id)
    held = port(demo, net_id)
    message = refused(demo.delete(f"/subnets/{made['id']}"), 409, "SubnetInUse")
    assert made["id"] in message
    ok(demo.delete(f"/ports/{held['id']}"), 204)
    ok(demo.delete(f"/subnets/{made['id']}"), 204)
    refused(demo.get(f"/subnets/{made['id']}"), 404, "SubnetNotFound")
    assert ok(demo.get(f"/networks/{net_id}"))["network"]["subnets"] == []


# --- visibility and policy ------------------------------------------------------------------


def test_other_projects_subnets_are_not_found(demo: httpx.Client, alt: httpx.Client) -> None:
    made = subnet(demo, network(demo)["id"])
    refused(alt.get(f"/subnets/{made['id']}"), 404, "SubnetNotFound")
    refused(alt.put(f"/subnets/{made['id']}", json={"subnet": {"name": "x"}}), 404)
    refused(alt.delete(f"/subnets/{made['id']}"), 404)
    assert made["id"] not in {s["id"] for s in ok(alt.get("/subnets"))["subnets"]}
    refused(
        post_subnet(alt, made["network_id"], cidr=fresh_v4(), ip_version=4), 404, "NetworkNotFound"
    )


def test_shared_network_subnets_are_seen_but_not_made_by_others(
    admin_http: httpx.Client, alt: httpx.Client
) -> None:
    shared = network(admin_http, shared=True)
    made = subnet(admin_http, shared["id"])
    assert ok(alt.get(f"/subnets/{made['id']}"))["subnet"]["id"] == made["id"]
    assert made["id"] in {
        s["id"] for s in ok(alt.get("/subnets", params={"shared": "true"}))["subnets"]
    }
    assert made["id"] not in {
        s["id"] for s in ok(alt.get("/subnets", params={"shared": "false"}))["subnets"]
    }
    refused(post_subnet(alt, shared["id"], cidr=fresh_v4(), ip_version=4), 403)
    refused(alt.put(f"/subnets/{made['id']}", json={"subnet": {"name": "x"}}), 403)
    # segment_id is shown to admins only.
    assert "segment_id" in ok(admin_http.get(f"/subnets/{made['id']}"))["subnet"]
    assert "segment_id" not in ok(alt.get(f"/subnets/{made['id']}"))["subnet"]


def test_sdk_round_trip(cloud: cloudfixture.Cloud) -> None:
    conn = cloud.sdk("stackbox")
    net = conn.network.create_network(name="sdk-net")
    made = conn.network.create_subnet(
        network_id=net.id, ip_version=4, cidr="10.33.0.0/24", dns_nameservers=["8.8.4.4"]
    )
    assert made.gateway_ip == "10.33.0.1"
    found = conn.network.get_subnet(made.id)
    assert found.dns_nameservers == ["8.8.4.4"]
    conn.network.update_subnet(made, name="renamed")
    assert conn.network.get_subnet(made.id).name == "renamed"
    conn.network.delete_subnet(made)
    conn.network.delete_network(net)
