"""What hangs off a server: metadata, tags (2.26), addresses (/ips), and the 409s of
locked servers and servers in the wrong state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional import computeservers as cs


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cs.devstack_cloud(Path(tmp_path_factory.mktemp("server-parts"))) as running:
        yield running


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with cs.compute(cloud, token=cloud.token("demo", project="demo")) as client:
        yield client


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with cs.compute(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def server(cloud: cloudfixture.Cloud, demo: httpx.Client) -> dict[str, Any]:
    made = cs.boot(demo, cs.image_id(cloud), name="parts", metadata={"a": "1"})["server"]
    return cs.wait_status(demo, made["id"])


@pytest.fixture(scope="module")
def broken(cloud: cloudfixture.Cloud, admin: httpx.Client, demo: httpx.Client) -> dict[str, Any]:
    """A server in ERROR (no host could take it)."""
    flavor = {"name": "too-big", "ram": 64, "vcpus": 1, "disk": 10**6, "id": "too-big"}
    assert admin.post("/flavors", json={"flavor": flavor}).status_code == 200
    made = cs.boot(demo, cs.image_id(cloud), name="broken", flavor="too-big")["server"]
    return cs.show(demo, made["id"])


def test_metadata_crud(demo: httpx.Client, server: dict[str, Any]) -> None:
    base = f"/servers/{server['id']}/metadata"
    assert demo.get(base).json() == {"metadata": {"a": "1"}}
    merged = demo.post(base, json={"metadata": {"b": "2"}})
    assert merged.status_code == 200, merged.text
    assert merged.json() == {"metadata": {"a": "1", "b": "2"}}
    replaced = demo.put(base, json={"metadata": {"c": "3"}})
    assert replaced.json() == {"metadata": {"c": "3"}}
    assert demo.get(f"{base}/c").json() == {"meta": {"c": "3"}}
    assert cs.error(demo.get(f"{base}/a"), 404) == "Metadata item was not found"
    assert demo.put(f"{base}/d", json={"meta": {"d": "4"}}).json() == {"meta": {"d": "4"}}
    mismatch = demo.put(f"{base}/d", json={"meta": {"e": "5"}})
    assert cs.error(mismatch, 400) == "Request body and URI mismatch"
    two = demo.put(f"{base}/d", json={"meta": {"d": "4", "e": "5"}})
    assert "Invalid input for field/attribute meta" in cs.error(two, 400)
    assert demo.delete(f"{base}/d").status_code == 204
    assert cs.error(demo.delete(f"{base}/d"), 404) == "Metadata item was not found"
    assert cs.show(demo, server["id"])["metadata"] == {"c": "3"}
    bad = demo.post(base, json={"metadata": {"k": "v" * 256}})
    assert "Invalid input for field/attribute k" in cs.error(bad, 400)


def test_metadata_quota(
    cloud: cloudfixture.Cloud, admin: httpx.Client, demo: httpx.Client, server: dict[str, Any]
) -> None:
    project = server["tenant_id"]
    assert (
        admin.put(
            f"/os-quota-sets/{project}", json={"quota_set": {"metadata_items": 2}}
        ).status_code
        == 200
    )
    base = f"/servers/{server['id']}/metadata"
    demo.put(base, json={"metadata": {"x": "1"}})
    message = cs.error(demo.post(base, json={"metadata": {"y": "2", "z": "3"}}), 403)
    assert message == "Maximum number of metadata items exceeds 2"
    assert demo.get(base).json() == {"metadata": {"x": "1"}}
    admin.put(f"/os-quota-sets/{project}", json={"quota_set": {"metadata_items": 128}})


def test_wrong_state_and_locked_are_409(
    demo: httpx.Client, admin: httpx.Client, server: dict[str, Any], broken: dict[str, Any]
) -> None:
    assert broken["status"] == "ERROR"
    message = cs.error(
        demo.post(f"/servers/{broken['id']}/metadata", json={"metadata": {"a": "b"}}), 409
    )
    assert (
        message == f"Cannot 'update metadata' instance {broken['id']} while it is in vm_state error"
    )
    message = cs.error(demo.put(f"/servers/{broken['id']}/tags/x"), 409)
    assert message == f"Cannot 'update tag' instance {broken['id']} while it is in vm_state error"
    locked = demo.post(f"/servers/{server['id']}/action", json={"lock": None})
    assert locked.status_code == 202, locked.text
    try:
        locked_message = f"Instance {server['id']} is locked"
        put = demo.put(f"/servers/{server['id']}/metadata", json={"metadata": {}})
        assert cs.error(put, 409) == locked_message
        assert cs.error(demo.delete(f"/servers/{server['id']}"), 409) == locked_message
        assert cs.show(demo, server["id"])["locked"] is True
    finally:
        demo.post(f"/servers/{server['id']}/action", json={"unlock": None})


def test_tags(demo: httpx.Client, server: dict[str, Any]) -> None:
    base = f"/servers/{server['id']}/tags"
    assert demo.get(base, headers=cs.version("2.25")).status_code == 404
    assert demo.put(base, json={"tags": ["b", "a", "b"]}).json() == {"tags": ["a", "b"]}
    assert demo.get(base).json() == {"tags": ["a", "b"]}
    added = demo.put(f"{base}/c")
    assert added.status_code == 201, added.text
    assert added.headers["Location"].endswith(f"/servers/{server['id']}/tags/c")
    assert demo.put(f"{base}/c").status_code == 204
    assert demo.get(f"{base}/c").status_code == 204
    assert cs.error(demo.get(f"{base}/z"), 404) == f"Server {server['id']} has no tag 'z'"
    assert demo.delete(f"{base}/c").status_code == 204
    assert cs.error(demo.delete(f"{base}/c"), 404) == f"Instance {server['id']} has no tag 'c'"
    assert "is invalid" in cs.error(demo.put(f"{base}/{'x' * 61}"), 400)
    assert cs.error(demo.put(base, json={"tags": ["a,b"]}), 400)
    too_many = [f"t{i}" for i in range(51)]
    assert cs.error(demo.put(base, json={"tags": too_many}), 400)
    assert demo.put(base, json={"tags": too_many[:50]}).status_code == 200
    full = demo.put(f"{base}/extra")
    assert cs.error(full, 400) == "The number of tags exceeded the per-server limit 50"
    assert demo.delete(base).status_code == 204
    assert demo.get(base).json() == {"tags": []}
    assert cs.show(demo, server["id"])["tags"] == []


def test_ips(cloud: cloudfixture.Cloud, demo: httpx.Client, server: dict[str, Any]) -> None:
    (port,) = cs.ports_of(cloud, server["id"])
    address = port["fixed_ips"][0]["ip_address"]
    expected = {"private": [{"version": 4, "addr": address}]}
    assert demo.get(f"/servers/{server['id']}/ips").json() == {"addresses": expected}
    assert demo.get(f"/servers/{server['id']}/ips/private").json() == expected
    message = cs.error(demo.get(f"/servers/{server['id']}/ips/public"), 404)
    assert message == "Instance is not a member of specified network"


def test_floating_ip_shows_in_addresses(
    cloud: cloudfixture.Cloud, demo: httpx.Client, server: dict[str, Any]
) -> None:
    (port,) = cs.ports_of(cloud, server["id"])
    with cs.networking(cloud, cloud.token("demo", project="demo")) as net:
        public = net.get("/networks", params={"name": "public"}).json()["networks"][0]["id"]
        made = net.post(
            "/floatingips",
            json={"floatingip": {"floating_network_id": public, "port_id": port["id"]}},
        )
        assert made.status_code == 201, made.text
        floating = made.json()["floatingip"]
        try:
            entries = cs.show(demo, server["id"])["addresses"]["private"]
            assert entries[1] == {
                "version": 4,
                "addr": floating["floating_ip_address"],
                "OS-EXT-IPS:type": "floating",
                "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
            }
        finally:
            net.delete(f"/floatingips/{floating['id']}")
