"""GET /servers and /servers/detail: filters, sorting, paging, tenants and deleted rows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional import computeservers as cs


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cs.devstack_cloud(Path(tmp_path_factory.mktemp("server-list"))) as running:
        yield running


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
def servers(
    cloud: cloudfixture.Cloud, demo: httpx.Client, alt: httpx.Client
) -> dict[str, dict[str, Any]]:
    """demo: alpha-1, alpha-2 (m1.nano, tags a b), beta (m1.micro, tag b); alt: gamma."""
    image = cs.image_id(cloud)
    made = {}
    for name, flavor, tags in (
        ("alpha-1", cs.FLAVOR, ["a", "b"]),
        ("alpha-2", cs.FLAVOR, ["a", "b"]),
        ("beta", cs.FLAVOR_ALT, ["b"]),
    ):
        made[name] = cs.boot(demo, image, name=name, flavor=flavor, tags=tags)["server"]
        time.sleep(0.01)
    made["gamma"] = cs.boot(alt, image, name="gamma", networks="none")["server"]
    for name, server in made.items():
        client = alt if name == "gamma" else demo
        made[name] = cs.wait_status(client, server["id"])
    return made


def names(client: httpx.Client, path: str = "/servers/detail", **params: Any) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [s["name"] for s in response.json()["servers"]]


def test_minimal_and_detailed_listings(
    demo: httpx.Client, servers: dict[str, dict[str, Any]]
) -> None:
    minimal = demo.get("/servers").json()
    assert set(minimal) == {"servers"}
    assert all(set(s) == {"id", "name", "links"} for s in minimal["servers"])
    # Newest first.
    assert [s["name"] for s in minimal["servers"]] == ["beta", "alpha-2", "alpha-1"]
    detail = demo.get("/servers/detail").json()["servers"]
    assert [s["id"] for s in detail] == [s["id"] for s in minimal["servers"]]
    assert all(s["status"] == "ACTIVE" and s["addresses"]["private"] for s in detail)
    assert {s["name"]: s["tags"] for s in detail}["beta"] == ["b"]


def test_filters(demo: httpx.Client, servers: dict[str, dict[str, Any]]) -> None:
    assert sorted(names(demo, name="^alpha")) == ["alpha-1", "alpha-2"]
    assert names(demo, name="ta$") == ["beta"]
    assert sorted(names(demo, flavor=cs.FLAVOR)) == ["alpha-1", "alpha-2"]
    assert names(demo, flavor="nope") == []
    assert len(names(demo, image=servers["beta"]["image"]["id"])) == 3
    assert len(names(demo, status="ACTIVE")) == 3
    assert names(demo, status="SHUTOFF") == []
    address = servers["beta"]["addresses"]["private"][0]["addr"]
    assert names(demo, ip=address) == ["beta"]
    assert len(names(demo, ip="10.0.0.")) == 3
    assert names(demo, reservation_id=servers["beta"]["id"]) == []
    # Filters a member may not use are ignored, as Nova does.
    assert len(names(demo, host="nowhere")) == 3


def test_tag_filters(demo: httpx.Client, servers: dict[str, dict[str, Any]]) -> None:
    assert sorted(names(demo, tags="a,b")) == ["alpha-1", "alpha-2"]
    assert sorted(names(demo, **{"tags-any": "a,z"})) == ["alpha-1", "alpha-2"]
    assert names(demo, **{"not-tags": "a,b"}) == ["beta"]
    assert names(demo, **{"not-tags-any": "a"}) == ["beta"]
    assert len(names(demo, tags="z")) == 0


def test_status_and_time_filters(demo: httpx.Client, servers: dict[str, dict[str, Any]]) -> None:
    old = cs.version("2.37")
    assert demo.get("/servers", params={"status": "BOGUS"}, headers=old).json() == {"servers": []}
    assert cs.error(demo.get("/servers", params={"status": "BOGUS"}), 400) == (
        "Invalid status value"
    )
    assert names(demo, **{"changes-since": "2999-01-01T00:00:00Z"}) == []
    assert len(names(demo, **{"changes-since": "2000-01-01T00:00:00Z"})) == 3
    bad = demo.get("/servers", params={"changes-since": "yesterday"})
    assert "changes-since" in cs.error(bad, 400)
    both = demo.get(
        "/servers",
        params={"changes-since": "2020-01-02T00:00:00Z", "changes-before": "2020-01-01T00:00:00Z"},
    )
    assert cs.error(both, 400) == (
        "The value of changes-since must be less than or equal to changes-before."
    )
    assert len(names(demo, locked="false")) == 3
    assert cs.error(demo.get("/servers", params={"locked": "maybe"}), 400)


def test_unknown_parameters_from_275(demo: httpx.Client, servers: dict[str, Any]) -> None:
    assert (
        demo.get("/servers", params={"bogus": "1"}, headers=cs.version("2.74")).status_code == 200
    )
    message = cs.error(demo.get("/servers", params={"bogus": "1"}), 400)
    assert message == "'bogus' does not match any of the regexes: '^_'"
    assert cs.error(demo.get("/servers", params={"sort_key": "nope"}), 400)


def test_sorting(demo: httpx.Client, admin: httpx.Client, servers: dict[str, Any]) -> None:
    assert names(demo, sort_key="display_name", sort_dir="asc") == ["alpha-1", "alpha-2", "beta"]
    assert names(demo, sort_key="display_name", sort_dir="desc") == ["beta", "alpha-2", "alpha-1"]
    message = cs.error(demo.get("/servers", params={"sort_key": "host"}), 403)
    assert message == "Only administrators can sort servers by host"
    assert cs.error(demo.get("/servers", params={"sort_dir": "up"}, headers=cs.version("2.1")), 400)
    assert admin.get("/servers", params={"sort_key": "host"}).status_code == 200


def test_paging(demo: httpx.Client, servers: dict[str, Any]) -> None:
    first = demo.get("/servers", params={"limit": 2}).json()
    assert [s["name"] for s in first["servers"]] == ["beta", "alpha-2"]
    (link,) = first["servers_links"]
    assert link["rel"] == "next"
    assert f"marker={first['servers'][-1]['id']}" in link["href"]
    assert "limit=2" in link["href"]
    rest = httpx.get(link["href"], headers=demo.headers).json()
    assert [s["name"] for s in rest["servers"]] == ["alpha-1"]
    assert "servers_links" not in rest
    last = demo.get("/servers/detail", params={"limit": 1, "marker": rest["servers"][0]["id"]})
    assert last.json() == {"servers": []}
    assert cs.error(demo.get("/servers", params={"marker": "nope"}), 400) == (
        "marker [nope] not found"
    )
    assert cs.error(demo.get("/servers", params={"limit": -1}), 400)
    assert cs.error(demo.get("/servers", params={"limit": "x"}), 400)


def test_tenants(
    demo: httpx.Client, alt: httpx.Client, admin: httpx.Client, servers: dict[str, Any]
) -> None:
    assert names(alt) == ["gamma"]
    message = cs.error(demo.get("/servers", params={"all_tenants": "1"}), 403)
    assert "servers:index:get_all_tenants" in message
    assert names(admin) == []
    everyone = names(admin, all_tenants="1")
    assert sorted(everyone) == ["alpha-1", "alpha-2", "beta", "gamma"]
    project = servers["gamma"]["tenant_id"]
    assert names(admin, all_tenants="1", project_id=project) == ["gamma"]
    host = admin.get(f"/servers/{servers['gamma']['id']}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    assert len(names(admin, all_tenants="1", host=host)) == 4
    assert names(admin, all_tenants="1", host="nowhere") == []


def test_deleted_servers(
    cloud: cloudfixture.Cloud, demo: httpx.Client, admin: httpx.Client, servers: dict[str, Any]
) -> None:
    image = cs.image_id(cloud)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    doomed = cs.boot(demo, image, name="doomed", networks="none")["server"]
    cs.delete(demo, doomed["id"])
    assert "doomed" not in names(demo)
    changed = demo.get("/servers/detail", params={"changes-since": since}).json()["servers"]
    gone = next(s for s in changed if s["id"] == doomed["id"])
    assert gone["status"] == "DELETED"
    assert "doomed" not in names(demo, deleted="true")  # not a member's filter
    assert "doomed" in names(admin, all_tenants="1", deleted="true")
    assert "doomed" in names(admin, all_tenants="1", status="DELETED")
    assert cs.error(demo.get("/servers", params={"status": "DELETED"}), 403) == (
        "Only administrators may list deleted instances"
    )
