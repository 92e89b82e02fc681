"""Ports through plain HTTP and openstacksdk: visibility and policy, MACs, fixed IPs,
security groups and port security, allowed address pairs, extra DHCP options,
bindings and status, bulk create, filters, revisions, and listing cost."""

from __future__ import annotations

import ipaddress
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

from stackbox.network import port_rows
from tests import cloudfixture, postgres
from tests.functional.netclients import admin_http, alt_http, client, demo_http

# Module fixtures used by the tests below.
__all__ = ["admin_http", "alt_http", "demo_http"]


def made(response: httpx.Response, key: str) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json()[key])


def network(http: httpx.Client, **attrs: Any) -> dict[str, Any]:
    return made(http.post("/networks", json={"network": attrs}), "network")


def subnet(http: httpx.Client, net: dict[str, Any], cidr: str, **attrs: Any) -> dict[str, Any]:
    version = ipaddress.ip_network(cidr).version
    body = {"network_id": net["id"], "cidr": cidr, "ip_version": version, **attrs}
    return made(http.post("/subnets", json={"subnet": body}), "subnet")


def port(http: httpx.Client, net: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    return made(http.post("/ports", json={"port": {"network_id": net["id"], **attrs}}), "port")


def put(http: httpx.Client, port_id: str, **attrs: Any) -> httpx.Response:
    return http.put(f"/ports/{port_id}", json={"port": attrs})


def neutron_error(response: httpx.Response, status: int, kind: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["NeutronError"]
    assert set(error) == {"type", "message", "detail"}
    if kind:
        assert error["type"] == kind, error
    return str(error["message"])


def default_group(http: httpx.Client) -> str:
    groups = http.get("/security-groups", params={"name": "default"}).json()["security_groups"]
    (group,) = [g for g in groups if g["name"] == "default"]
    return str(group["id"])


# --- basics, visibility, policy ---------------------------------------------------------------


def test_defaults_show_and_sdk(demo_http: httpx.Client, cloud: cloudfixture.Cloud) -> None:
    net = network(demo_http, name="basics")
    created = port(demo_http, net, name="p1", description="first")
    assert created["status"] == "DOWN" and created["admin_state_up"] is True
    assert created["mac_address"].startswith("fa:16:3e:")
    assert created["device_owner"] == "" and created["device_id"] == ""
    assert created["port_security_enabled"] is True
    assert created["fixed_ips"] == [] and created["dns_assignment"] == []
    assert created["security_groups"] == [default_group(demo_http)]
    assert created["binding:vnic_type"] == "normal"
    # Binding details are for admins and services only.
    for hidden in ("binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile"):
        assert hidden not in created
    shown = demo_http.get(f"/ports/{created['id']}").json()["port"]
    assert shown == created
    fields = demo_http.get(
        f"/ports/{created['id']}", params={"fields": ["id", "mac_address"]}
    ).json()["port"]
    assert fields == {"id": created["id"], "mac_address": created["mac_address"]}
    sdk = cloud.connect(username="demo", password=cloud.passwords()["demo"], project_name="demo")
    found = sdk.network.get_port(created["id"])
    assert found.mac_address == created["mac_address"] and found.name == "p1"
    updated = sdk.network.update_port(found, name="p1-renamed", is_admin_state_up=False)
    assert updated.name == "p1-renamed" and updated.is_admin_state_up is False
    assert updated.revision_number == created["revision_number"] + 1
    sdk.network.delete_port(found)
    neutron_error(demo_http.get(f"/ports/{created['id']}"), 404, "PortNotFound")


def test_admin_sees_binding(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    net = network(demo_http, name="admin-view")
    made_by_demo = port(demo_http, net)
    body = admin_http.get(f"/ports/{made_by_demo['id']}").json()["port"]
    assert body["binding:vif_type"] == "unbound"
    assert body["binding:vif_details"] == {} and body["binding:profile"] == {}
    assert body["binding:host_id"] == ""


def test_other_projects_are_404(demo_http: httpx.Client, alt_http: httpx.Client) -> None:
    net = network(demo_http, name="private")
    mine = port(demo_http, net)
    response = alt_http.post("/ports", json={"port": {"network_id": net["id"]}})
    neutron_error(response, 404, "NetworkNotFound")
    for response in (
        alt_http.get(f"/ports/{mine['id']}"),
        put(alt_http, mine["id"], name="x"),
        alt_http.delete(f"/ports/{mine['id']}"),
    ):
        neutron_error(response, 404, "PortNotFound")
    assert mine["id"] not in {p["id"] for p in alt_http.get("/ports").json()["ports"]}


def test_shared_network(
    admin_http: httpx.Client, demo_http: httpx.Client, alt_http: httpx.Client
) -> None:
    # A network demo owns and shares: alt_demo may put ports on it.
    net = network(demo_http, name="to-share")
    demo_project = net["project_id"]
    assert admin_http.put(f"/networks/{net['id']}", json={"network": {"shared": True}}).is_success
    guest = port(alt_http, net, name="guest")
    assert guest["project_id"] != demo_project
    # The network owner sees and may delete the guest's port, but not change it.
    assert guest["id"] in {p["id"] for p in demo_http.get("/ports").json()["ports"]}
    neutron_error(put(demo_http, guest["id"], name="mine now"), 403, "PolicyNotAuthorized")
    # A guest may not pick MACs or claim network-service ownership on someone's network.
    for attrs in ({"mac_address": "fa:16:3e:00:00:01"}, {"device_owner": "network:dhcp"}):
        response = alt_http.post("/ports", json={"port": {"network_id": net["id"], **attrs}})
        neutron_error(response, 403, "PolicyNotAuthorized")
    # The owner may.
    dhcp = port(demo_http, net, device_owner="network:dhcp")
    assert dhcp["security_groups"] == []  # network service ports get no groups
    assert demo_http.delete(f"/ports/{guest['id']}").status_code == 204


def test_external_network_needs_admin(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    ext = network(admin_http, name="ext", **{"router:external": True})
    response = demo_http.post("/ports", json={"port": {"network_id": ext["id"]}})
    neutron_error(response, 403, "PolicyNotAuthorized")
    assert port(admin_http, ext)["network_id"] == ext["id"]


# --- MAC addresses ------------------------------------------------------------------------------


def test_mac_addresses(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    net = network(demo_http, name="macs")
    other = network(demo_http, name="macs-2")
    given = port(demo_http, net, mac_address="FA-16-3E-AB-CD-EF")
    assert given["mac_address"] == "fa:16:3e:ab:cd:ef"
    response = demo_http.post(
        "/ports", json={"port": {"network_id": net["id"], "mac_address": "fa:16:3e:ab:cd:ef"}}
    )
    assert "is in use" in neutron_error(response, 409, "MacAddressInUse")
    # Unique per network only.
    assert port(demo_http, other, mac_address="fa:16:3e:ab:cd:ef")["mac_address"]
    for bad in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "fa:16:3e:zz:00:00", 12):
        response = demo_http.post(
            "/ports", json={"port": {"network_id": net["id"], "mac_address": bad}}
        )
        neutron_error(response, 400)
    # Regenerate (port-mac-address-regenerate) and set (admin).
    again = put(admin_http, given["id"], mac_address=None).json()["port"]
    assert again["mac_address"] != given["mac_address"]
    assert again["mac_address"].startswith("fa:16:3e:")
    moved = put(admin_http, given["id"], mac_address="fa:16:3e:00:00:42").json()["port"]
    assert moved["mac_address"] == "fa:16:3e:00:00:42"
    clash = port(demo_http, net)
    response = put(admin_http, clash["id"], mac_address="fa:16:3e:00:00:42")
    neutron_error(response, 409, "MacAddressInUse")


def test_generated_mac_collision_retries(
    demo_http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated MAC that is taken is replaced by another; only when every attempt
    collides does the create fail, with MacAddressGenerationFailure and no row left."""
    net = network(demo_http, name="mac-collisions")
    subnet(demo_http, net, "10.77.0.0/24")
    taken = port(demo_http, net)["mac_address"]
    sequence = [taken, taken, "fa:16:3e:00:77:01"]
    monkeypatch.setattr(port_rows, "random_mac", lambda: sequence.pop(0))
    second = port(demo_http, net)
    assert second["mac_address"] == "fa:16:3e:00:77:01"
    assert second["fixed_ips"][0]["ip_address"] == "10.77.0.3"
    monkeypatch.setattr(port_rows, "random_mac", lambda: taken)
    response = demo_http.post("/ports", json={"port": {"network_id": net["id"]}})
    neutron_error(response, 409, "MacAddressGenerationFailure")
    listed = demo_http.get("/ports", params={"network_id": net["id"]}).json()["ports"]
    assert len(listed) == 2


# --- security groups and port security -------------------------------------------------------


def test_port_security_rules(demo_http: httpx.Client) -> None:
    net = network(demo_http, name="psec")
    group = default_group(demo_http)

    def post(**attrs: Any) -> httpx.Response:
        return demo_http.post("/ports", json={"port": {"network_id": net["id"], **attrs}})

    response = post(port_security_enabled=False, security_groups=[group])
    neutron_error(response, 400, "PortSecurityAndIPRequiredForSecurityGroups")
    response = post(port_security_enabled=False, allowed_address_pairs=[{"ip_address": "1.2.3.4"}])
    neutron_error(response, 409, "AddressPairAndPortSecurityRequired")
    open_port = made(post(port_security_enabled=False), "port")
    assert open_port["security_groups"] == [] and open_port["port_security_enabled"] is False

    guarded = port(demo_http, net)
    neutron_error(
        put(demo_http, guarded["id"], port_security_enabled=False),
        409,
        "PortSecurityPortHasSecurityGroup",
    )
    with_pairs = port(
        demo_http, net, security_groups=[], allowed_address_pairs=[{"ip_address": "10.9.9.9"}]
    )
    neutron_error(
        put(demo_http, with_pairs["id"], port_security_enabled=False),
        409,
        "AddressPairAndPortSecurityRequired",
    )
    off = put(demo_http, guarded["id"], port_security_enabled=False, security_groups=[])
    assert off.status_code == 200, off.text
    assert off.json()["port"]["port_security_enabled"] is False
    neutron_error(
        put(demo_http, guarded["id"], security_groups=[group]),
        400,
        "PortSecurityAndIPRequiredForSecurityGroups",
    )
    # A network without port security gives its ports none (and no default group).
    loose = network(demo_http, name="loose", port_security_enabled=False)
    body = port(demo_http, loose)
    assert body["port_security_enabled"] is False and body["security_groups"] == []


def test_security_groups(demo_http: httpx.Client, alt_http: httpx.Client) -> None:
    net = network(demo_http, name="sgs")
    groups = [
        made(
            demo_http.post("/security-groups", json={"security_group": {"name": n}}),
            "security_group",
        )
        for n in ("web", "db")
    ]
    theirs = made(
        alt_http.post("/security-groups", json={"security_group": {"name": "theirs"}}),
        "security_group",
    )
    empty = port(demo_http, net, security_groups=[])
    assert empty["security_groups"] == []
    response = demo_http.post(
        "/ports", json={"port": {"network_id": net["id"], "security_groups": [theirs["id"]]}}
    )
    neutron_error(response, 404, "SecurityGroupNotFound")
    two = put(demo_http, empty["id"], security_groups=[g["id"] for g in groups]).json()["port"]
    assert sorted(two["security_groups"]) == sorted(g["id"] for g in groups)
    listed = demo_http.get("/ports", params={"security_groups": groups[1]["id"]}).json()["ports"]
    assert [p["id"] for p in listed] == [empty["id"]]
    response = demo_http.post(
        "/ports", json={"port": {"network_id": net["id"], "security_groups": ["not-a-uuid"]}}
    )
    neutron_error(response, 400)


# --- allowed address pairs and extra DHCP options ------------------------------------------


def test_allowed_address_pairs(demo_http: httpx.Client) -> None:
    net = network(demo_http, name="pairs")
    pairs = [
        {"ip_address": "10.0.0.99"},
        {"ip_address": "10.1.0.0/16", "mac_address": "fa:16:3e:11:22:33"},
        {"ip_address": "2001:db8::/64"},
    ]
    body = port(demo_http, net, allowed_address_pairs=pairs)
    mac = body["mac_address"]
    assert sorted(body["allowed_address_pairs"], key=lambda p: p["ip_address"]) == sorted(
        [
            {"ip_address": "10.0.0.99", "mac_address": mac},
            {"ip_address": "10.1.0.0/16", "mac_address": "fa:16:3e:11:22:33"},
            {"ip_address": "2001:db8::/64", "mac_address": mac},
        ],
        key=lambda p: p["ip_address"],
    )
    replaced = put(demo_http, body["id"], allowed_address_pairs=[{"ip_address": "10.0.0.7"}])
    assert replaced.json()["port"]["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.7", "mac_address": mac}
    ]
    cleared = put(demo_http, body["id"], allowed_address_pairs=None).json()["port"]
    assert cleared["allowed_address_pairs"] == []
    for bad, kind in (
        ([{"ip_address": "10.0.0.1"}, {"ip_address": "10.0.0.1"}], "DuplicateAddressPairInRequest"),
        ([{"ip_address": f"10.0.0.{i}"} for i in range(11)], "AllowedAddressPairExhausted"),
        ([{"mac_address": mac}], "AllowedAddressPairsMissingIP"),
        ([{"ip_address": "224.0.0.1"}], None),
        ([{"ip_address": "10.0.0.300"}], None),
        ([{"ip_address": "10.0.0.1", "mac_address": "01:00:5e:00:00:01"}], None),
    ):
        neutron_error(put(demo_http, body["id"], allowed_address_pairs=bad), 400, kind)


def test_extra_dhcp_opts(demo_http: httpx.Client) -> None:
    net = network(demo_http, name="dhcp-opts")
    opts = [
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
        {"opt_name": "tftp-server", "opt_value": "123.123.123.123"},
        {"opt_name": "server-ip-address", "opt_value": "123.123.123.45"},
    ]
    body = port(demo_http, net, extra_dhcp_opts=opts)
    assert sorted(body["extra_dhcp_opts"], key=lambda o: o["opt_name"]) == sorted(
        [{**o, "ip_version": 4} for o in opts], key=lambda o: str(o["opt_name"])
    )
    changes = [
        {"opt_name": "bootfile-name", "opt_value": "ipxe.efi"},
        {"opt_name": "tftp-server", "opt_value": None},
        {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": 6},
    ]
    merged = put(demo_http, body["id"], extra_dhcp_opts=changes).json()["port"]
    assert sorted(
        (o["opt_name"], o["opt_value"], o["ip_version"]) for o in merged["extra_dhcp_opts"]
    ) == [
        ("bootfile-name", "ipxe.efi", 4),
        ("dns-server", "2001:db8::53", 6),
        ("server-ip-address", "123.123.123.45", 4),
    ]
    for bad in (
        [{"opt_name": "x", "opt_value": "y", "ip_version": 5}],
        [{"opt_name": "", "opt_value": "y"}],
        [{"opt_name": "x"}],
    ):
        neutron_error(put(demo_http, body["id"], extra_dhcp_opts=bad), 400)


# --- bindings and status ----------------------------------------------------------------------


def linux_bridge_host(admin_http: httpx.Client) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        agents = admin_http.get("/agents", params={"agent_type": "Linux bridge agent"}).json()
        alive = [a for a in agents.get("agents", []) if a["alive"]]
        if alive:
            return str(alive[0]["host"])
        time.sleep(0.2)
    raise AssertionError("no live Linux bridge agent")


def test_binding_and_status(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    net = network(demo_http, name="bound")
    body = port(demo_http, net)
    neutron_error(put(demo_http, body["id"], **{"binding:host_id": "h1"}), 403)
    response = demo_http.post(
        "/ports", json={"port": {"network_id": net["id"], "binding:profile": {"a": 1}}}
    )
    neutron_error(response, 403)
    failed = put(admin_http, body["id"], **{"binding:host_id": "no-such-host"}).json()["port"]
    assert failed["binding:vif_type"] == "binding_failed" and failed["binding:vif_details"] == {}
    host = linux_bridge_host(admin_http)
    bound = put(admin_http, body["id"], **{"binding:host_id": host}).json()["port"]
    assert bound["binding:host_id"] == host and bound["binding:vif_type"] == "bridge"
    details = bound["binding:vif_details"]
    assert details["bridge_name"] == "brq" + net["id"][:11]
    assert details["tap_name"] == "tap" + body["id"][:11]
    assert details["port_filter"] is True
    # The agent on that host wires it and reports it up.
    deadline = time.monotonic() + 15
    while demo_http.get(f"/ports/{body['id']}").json()["port"]["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "the port never went ACTIVE"
        time.sleep(0.1)
    # A bound port keeps its MAC and vnic type.
    neutron_error(put(admin_http, body["id"], mac_address="fa:16:3e:00:00:77"), 409, "PortBound")
    neutron_error(put(admin_http, body["id"], **{"binding:vnic_type": "direct"}), 409, "PortInUse")
    unbound = put(admin_http, body["id"], **{"binding:host_id": ""}).json()["port"]
    assert unbound["binding:vif_type"] == "unbound" and unbound["status"] == "DOWN"
    direct = put(admin_http, body["id"], **{"binding:vnic_type": "direct"}).json()["port"]
    assert direct["binding:vnic_type"] == "direct"
    # Linux bridge binds only normal vNICs.
    failed = put(admin_http, body["id"], **{"binding:host_id": host}).json()["port"]
    assert failed["binding:vif_type"] == "binding_failed"
    listed = admin_http.get("/ports", params={"binding:host_id": host}).json()["ports"]
    assert body["id"] in {p["id"] for p in listed}


# --- addresses ------------------------------------------------------------------------------------


def test_fixed_ips(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    net = network(demo_http, name="addresses")
    first = subnet(demo_http, net, "10.20.0.0/24")
    second = subnet(demo_http, net, "10.21.0.0/24")
    auto = port(demo_http, net)
    assert len(auto["fixed_ips"]) == 1
    (address,) = auto["fixed_ips"]
    assert address["subnet_id"] in (first["id"], second["id"])
    assert auto["dns_assignment"] == [
        {
            "ip_address": address["ip_address"],
            "hostname": "host-" + address["ip_address"].replace(".", "-"),
            "fqdn": "host-" + address["ip_address"].replace(".", "-") + ".openstacklocal.",
        }
    ]
    both = port(demo_http, net, fixed_ips=[{"subnet_id": first["id"]}, {"subnet_id": second["id"]}])
    assert {a["subnet_id"] for a in both["fixed_ips"]} == {first["id"], second["id"]}
    kept = next(a for a in both["fixed_ips"] if a["subnet_id"] == first["id"])
    one = put(demo_http, both["id"], fixed_ips=[{"subnet_id": first["id"]}]).json()["port"]
    assert one["fixed_ips"] == [kept]  # the address on the kept subnet stays the same
    again = put(
        demo_http, both["id"], fixed_ips=[{"subnet_id": first["id"]}, {"subnet_id": second["id"]}]
    ).json()["port"]
    assert len(again["fixed_ips"]) == 2 and kept in again["fixed_ips"]
    exact = port(demo_http, net, fixed_ips=[{"ip_address": "10.20.0.50"}])
    assert exact["fixed_ips"] == [{"subnet_id": first["id"], "ip_address": "10.20.0.50"}]
    response = demo_http.post(
        "/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.20.0.50"}]}},
    )
    neutron_error(response, 409, "IpAddressAlreadyAllocated")
    moved = put(demo_http, exact["id"], fixed_ips=[{"ip_address": "10.20.0.51"}]).json()["port"]
    assert moved["fixed_ips"] == [{"subnet_id": first["id"], "ip_address": "10.20.0.51"}]
    # The released address is free again.
    assert port(demo_http, net, fixed_ips=[{"ip_address": "10.20.0.50"}])["fixed_ips"]
    none = port(demo_http, net, fixed_ips=[])
    assert none["fixed_ips"] == []
    # Filters on addresses.
    by_ip = demo_http.get("/ports", params={"fixed_ips": "ip_address=10.20.0.51"}).json()
    assert [p["id"] for p in by_ip["ports"]] == [exact["id"]]
    by_subnet = demo_http.get("/ports", params={"fixed_ips": f"subnet_id={second['id']}"}).json()
    assert both["id"] in {p["id"] for p in by_subnet["ports"]}
    assert exact["id"] not in {p["id"] for p in by_subnet["ports"]}
    substr = demo_http.get("/ports", params={"fixed_ips": "ip_address_substr=10.20.0.5"}).json()
    assert exact["id"] in {p["id"] for p in substr["ports"]}
    neutron_error(demo_http.get("/ports", params={"fixed_ips": "nonsense"}), 400)
    # Addresses come back when the port goes.
    assert demo_http.delete(f"/ports/{exact['id']}").status_code == 204
    assert port(demo_http, net, fixed_ips=[{"ip_address": "10.20.0.51"}])["fixed_ips"]


def test_dns_name_with_default_domain(demo_http: httpx.Client) -> None:
    # With Neutron's default dns_domain (openstacklocal.), a port's dns_name is not kept.
    net = network(demo_http, name="dns")
    body = port(demo_http, net, dns_name="myhost")
    assert body["dns_name"] == ""
    neutron_error(
        demo_http.post("/ports", json={"port": {"network_id": net["id"], "dns_name": "-bad-"}}),
        400,
    )


# --- listing, bulk, revisions, quotas -----------------------------------------------------------


def test_filters_and_fields(demo_http: httpx.Client) -> None:
    net = network(demo_http, name="filters")
    a = port(demo_http, net, device_owner="compute:nova", device_id="vm-1", name="a")
    b = port(demo_http, net, device_id="vm-2", name="b")

    def ids(**params: Any) -> set[str]:
        response = demo_http.get("/ports", params=params)
        assert response.status_code == 200, response.text
        return {p["id"] for p in response.json()["ports"]}

    assert ids(network_id=net["id"]) == {a["id"], b["id"]}
    assert ids(device_owner="compute:nova", network_id=net["id"]) == {a["id"]}
    assert ids(device_id="vm-2") == {b["id"]}
    assert ids(mac_address=a["mac_address"].upper()) == {a["id"]}
    assert ids(name="b", network_id=net["id"]) == {b["id"]}
    listed = demo_http.get(
        "/ports", params={"network_id": net["id"], "fields": ["id", "mac_address"]}
    ).json()["ports"]
    assert all(set(p) == {"id", "mac_address"} for p in listed)
    neutron_error(demo_http.get("/ports", params={"no_such_attr": "x"}), 400)
    page = demo_http.get(
        "/ports", params={"network_id": net["id"], "limit": 1, "sort_key": "name"}
    ).json()
    assert [p["id"] for p in page["ports"]] == [a["id"]] and page["ports_links"]


def test_bulk_create_is_all_or_nothing(demo_http: httpx.Client) -> None:
    net = network(demo_http, name="bulk")
    other = network(demo_http, name="bulk-2")
    response = demo_http.post(
        "/ports", json={"ports": [{"network_id": net["id"]}, {"network_id": other["id"]}]}
    )
    assert response.status_code == 201, response.text
    ports = response.json()["ports"]
    assert [p["network_id"] for p in ports] == [net["id"], other["id"]]
    before = len(demo_http.get("/ports").json()["ports"])
    response = demo_http.post(
        "/ports",
        json={
            "ports": [
                {"network_id": net["id"]},
                {"network_id": net["id"], "mac_address": ports[0]["mac_address"]},
            ]
        },
    )
    neutron_error(response, 409, "MacAddressInUse")
    assert len(demo_http.get("/ports").json()["ports"]) == before


def test_revision_if_match(demo_http: httpx.Client) -> None:
    net = network(demo_http, name="revisions")
    body = port(demo_http, net)
    stale = {"If-Match": f"revision_number={body['revision_number'] + 5}"}
    response = demo_http.put(f"/ports/{body['id']}", json={"port": {"name": "x"}}, headers=stale)
    neutron_error(response, 412)
    fresh = {"If-Match": f"revision_number={body['revision_number']}"}
    response = demo_http.put(f"/ports/{body['id']}", json={"port": {"name": "y"}}, headers=fresh)
    assert response.json()["port"]["revision_number"] == body["revision_number"] + 1
    neutron_error(demo_http.delete(f"/ports/{body['id']}", headers=stale), 412)
    for bad in ({"status": "ACTIVE"}, {"network_id": net["id"]}, {"bogus": 1}):
        neutron_error(put(demo_http, body["id"], **bad), 400)


def test_quota(admin_http: httpx.Client, alt_http: httpx.Client) -> None:
    net = network(alt_http, name="quota")
    project = net["project_id"]
    used = len([p for p in admin_http.get("/ports").json()["ports"] if p["project_id"] == project])
    response = admin_http.put(f"/quotas/{project}", json={"quota": {"port": used + 1}})
    assert response.status_code == 200, response.text
    try:
        port(alt_http, net)
        response = alt_http.post("/ports", json={"port": {"network_id": net["id"]}})
        neutron_error(response, 409, "OverQuota")
    finally:
        admin_http.delete(f"/quotas/{project}")


def test_listing_does_no_query_per_port(demo_http: httpx.Client) -> None:
    net = network(demo_http, name="many")
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def queries() -> int:
        # Agents and the outbox relay query the same database in the background: the
        # fewest statements seen over a few listings are the listing's own.
        seen = []
        for _ in range(5):
            statements.clear()
            event.listen(Engine, "before_cursor_execute", count)
            try:
                response = demo_http.get("/ports", params={"network_id": net["id"]})
                assert response.status_code == 200
            finally:
                event.remove(Engine, "before_cursor_execute", count)
            seen.append(len(statements))
            time.sleep(0.05)
        return min(seen)

    demo_http.post("/ports", json={"ports": [{"network_id": net["id"]}] * 5})
    few = queries()
    demo_http.post("/ports", json={"ports": [{"network_id": net["id"]}] * 40})
    assert queries() == few


# --- ports of routers and floating IPs --------------------------------------------------------


def test_router_and_floating_ip_ports(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    ext = network(admin_http, name="ext-for-ports", **{"router:external": True})
    subnet(admin_http, ext, "172.30.0.0/24")
    net = network(demo_http, name="behind-router")
    inner = subnet(demo_http, net, "10.30.0.0/24")
    router = made(
        demo_http.post(
            "/routers",
            json={"router": {"name": "r", "external_gateway_info": {"network_id": ext["id"]}}},
        ),
        "router",
    )
    added = demo_http.put(
        f"/routers/{router['id']}/add_router_interface", json={"subnet_id": inner["id"]}
    )
    assert added.status_code == 200, added.text
    interface_id = added.json()["port_id"]
    interface = demo_http.get(f"/ports/{interface_id}").json()["port"]
    assert interface["device_owner"] == "network:router_interface"
    assert interface["device_id"] == router["id"] and interface["security_groups"] == []
    message = neutron_error(demo_http.delete(f"/ports/{interface_id}"), 409, "ServicePortInUse")
    assert "network:router_interface" in message
    # A floating IP on a port loses its association when the port goes.
    vm = port(demo_http, net)
    fip = made(
        demo_http.post(
            "/floatingips",
            json={"floatingip": {"floating_network_id": ext["id"], "port_id": vm["id"]}},
        ),
        "floatingip",
    )
    assert (
        fip["port_id"] == vm["id"] and fip["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]
    )
    fip_ports = admin_http.get("/ports", params={"device_id": fip["id"]}).json()["ports"]
    assert [p["device_owner"] for p in fip_ports] == ["network:floatingip"]
    neutron_error(admin_http.delete(f"/ports/{fip_ports[0]['id']}"), 409, "ServicePortInUse")
    assert demo_http.delete(f"/ports/{vm['id']}").status_code == 204
    after = demo_http.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert after["port_id"] is None and after["fixed_ip_address"] is None
    assert after["router_id"] is None


# --- concurrency ------------------------------------------------------------------------------


def concurrent_macs(http: httpx.Client) -> None:
    """The same MAC asked for 16 times at once: one port gets it, the others 409."""
    net = network(http, name="race")
    wanted = {"port": {"network_id": net["id"], "mac_address": "fa:16:3e:aa:bb:cc"}}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: http.post("/ports", json=wanted), range(16)))
        generated = list(
            pool.map(
                lambda _: http.post("/ports", json={"port": {"network_id": net["id"]}}), range(32)
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 15, [a.text for a in answers if a.status_code != 409]
    assert {a.json()["NeutronError"]["type"] for a in answers if a.status_code == 409} == {
        "MacAddressInUse"
    }
    assert all(g.status_code == 201 for g in generated)
    macs = [g.json()["port"]["mac_address"] for g in generated]
    assert len(set(macs)) == 32


def test_concurrent_macs_sqlite(admin_http: httpx.Client) -> None:
    concurrent_macs(admin_http)


def test_concurrent_macs_postgresql(tmp_path: Path) -> None:
    if not postgres.DSN:
        pytest.skip(postgres.SKIP_REASON)
    with (
        postgres.fresh_database() as url,
        cloudfixture.as_process(tmp_path, env={"STACKBOX_DATABASE_URL": url}) as cloud,
        client(cloud, cloud.token()) as http,
    ):
        concurrent_macs(http)
