"""Servers: create (one transaction: placement, ports, action), show, update, delete,
through openstacksdk, the ``openstack`` CLI and plain HTTP for every error path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional import computeservers as cs


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cs.devstack_cloud(Path(tmp_path_factory.mktemp("servers"))) as running:
        yield running


@pytest.fixture(scope="module")
def image(cloud: cloudfixture.Cloud) -> str:
    return cs.image_id(cloud)


@pytest.fixture(scope="module")
def private(cloud: cloudfixture.Cloud) -> str:
    return cs.network_id(cloud)


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with cs.compute(cloud, token=cloud.token("demo", project="demo")) as client:
        yield client


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with cs.compute(cloud, token=cloud.token("alt_demo", project="alt_demo")) as client:
        yield client


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with cs.compute(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def host(admin: httpx.Client, demo: httpx.Client, image: str) -> str:
    """The compute host the cloud's own agent runs (where servers land)."""
    server = cs.boot(demo, image, name="probe")["server"]
    found = cs.wait_status(admin, server["id"])["OS-EXT-SRV-ATTR:host"]
    cs.delete(demo, server["id"])
    return str(found)


# --- create, show, delete ------------------------------------------------------------------------


def test_create_answers_nova_body_then_builds_on_a_host_with_bound_ports(
    cloud: cloudfixture.Cloud, demo: httpx.Client, admin: httpx.Client, image: str, host: str
) -> None:
    response = demo.post(
        "/servers",
        json={
            "server": {
                "name": "web 1",
                "imageRef": image,
                "flavorRef": cs.FLAVOR,
                "networks": "auto",
                "metadata": {"role": "web"},
            }
        },
    )
    assert response.status_code == 202, response.text
    body = response.json()["server"]
    assert set(body) == {"id", "links", "adminPass", "security_groups", "OS-DCF:diskConfig"}
    assert body["security_groups"] == [{"name": "default"}]
    assert body["OS-DCF:diskConfig"] == "MANUAL"
    assert len(body["adminPass"]) >= 8
    assert response.headers["Location"] == body["links"][0]["href"]
    assert body["links"][0]["href"].endswith(f"/compute/v2.1/servers/{body['id']}")
    shown = cs.wait_status(admin, body["id"])
    assert shown["OS-EXT-SRV-ATTR:host"] == host
    assert shown["OS-EXT-SRV-ATTR:hostname"] == "web-1"
    assert shown["OS-EXT-SRV-ATTR:reservation_id"].startswith("r-")
    assert shown["OS-EXT-AZ:availability_zone"] == "nova"
    assert shown["metadata"] == {"role": "web"}
    assert shown["flavor"]["original_name"] == "m1.nano"
    assert shown["image"]["id"] == image
    assert shown["hostId"] and shown["hostId"] != host
    assert shown["security_groups"] == [{"name": "default"}]
    ports = cs.ports_of(cloud, body["id"])
    assert len(ports) == 1
    port = ports[0]
    assert port["binding:host_id"] == host
    assert port["device_owner"] == "compute:nova"
    address = port["fixed_ips"][0]["ip_address"]
    assert shown["addresses"]["private"] == [
        {
            "version": 4,
            "addr": address,
            "OS-EXT-IPS:type": "fixed",
            "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
        }
    ]
    cs.delete(demo, body["id"])
    assert cs.ports_of(cloud, body["id"]) == []


def test_openstacksdk_boots_waits_and_deletes(
    cloud: cloudfixture.Cloud, image: str, private: str
) -> None:
    conn = cloud.sdk("stackbox")
    server = conn.compute.create_server(
        name="sdk-server", image_id=image, flavor_id=cs.FLAVOR, networks=[{"uuid": private}]
    )
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.2)
    assert server.status == "ACTIVE"
    assert list(server.addresses) == ["private"]
    assert server.flavor.original_name == "m1.nano"
    listed = {s.id for s in conn.compute.servers(details=True)}
    assert server.id in listed
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.2, wait=30)
    assert conn.compute.find_server(server.id) is None


