"""The deprecated image and network proxies of the compute API (``/images``,
``/images/{id}/metadata``, ``os-networks``, ``os-tenant-networks``): what the Image and
Networking services hold, as Nova shows it, below 2.36 (2.39 for image metadata), and
404 from there on."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, cloud, error

__all__ = ["cloud"]


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("demo", project="demo"), "compute 2.1")


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("alt_demo", project="alt_demo"), "compute 2.1")


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token(), "compute 2.1")


def glance(client: Compute) -> httpx.Client:
    return httpx.Client(
        base_url=client.cloud.base_url + "/image/v2",
        headers={"X-Auth-Token": client.token},
        timeout=30,
    )


def make_image(client: Compute, data: bytes | None = b"x" * 1024, **fields: Any) -> dict[str, Any]:
    """An image made through the Image API (uploaded when ``data`` is given)."""
    body = {"container_format": "bare", "disk_format": "raw", **fields}
    with glance(client) as api:
        made = api.post("/images", json=body)
        assert made.status_code == 201, made.text
        image: dict[str, Any] = made.json()
        if data is not None:
            stored = api.put(
                f"/images/{image['id']}/file",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert stored.status_code == 204, stored.text
            image = api.get(f"/images/{image['id']}").json()
    return image


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["images"]]


# --- images -----------------------------------------------------------------------------------


def test_an_image_of_the_image_service_shows_as_nova_shows_it(demo: Compute) -> None:
    image = make_image(
        demo, name="proxied", min_ram=64, min_disk=1, os_distro="cirros", auto_disk_config="true"
    )
    response = demo.http.get(f"/images/{image['id']}")
    assert response.status_code == 200, response.text
    shown = response.json()["image"]
    assert shown["id"] == image["id"]
    assert shown["name"] == "proxied"
    assert shown["status"] == "ACTIVE" and shown["progress"] == 100
    assert (shown["minRam"], shown["minDisk"]) == (64, 1)
    assert shown["OS-EXT-IMG-SIZE:size"] == 1024
    assert shown["metadata"] == {"os_distro": "cirros", "auto_disk_config": "true"}
    assert shown["OS-DCF:diskConfig"] == "AUTO"
    assert shown["created"] == image["created_at"] and shown["updated"] == image["updated_at"]
    assert "server" not in shown
    rels = {link["rel"]: link for link in shown["links"]}
    assert rels["self"]["href"].endswith(f"/compute/v2.1/images/{image['id']}")
    assert rels["bookmark"]["href"].endswith(f"/compute/images/{image['id']}")
    assert rels["alternate"]["type"] == "application/vnd.openstack.image"
    assert rels["alternate"]["href"] == f"{demo.cloud.base_url}/image/images/{image['id']}"
    listed = demo.http.get("/images").json()["images"]
    assert {"id", "name", "links"} == set(next(i for i in listed if i["id"] == image["id"]))
    detailed = demo.http.get("/images/detail").json()["images"]
    assert next(i for i in detailed if i["id"] == image["id"]) == shown


def test_a_queued_image_is_saving_and_filters_reach_glance(demo: Compute) -> None:
    queued = make_image(demo, data=None, name="proxy-queued", min_ram=512)
    active = make_image(demo, name="proxy-active", image_type="snapshot", instance_uuid="abc")
    shown = demo.http.get(f"/images/{queued['id']}").json()["image"]
    assert (shown["status"], shown["progress"], shown["OS-EXT-IMG-SIZE:size"]) == ("SAVING", 25, 0)
    assert ids(demo.http.get("/images", params={"name": "proxy-queued"})) == [queued["id"]]
    # Nova lowercases the status for Glance: ACTIVE finds active images, not queued ones.
    by_status = ids(demo.http.get("/images/detail", params={"status": "ACTIVE"}))
    assert active["id"] in by_status and queued["id"] not in by_status
    by_ram = ids(demo.http.get("/images", params={"minRam": "512"}))
    assert queued["id"] in by_ram and active["id"] not in by_ram
    assert ids(demo.http.get("/images", params={"type": "snapshot"})) == [active["id"]]
    server_link = f"{demo.cloud.base_url}/compute/v2.1/servers/abc"
    assert ids(demo.http.get("/images", params={"server": server_link})) == [active["id"]]
    assert ids(demo.http.get("/images", params={"property-image_type": "snapshot"})) == [
        active["id"]
    ]
    since = demo.http.get("/images", params={"changes-since": "2999-01-01T00:00:00Z"})
    assert ids(since) == []
    snapshot = demo.http.get(f"/images/{active['id']}").json()["image"]
    assert snapshot["server"]["id"] == "abc"
    assert snapshot["server"]["links"][0]["href"].endswith("/compute/v2.1/servers/abc")
    bad = demo.http.get("/images", params={"changes-since": "yesterday"})
    error(bad, 400)


def test_paging_follows_glance_with_nova_links(demo: Compute) -> None:
    for n in range(3):
        make_image(demo, name=f"paged-{n}")
    everything = ids(demo.http.get("/images", params={"name": "in:paged-0,paged-1,paged-2"}))
    assert len(everything) == 3
    first = demo.http.get("/images", params={"limit": "2"})
    assert len(ids(first)) == 2
    (link,) = first.json()["images_links"]
    assert link["rel"] == "next" and f"marker={ids(first)[-1]}" in link["href"]
    rest = ids(demo.http.get("/images", params={"marker": ids(first)[-1]}))
    assert rest and not set(rest) & set(ids(first))
    assert "images_links" not in demo.http.get("/images").json()
    error(demo.http.get("/images", params={"limit": "0"}), 400)
    error(demo.http.get("/images", params={"marker": "not-an-image"}), 400)


def test_visibility_is_glance_s(demo: Compute, alt: Compute, admin: Compute) -> None:
    private = make_image(demo, name="demo-private", visibility="private")
    public = make_image(admin, name="everyones", visibility="public")
    assert private["id"] not in ids(alt.http.get("/images"))
    assert public["id"] in ids(alt.http.get("/images"))
    assert "Image not found." in error(alt.http.get(f"/images/{private['id']}"), 404)
    assert admin.http.get(f"/images/{private['id']}").status_code == 200
    for missing in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        error(demo.http.get(f"/images/{missing}"), 404)


def test_delete_goes_through_glance(demo: Compute, alt: Compute, admin: Compute) -> None:
    mine = make_image(demo, name="to-delete")
    protected = make_image(demo, name="protected", protected=True)
    public = make_image(admin, name="not-yours", visibility="public")
    error(alt.http.delete(f"/images/{mine['id']}"), 404)
    assert "not allowed" in error(demo.http.delete(f"/images/{protected['id']}"), 403)
    error(demo.http.delete(f"/images/{public['id']}"), 403)
    assert demo.http.delete(f"/images/{mine['id']}").status_code == 204
    with glance(demo) as api:
        assert api.get(f"/images/{mine['id']}").status_code == 404
        assert api.get(f"/images/{protected['id']}").status_code == 200
    error(demo.http.delete(f"/images/{mine['id']}"), 404)
    error(demo.http.delete("/images/"), 404)
    error(demo.http.delete("/images/-1"), 404)


def test_metadata_changes_the_image_properties(demo: Compute, alt: Compute) -> None:
    image = make_image(demo, name="with-meta", os_version="1")
    path = f"/images/{image['id']}/metadata"
    assert demo.http.get(path).json() == {"metadata": {"os_version": "1"}}
    merged = demo.http.post(path, json={"metadata": {"os_distro": "cirros"}})
    assert merged.json() == {"metadata": {"os_version": "1", "os_distro": "cirros"}}
    replaced = demo.http.put(path, json={"metadata": {"architecture": "x86_64"}})
    assert replaced.json() == {"metadata": {"architecture": "x86_64"}}
    item = demo.http.put(f"{path}/os_version", json={"meta": {"os_version": "2"}})
    assert item.json() == {"meta": {"os_version": "2"}}
    assert demo.http.get(f"{path}/os_version").json() == {"meta": {"os_version": "2"}}
    with glance(demo) as api:
        body = api.get(f"/images/{image['id']}").json()
    assert (body["architecture"], body["os_version"]) == ("x86_64", "2")
    assert "os_distro" not in body
    assert demo.http.delete(f"{path}/architecture").status_code == 204
    assert demo.http.get(path).json() == {"metadata": {"os_version": "2"}}
    assert "Invalid metadata key" in error(demo.http.delete(f"{path}/architecture"), 404)
    error(demo.http.get(f"{path}/architecture"), 404)
    mismatch = demo.http.put(f"{path}/a", json={"meta": {"b": "c"}})
    assert "mismatch" in error(mismatch, 400)
    error(demo.http.post(path, json={"metadata": {"k": 1}}), 400)
    error(demo.http.post(path, json={"metadata": {"os_glance_x": "1"}}), 403)
    error(alt.http.get(path), 404)
    error(demo.http.get("/images/00000000-0000-0000-0000-000000000000/metadata"), 404)
    error(demo.at("2.39").http.get(path), 404)
    assert demo.at("2.38").http.get(path).status_code == 200


def test_metadata_counts_against_the_metadata_items_quota(
    demo: Compute, admin: Compute, cloud: cloudfixture.Cloud
) -> None:
    image = make_image(demo, name="quota-meta")
    path = f"/images/{image['id']}/metadata"
    demo_project = _project_id(cloud, "demo")
    quota = admin.http.put(
        f"/os-quota-sets/{demo_project}", json={"quota_set": {"metadata_items": 2}}
    )
    assert quota.status_code == 200, quota.text
    try:
        assert demo.http.put(path, json={"metadata": {"a": "1", "b": "2"}}).status_code == 200
        refused = demo.http.post(path, json={"metadata": {"c": "3"}})
        assert "Image metadata limit exceeded" in error(refused, 403)
        assert demo.http.get(path).json() == {"metadata": {"a": "1", "b": "2"}}
    finally:
        admin.http.put(
            f"/os-quota-sets/{demo_project}", json={"quota_set": {"metadata_items": 128}}
        )


def _project_id(cloud: cloudfixture.Cloud, name: str) -> str:
    with cloud.http() as client:
        found = client.get(
            "/v3/projects", params={"name": name}, headers={"X-Auth-Token": cloud.token()}
        )
    return str(found.json()["projects"][0]["id"])


def test_images_are_gone_from_2_36(demo: Compute) -> None:
    image = make_image(demo, name="late")
    later = demo.at("2.36")
    for path in ("/images", "/images/detail", f"/images/{image['id']}"):
        error(later.http.get(path), 404)
    error(later.http.delete(f"/images/{image['id']}"), 404)
    assert demo.at("2.35").http.get(f"/images/{image['id']}").status_code == 200


def test_openstacksdk_lists_and_deletes_images(demo: Compute, cloud: cloudfixture.Cloud) -> None:
    image = make_image(demo, name="sdk-seen", min_disk=2)
    conn = cloud.connect(username="demo", password=cloud.passwords()["demo"], project_name="demo")
    found = {i.id: i for i in conn.compute.images(name="sdk-seen")}
    assert found[image["id"]].min_disk == 2 and found[image["id"]].status == "ACTIVE"
    assert conn.compute.get_image(image["id"]).size == 1024
    conn.compute.delete_image(image["id"], ignore_missing=False)
    deadline = time.monotonic() + 10
    while demo.http.get(f"/images/{image['id']}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)


# --- networks ---------------------------------------------------------------------------------


def test_networks_are_the_networking_service_s(demo: Compute, admin: Compute) -> None:
    with httpx.Client(
        base_url=demo.cloud.base_url + "/networking/v2.0",
        headers={"X-Auth-Token": demo.token},
    ) as net:
        neutron = {n["id"]: n["name"] for n in net.get("/networks").json()["networks"]}
    listed = demo.http.get("/os-networks").json()["networks"]
    assert {n["id"]: n["label"] for n in listed} == neutron
    assert "private" in neutron.values() and "public" in neutron.values()
    private = next(n for n in listed if n["label"] == "private")
    assert private["cidr"] is None and "project_id" not in private
    shown = demo.http.get(f"/os-networks/{private['id']}").json()["network"]
    assert shown == private
    admin_view = admin.http.get(f"/os-networks/{private['id']}").json()["network"]
    assert admin_view["label"] == "private" and admin_view["project_id"] is None
    tenant = demo.http.get("/os-tenant-networks").json()["networks"]
    assert {n["id"]: n["label"] for n in tenant} == neutron
    one = demo.http.get(f"/os-tenant-networks/{private['id']}").json()["network"]
    assert one == {"id": private["id"], "cidr": "None", "label": "private"}
    missing = "00000000-0000-0000-0000-000000000000"
    assert "Network not found" in error(demo.http.get(f"/os-networks/{missing}"), 404)
    error(demo.http.get(f"/os-tenant-networks/{missing}"), 404)


def test_nova_network_calls_are_gone_and_proxies_end_at_2_36(demo: Compute) -> None:
    some = "00000000-0000-0000-0000-000000000000"
    for method, path in (
        ("POST", "/os-networks"),
        ("POST", "/os-networks/add"),
        ("DELETE", f"/os-networks/{some}"),
        ("POST", f"/os-networks/{some}/action"),
        ("POST", "/os-tenant-networks"),
        ("DELETE", f"/os-tenant-networks/{some}"),
    ):
        response = demo.http.request(method, path, json={"network": {}})
        assert response.status_code == 410, (method, path, response.text)
    later = demo.at("2.36")
    for path in ("/os-networks", "/os-tenant-networks"):
        error(later.http.get(path), 404)
