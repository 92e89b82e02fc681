"""Networks through openstacksdk and plain HTTP: ML2 segments, sharing, visibility, errors,
listing (filters, fields, sorting, paging) and revision numbers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional.netclients import admin_http, alt_http, demo_http

# Module fixtures used by the tests below.
__all__ = ["admin_http", "alt_http", "demo_http"]


def create(http: httpx.Client, **attrs: Any) -> dict[str, Any]:
    response = http.post("/networks", json={"network": attrs})
    assert response.status_code == 201, response.text
    return dict(response.json()["network"])


def neutron_error(response: httpx.Response, status: int, kind: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["NeutronError"]
    assert set(error) == {"type", "message", "detail"}
    if kind:
        assert error["type"] == kind, error
    return str(error["message"])


def test_sdk_lifecycle(admin: Any) -> None:
    network = admin.network.create_network(name="sdk-net", description="made by the SDK")
    revision = network.revision_number
    assert network.provider_network_type == "vxlan"
    assert network.mtu == 1450
    assert network.status == "ACTIVE" and network.is_admin_state_up
    updated = admin.network.update_network(network, name="sdk-net-2", mtu=1400)
    assert updated.name == "sdk-net-2" and updated.mtu == 1400
    assert updated.revision_number == revision + 1
    assert [n.id for n in admin.network.networks(name="sdk-net-2")] == [network.id]
    admin.network.delete_network(network)
    assert admin.network.find_network("sdk-net-2") is None


def test_segment_ids_are_unique_under_concurrency(admin_http: httpx.Client) -> None:
    def make(i: int) -> int:
        return int(create(admin_http, name=f"par-{i}")["provider:segmentation_id"])

    with ThreadPoolExecutor(8) as pool:
        vnis = list(pool.map(make, range(24)))
    assert len(set(vnis)) == 24


def test_provider_attributes_are_admin_only(
    admin_http: httpx.Client, demo_http: httpx.Client
) -> None:
    refused = demo_http.post(
        "/networks", json={"network": {"name": "x", "provider:network_type": "vxlan"}}
    )
    neutron_error(refused, 403, "PolicyNotAuthorized")
    mine = create(demo_http, name="demo-net")
    assert "provider:network_type" not in mine
    flat = admin_http.post(
        "/networks",
        json={
            "network": {
                "name": "flat",
                "provider:network_type": "flat",
                "provider:physical_network": "nowhere",
            }
        },
    )
    assert "physical_network 'nowhere' unknown" in neutron_error(flat, 400, "InvalidInput")
    vlan = admin_http.post(
        "/networks",
        json={
            "network": {
                "name": "v",
                "provider:network_type": "vlan",
                "provider:physical_network": "x",
            }
        },
    )
    neutron_error(vlan, 400, "InvalidInput")
    taken = create(
        admin_http,
        name="pinned",
        **{"provider:network_type": "vxlan", "provider:segmentation_id": 4000},
    )
    again = admin_http.post(
        "/networks",
        json={
            "network": {
                "name": "pinned-2",
                "provider:network_type": "vxlan",
                "provider:segmentation_id": 4000,
            }
        },
    )
    assert again.status_code == 409
    admin_http.delete(f"/networks/{taken['id']}")
    assert create(
        admin_http,
        name="pinned-3",
        **{"provider:network_type": "vxlan", "provider:segmentation_id": 4000},
    )


def test_other_projects_networks_are_404_unless_shared(
    admin_http: httpx.Client, demo_http: httpx.Client, alt_http: httpx.Client
) -> None:
    private = create(demo_http, name="demo-private")
    neutron_error(alt_http.get(f"/networks/{private['id']}"), 404, "NetworkNotFound")
    neutron_error(alt_http.delete(f"/networks/{private['id']}"), 404, "NetworkNotFound")
    assert private["id"] not in {n["id"] for n in alt_http.get("/networks").json()["networks"]}
    shared = create(admin_http, name="everyone", shared=True)
    seen = alt_http.get(f"/networks/{shared['id']}")
    assert seen.status_code == 200 and seen.json()["network"]["shared"] is True
    # Visible, but not theirs to change.
    neutron_error(
        alt_http.put(f"/networks/{shared['id']}", json={"network": {"name": "mine"}}), 403
    )
    neutron_error(demo_http.post("/networks", json={"network": {"name": "s", "shared": True}}), 403)
    external = create(admin_http, name="ext", **{"router:external": True})
    assert alt_http.get(f"/networks/{external['id']}").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"network": {"name": 5}}, 400, "Invalid input for name"),
        ({"network": {"admin_state_up": "maybe"}}, 400, "cannot be converted to boolean"),
        ({"network": {"bogus": 1}}, 400, "Unrecognized attribute(s) 'bogus'"),
        ({"network": {"status": "DOWN"}}, 400, "not allowed in POST"),
        ({"network": {"mtu": 9000}}, 400, "MTU is too big"),
        ({"netwrk": {}}, 400, "Unable to find 'network'"),
        ({}, 400, "Resource body required"),
    ],
)
def test_bad_input_changes_nothing(
    admin_http: httpx.Client, body: dict[str, Any], status: int, words: str
) -> None:
    before = {n["id"] for n in admin_http.get("/networks").json()["networks"]}
    assert words in neutron_error(admin_http.post("/networks", json=body), status)
    assert {n["id"] for n in admin_http.get("/networks").json()["networks"]} == before


def test_revision_if_match(admin_http: httpx.Client) -> None:
    network = create(admin_http, name="rev")
    stale = admin_http.put(
        f"/networks/{network['id']}",
        json={"network": {"name": "a"}},
        headers={"If-Match": "revision_number=7"},
    )
    neutron_error(stale, 412, "RevisionNumberConstraintFailed")
    fresh = admin_http.put(
        f"/networks/{network['id']}",
        json={"network": {"name": "b"}},
        headers={"If-Match": f"revision_number={network['revision_number']}"},
    )
    assert fresh.status_code == 200 and fresh.json()["network"]["name"] == "b"


def test_listing_filters_fields_sorting_paging(admin_http: httpx.Client) -> None:
    made = [create(admin_http, name=f"page-{i}", description="paged") for i in range(5)]
    ids = sorted(n["id"] for n in made)
    listed = admin_http.get(
        "/networks",
        params={
            "description": "paged",
            "sort_key": "id",
            "sort_dir": "asc",
            "fields": ["id", "name"],
        },
    )
    body = listed.json()["networks"]
    assert [n["id"] for n in body] == ids and set(body[0]) == {"id", "name"}
    first = admin_http.get(
        "/networks", params={"description": "paged", "sort_key": "id", "limit": 2}
    ).json()
    assert [n["id"] for n in first["networks"]] == ids[:2]
    following = next(link for link in first["networks_links"] if link["rel"] == "next")
    second = admin_http.get(following["href"].split("/v2.0", 1)[1]).json()
    assert [n["id"] for n in second["networks"]] == ids[2:4]
    neutron_error(admin_http.get("/networks", params={"nonsense": "1"}), 400)
    neutron_error(admin_http.get("/networks", params={"sort_key": "subnets"}), 400)


def test_delete_refused_while_ports_exist(admin_http: httpx.Client) -> None:
    network = create(admin_http, name="busy")
    port = admin_http.post("/ports", json={"port": {"network_id": network["id"]}})
    if port.status_code != 201:
        pytest.skip("ports are not served yet")
    neutron_error(admin_http.delete(f"/networks/{network['id']}"), 409, "NetworkInUse")
    admin_http.delete(f"/ports/{port.json()['port']['id']}")
    assert admin_http.delete(f"/networks/{network['id']}").status_code == 204


def test_extensions_list_only_what_is_served(admin_http: httpx.Client) -> None:
    aliases = {e["alias"] for e in admin_http.get("/extensions").json()["extensions"]}
    assert {"provider", "external-net", "network-mtu", "standard-attr-revisions"} <= aliases
    for absent in ("qos", "trunk", "metering", "bgp"):
        assert absent not in aliases
    neutron_error(admin_http.get("/extensions/qos"), 404)


def test_bulk_create_is_all_or_nothing(admin_http: httpx.Client) -> None:
    made = admin_http.post("/networks", json={"networks": [{"name": "bulk-a"}, {"name": "bulk-b"}]})
    assert made.status_code == 201, made.text
    assert [n["name"] for n in made.json()["networks"]] == ["bulk-a", "bulk-b"]
    before = {n["id"] for n in admin_http.get("/networks").json()["networks"]}
    broken = admin_http.post(
        "/networks", json={"networks": [{"name": "bulk-c"}, {"name": "bulk-d", "mtu": "x"}]}
    )
    neutron_error(broken, 400)
    assert {n["id"] for n in admin_http.get("/networks").json()["networks"]} == before


def test_shared_with_one_project(
    admin_http: httpx.Client,
    demo_http: httpx.Client,
    alt_http: httpx.Client,
    cloud: cloudfixture.Cloud,
) -> None:
    network = create(admin_http, name="for-alt-only")
    alt_project = cloud.sdk().identity.find_project("alt_demo", ignore_missing=False).id
    policy = admin_http.post(
        "/rbac-policies",
        json={
            "rbac_policy": {
                "object_type": "network",
                "object_id": network["id"],
                "action": "access_as_shared",
                "target_tenant": alt_project,
            }
        },
    )
    assert policy.status_code == 201, policy.text
    seen = alt_http.get(f"/networks/{network['id']}")
    assert seen.status_code == 200 and seen.json()["network"]["shared"] is True
    neutron_error(demo_http.get(f"/networks/{network['id']}"), 404, "NetworkNotFound")
    assert admin_http.get(f"/networks/{network['id']}").json()["network"]["shared"] is False