def _cli(cloud: cloudfixture.Cloud, *args: str) -> Any:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    done = subprocess.run(
        [str(Path(sys.executable).with_name("openstack")), "--os-cloud", "stackbox", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "-f" in args else done.stdout


def test_openstack_cli_create_list_delete(cloud: cloudfixture.Cloud) -> None:
    made = _cli(
        cloud,
        "server",
        "create",
        "--wait",
        "--image",
        cs.IMAGE_NAME,
        "--flavor",
        "m1.nano",
        "--network",
        "private",
        "cli-server",
        "-f",
        "json",
    )
    assert made["status"] == "ACTIVE"
    listed = _cli(cloud, "server", "list", "--long", "-f", "json")
    row = next(r for r in listed if r["ID"] == made["id"])
    assert row["Status"] == "ACTIVE"
    assert row["Flavor"] == "m1.nano", row
    assert cs.IMAGE_NAME in json.dumps(row), row
    assert "private" in json.dumps(row["Networks"])
    _cli(cloud, "server", "delete", "--wait", made["id"])
    with cs.compute(cloud, token=cloud.token("demo", project="demo")) as demo:
        assert demo.get(f"/servers/{made['id']}").status_code == 404


def test_multi_create_names_hostnames_and_reservation_id(
    demo: httpx.Client, admin: httpx.Client, image: str
) -> None:
    body = cs.boot(demo, image, name="many", min_count=2, max_count=3, return_reservation_id=True)
    assert set(body) == {"reservation_id"}
    reservation = body["reservation_id"]
    listed = demo.get("/servers/detail", params={"reservation_id": reservation}).json()["servers"]
    assert sorted(s["name"] for s in listed) == ["many-1", "many-2", "many-3"]
    shown = [cs.show(admin, s["id"]) for s in listed]
    assert sorted(s["OS-EXT-SRV-ATTR:hostname"] for s in shown) == ["many-1", "many-2", "many-3"]
    assert sorted(s["OS-EXT-SRV-ATTR:launch_index"] for s in shown) == [0, 1, 2]
    for server in listed:
        cs.delete(demo, server["id"])


def test_networks_by_microversion(
    cloud: cloudfixture.Cloud, demo: httpx.Client, alt: httpx.Client, image: str
) -> None:
    # From 2.37 networks are required; before, none given means "auto".
    message = cs.error(
        demo.post(
            "/servers",
            json={"server": {"name": "n", "imageRef": image, "flavorRef": cs.FLAVOR}},
            headers=cs.version("2.37"),
        ),
        400,
    )
    assert "networks" in message
    old = cs.boot(demo, image, networks=None, headers=cs.version("2.36"))["server"]
    assert len(cs.ports_of(cloud, old["id"])) == 1
    none = cs.boot(demo, image, networks="none")["server"]
    cs.wait_status(demo, none["id"])
    assert cs.ports_of(cloud, none["id"]) == []
    assert cs.show(demo, none["id"])["addresses"] == {}
    # alt_demo has no network of its own: "auto" cannot pick one; before 2.37 it boots bare.
    message = cs.error(
        alt.post(
            "/servers",
            json={
                "server": {
                    "name": "n",
                    "imageRef": image,
                    "flavorRef": cs.FLAVOR,
                    "networks": "auto",
                }
            },
        ),
        400,
    )
    assert message.startswith("Unable to automatically allocate a network for project")
    bare = cs.boot(alt, image, networks=None, headers=cs.version("2.1"))["server"]
    assert cs.ports_of(cloud, bare["id"]) == []
    for client, server in ((demo, old), (demo, none), (alt, bare)):
        cs.delete(client, server["id"])


def test_ports_and_fixed_ips(
    cloud: cloudfixture.Cloud, demo: httpx.Client, image: str, private: str
) -> None:
    token = cloud.token("demo", project="demo")
    with cs.networking(cloud, token) as net:
        port = net.post("/ports", json={"port": {"network_id": private}}).json()["port"]
    server = cs.boot(demo, image, networks=[{"port": port["id"]}])["server"]
    cs.wait_status(demo, server["id"])
    (bound,) = cs.ports_of(cloud, server["id"])
    assert bound["id"] == port["id"]
    message = cs.error(
        demo.post(
            "/servers",
            json={
                "server": {
                    "name": "again",
                    "imageRef": image,
                    "flavorRef": cs.FLAVOR,
                    "networks": [{"port": port["id"]}],
                }
            },
        ),
        409,
    )
    assert message == f"Port {port['id']} is still in use."
    address = bound["fixed_ips"][0]["ip_address"]
    message = cs.error(
        demo.post(
            "/servers",
            json={
                "server": {
                    "name": "same-ip",
                    "imageRef": image,
                    "flavorRef": cs.FLAVOR,
                    "networks": [{"uuid": private, "fixed_ip": address}],
                }
            },
        ),
        400,
    )
    assert message == f"Fixed IP address {address} is already in use on instance {server['id']}."
    fixed = cs.boot(demo, image, networks=[{"uuid": private, "fixed_ip": "10.0.0.50"}])["server"]
    assert [p["fixed_ips"][0]["ip_address"] for p in cs.ports_of(cloud, fixed["id"])] == [
        "10.0.0.50"
    ]
    cs.delete(demo, server["id"])
    cs.delete(demo, fixed["id"])
    # The user's port outlives the server, unbound; the one made for a server goes with it.
    with cs.networking(cloud) as net:
        kept = net.get(f"/ports/{port['id']}").json()["port"]
        assert kept["device_id"] == "" and kept["binding:host_id"] == ""
        assert net.get("/ports", params={"fixed_ips": "ip_address=10.0.0.50"}).json()["ports"] == []
        net.delete(f"/ports/{port['id']}")


def _create(
    client: httpx.Client, server: dict[str, Any], version: str = cs.LATEST, **top: Any
) -> httpx.Response:
    return client.post("/servers", json={"server": server, **top}, headers=cs.version(version))


@pytest.mark.parametrize(
    ("change", "version", "status", "message"),
    [
        ({"name": ""}, cs.LATEST, 400, "Invalid input for field/attribute name."),
        ({"name": " lead"}, cs.LATEST, 400, "An invalid 'name' value was provided."),
        ({"flavorRef": "nope"}, cs.LATEST, 400, "Flavor nope could not be found."),
        ({"imageRef": "bad"}, cs.LATEST, 400, "Invalid input for field/attribute imageRef."),
        (
            {"imageRef": "11111111-2222-3333-4444-555555555555"},
            cs.LATEST,
            400,
            "Can not find requested image",
        ),
        ({"imageRef": ""}, cs.LATEST, 400, "Missing imageRef attribute"),
        ({"user_data": "not base64!"}, cs.LATEST, 400, "Invalid input for field/attribute"),
        ({"metadata": {"k" * 256: "v"}}, cs.LATEST, 400, "Invalid input for field/attribute"),
        ({"min_count": 3, "max_count": 2}, cs.LATEST, 400, "min_count must be <= max_count"),
        ({"key_name": "missing"}, cs.LATEST, 400, "Invalid key_name provided."),
        (
            {"security_groups": [{"name": "missing"}]},
            cs.LATEST,
            400,
            "Security group missing not found.",
        ),
        (
            {"networks": [{"uuid": "11111111-2222-3333-4444-555555555555"}]},
            cs.LATEST,
            400,
            "Network 11111111-2222-3333-4444-555555555555 could not be found.",
        ),
        (
            {"networks": [{"port": "11111111-2222-3333-4444-555555555555"}]},
            cs.LATEST,
            400,
            "Port id 11111111-2222-3333-4444-555555555555 could not be found.",
        ),
        ({"networks": "some"}, cs.LATEST, 400, "'some' is not one of ['none', 'auto']"),
        ({"availability_zone": "elsewhere"}, cs.LATEST, 400, "The requested availability zone"),
        ({"availability_zone": "nova:somehost"}, cs.LATEST, 403, "Policy doesn't allow"),
        ({"hostname": "one", "max_count": 2}, cs.LATEST, 400, "Unable to allocate a single"),
        ({"tags": ["a/b"]}, cs.LATEST, 400, "Invalid input for field/attribute"),
        ({"tags": ["t"]}, "2.51", 400, "Additional properties are not allowed"),
        ({"description": "d"}, "2.18", 400, "Additional properties are not allowed"),
        ({"host": "h"}, cs.LATEST, 403, "Policy doesn't allow"),
        (
            {"personality": [{"path": f"/p{i}", "contents": "YQ=="} for i in range(6)]},
            "2.56",
            403,
            "Personality file limit exceeded",
        ),
        ({"personality": []}, "2.57", 400, "Additional properties are not allowed"),
        (
            {"networks": [{"uuid": "11111111-2222-3333-4444-555555555555", "tag": "t"}]},
            "2.41",
            400,
            "Additional properties are not allowed",
        ),
        ({"bogus": 1}, cs.LATEST, 400, "Additional properties are not allowed"),
        (
            {
                "block_device_mapping_v2": [
                    {"source_type": "volume", "uuid": "x", "destination_type": "volume"}
                ]
            },
            cs.LATEST,
            400,
            "Block Device Mapping is Invalid",
        ),
        (
            {"block_device_mapping": [{"volume_id": "11111111-2222-3333-4444-555555555555"}]},
            cs.LATEST,
            400,
            "Block Device Mapping is Invalid",
        ),
    ],
)
def test_create_errors(
    demo: httpx.Client,
    image: str,
    change: dict[str, Any],
    version: str,
    status: int,
    message: str,
) -> None:
    server = {"name": "bad", "imageRef": image, "flavorRef": cs.FLAVOR, "networks": "auto"}
    server.update(change)
    before = demo.get("/servers").json()["servers"]
    assert message in cs.error(_create(demo, server, version), status)
    assert demo.get("/servers").json()["servers"] == before


def test_flavor_by_url_and_image_to_local_bdm(demo: httpx.Client, image: str) -> None:
    server = cs.boot(
        demo,
        image,
        flavor="http://example.invalid/compute/v2.1/flavors/84",
        block_device_mapping_v2=[
            {
                "boot_index": 0,
                "uuid": image,
                "source_type": "image",
                "destination_type": "local",
                "delete_on_termination": True,
            }
        ],
    )["server"]
    shown = cs.wait_status(demo, server["id"])
    assert shown["flavor"]["original_name"] == "m1.micro"
    cs.delete(demo, server["id"])


def test_admin_forced_host_and_no_valid_host(
    cloud: cloudfixture.Cloud, admin: httpx.Client, image: str, private: str, host: str
) -> None:
    forced = cs.boot(admin, image, networks=[{"uuid": private}], availability_zone=f"nova:{host}")[
        "server"
    ]
    assert cs.wait_status(admin, forced["id"])["OS-EXT-SRV-ATTR:host"] == host
    cs.delete(admin, forced["id"])
    huge = admin.post(
        "/flavors",
        json={"flavor": {"name": "huge", "ram": 64, "vcpus": 1, "disk": 10**6, "id": "huge"}},
    )
    assert huge.status_code == 200, huge.text
    failed = cs.boot(admin, image, flavor="huge", networks=[{"uuid": private}])["server"]
    shown = cs.show(admin, failed["id"])
    assert shown["status"] == "ERROR"
    assert shown["OS-EXT-STS:task_state"] is None
    assert shown["OS-EXT-SRV-ATTR:host"] is None
    assert shown["fault"]["code"] == 500
    assert shown["fault"]["message"].startswith("No valid host was found.")
    assert cs.ports_of(cloud, failed["id"]) == []
    actions = admin.get(f"/servers/{failed['id']}/os-instance-actions")
    if actions.status_code == 200:
        assert [a["action"] for a in actions.json()["instanceActions"]] == ["create"]
    # Never placed: deleted by the API at once.
    assert admin.delete(f"/servers/{failed['id']}").status_code == 204
    assert admin.get(f"/servers/{failed['id']}").status_code == 404
    admin.delete("/flavors/huge")


def test_quota_of_instances(cloud: cloudfixture.Cloud, admin: httpx.Client, image: str) -> None:
    member = cloudfixture.ProjectMember(cloud, cloud.sdk("stackbox-admin"))
    project = member.project.id
    set_quota = admin.put(f"/os-quota-sets/{project}", json={"quota_set": {"instances": 1}})
    assert set_quota.status_code == 200, set_quota.text
    with cs.compute(cloud, token=member.token()) as client:
        first = cs.boot(client, image, networks="none")["server"]
        message = cs.error(
            _create(
                client,
                {"name": "two", "imageRef": image, "flavorRef": cs.FLAVOR, "networks": "none"},
            ),
            403,
        )
        assert message == (
            "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"
        )
        cs.delete(client, first["id"])
        again = cs.boot(client, image, networks="none")["server"]
        cs.delete(client, again["id"])


def test_other_projects_server_is_not_found(
    demo: httpx.Client, alt: httpx.Client, admin: httpx.Client, image: str
) -> None:
    server = cs.boot(demo, image)["server"]
    missing = f"Instance {server['id']} could not be found."
    assert cs.error(alt.get(f"/servers/{server['id']}"), 404) == missing
    assert cs.error(alt.delete(f"/servers/{server['id']}"), 404) == missing
    assert cs.error(alt.put(f"/servers/{server['id']}", json={"server": {"name": "x"}}), 404)
    for path in ("metadata", "ips", "tags", "metadata/k", "tags/t"):
        assert alt.get(f"/servers/{server['id']}/{path}").status_code == 404
    assert server["id"] not in {s["id"] for s in alt.get("/servers").json()["servers"]}
    assert cs.show(admin, server["id"])["id"] == server["id"]
    cs.delete(demo, server["id"])
    assert cs.error(demo.get(f"/servers/{server['id']}"), 404) == missing


def test_update_by_microversion(demo: httpx.Client, image: str) -> None:
    server = cs.boot(demo, image, name="before")["server"]
    cs.wait_status(demo, server["id"])
    old = demo.put(
        f"/servers/{server['id']}",
        json={"server": {"name": "after", "accessIPv4": "192.0.2.9"}},
        headers=cs.version("2.1"),
    )
    assert old.status_code == 200, old.text
    body = old.json()["server"]
    assert body["name"] == "after" and body["accessIPv4"] == "192.0.2.9"
    # Before 2.75 PUT answers only the basic attributes.
    assert "key_name" not in body and "OS-EXT-STS:vm_state" not in body
    assert "OS-EXT-IPS:type" not in json.dumps(body["addresses"])
    new = demo.put(
        f"/servers/{server['id']}",
        json={"server": {"description": "d", "hostname": "new-host"}},
        headers=cs.version("2.90"),
    )
    assert new.status_code == 200, new.text
    body = new.json()["server"]
    assert body["description"] == "d"
    assert body["OS-EXT-SRV-ATTR:hostname"] == "new-host"
    assert body["key_name"] is None and body["OS-EXT-STS:vm_state"] == "active"
    bad = demo.put(
        f"/servers/{server['id']}",
        json={"server": {"description": "d"}},
        headers=cs.version("2.18"),
    )
    assert "Additional properties" in cs.error(bad, 400)
    cs.delete(demo, server["id"])


def test_show_bodies_by_microversion(admin: httpx.Client, demo: httpx.Client, image: str) -> None:
    server = cs.boot(demo, image, tags=["a"])["server"]
    cs.wait_status(demo, server["id"])
    body = cs.show(demo, server["id"], headers=cs.version("2.1"))
    assert body["flavor"]["id"] == cs.FLAVOR and "links" in body["flavor"]
    for key in ("locked", "description", "tags", "host_status", "OS-EXT-SRV-ATTR:host"):
        assert key not in body
    assert body["OS-EXT-STS:vm_state"] == "active"
    body = cs.show(demo, server["id"], headers=cs.version("2.47"))
    assert body["flavor"] == {
        "vcpus": 1,
        "ram": body["flavor"]["ram"],
        "disk": 1,
        "ephemeral": 0,
        "swap": 0,
        "original_name": "m1.nano",
        "extra_specs": body["flavor"]["extra_specs"],
    }
    assert body["locked"] is False and body["tags"] == ["a"] and "host_status" not in body
    body = cs.show(demo, server["id"])
    assert body["pinned_availability_zone"] is None and body["server_groups"] == []
    assert body["OS-EXT-SRV-ATTR:hostname"] == "server" and "OS-EXT-SRV-ATTR:host" not in body
    body = cs.show(admin, server["id"], headers=cs.version("2.16"))
    assert body["host_status"] == "UP"
    assert body["OS-EXT-SRV-ATTR:user_data"] is None
    detail = admin.get(
        "/servers/detail", params={"all_tenants": "1"}, headers=cs.version("2.73")
    ).json()["servers"]
    mine = next(s for s in detail if s["id"] == server["id"])
    assert "server_groups" not in mine and mine["locked_reason"] is None
    cs.delete(demo, server["id"])


def test_server_group_membership(demo: httpx.Client, image: str) -> None:
    made = demo.post(
        "/os-server-groups",
        json={"server_group": {"name": "g", "policy": "anti-affinity"}},
        headers=cs.version("2.64"),
    )
    assert made.status_code == 200, made.text
    group = made.json()["server_group"]["id"]
    server = cs.boot(demo, image, hints={"group": group})["server"]
    assert cs.show(demo, server["id"])["server_groups"] == [group]
    missing = "11111111-2222-3333-4444-555555555555"
    message = cs.error(
        demo.post(
            "/servers",
            json={
                "server": {
                    "name": "g",
                    "imageRef": image,
                    "flavorRef": cs.FLAVOR,
                    "networks": "auto",
                },
                "os:scheduler_hints": {"group": missing},
            },
        ),
        400,
    )
    assert message == f"Instance group {missing} could not be found."
    cs.delete(demo, server["id"])
    demo.delete(f"/os-server-groups/{group}")


def test_delete_twice_and_instance_actions(demo: httpx.Client, image: str) -> None:
    server = cs.boot(demo, image)["server"]
    cs.wait_status(demo, server["id"])
    assert demo.delete(f"/servers/{server['id']}").status_code == 204
    second = demo.delete(f"/servers/{server['id']}")
    assert second.status_code in (204, 404)
    cs.wait_gone(demo, server["id"])


def test_network_choices_errors(cloud: cloudfixture.Cloud, image: str) -> None:
    member = cloudfixture.ProjectMember(cloud, cloud.sdk("stackbox-admin"))
    token = member.token()
    with cs.compute(cloud, token=token) as client, cs.networking(cloud, token) as net:
        public = cs.network_id(cloud, "public")
        server = {"name": "n", "imageRef": image, "flavorRef": cs.FLAVOR}
        message = cs.error(_create(client, {**server, "networks": [{"uuid": public}]}), 403)
        assert message == f"It is not allowed to create an interface on external network {public}"
        bare = net.post("/networks", json={"network": {"name": "bare"}}).json()["network"]
        message = cs.error(_create(client, {**server, "networks": [{"uuid": bare["id"]}]}), 400)
        assert message == f"Network {bare['id']} requires a subnet in order to boot instances on."
        other = net.post("/networks", json={"network": {"name": "other"}}).json()["network"]
        message = cs.error(_create(client, {**server, "networks": "auto"}), 409)
        assert message == (
            "Multiple possible networks found, use a Network ID to be more specific."
        )
        for network in (bare, other):
            net.delete(f"/networks/{network['id']}")
        group = net.post("/security-groups", json={"security_group": {"name": "web"}}).json()
        sub = net.post("/networks", json={"network": {"name": "only"}}).json()["network"]
        net.post(
            "/subnets",
            json={"subnet": {"network_id": sub["id"], "cidr": "192.168.7.0/24", "ip_version": 4}},
        )
        made = cs.boot(
            client,
            image,
            networks="auto",
            security_groups=[{"name": group["security_group"]["id"]}, {"name": "default"}],
        )["server"]
        shown = cs.wait_status(client, made["id"])
        assert sorted(g["name"] for g in shown["security_groups"]) == ["default", "web"]
        cs.delete(client, made["id"])
