"""Catalog administration through the front door: services, endpoints, regions, OS-EP-FILTER."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openstack.exceptions
import pytest

from tests.cloudfixture import Cloud


def _auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin_token(cloud: Cloud) -> str:
    return cloud.token()


@pytest.fixture(scope="module")
def demo_token(cloud: Cloud) -> str:
    return cloud.token("demo", project="demo")


@pytest.fixture()
def http(cloud: Cloud, admin_token: str) -> Iterator[httpx.Client]:
    """An httpx client that sends the admin token unless a request says otherwise."""
    with cloud.http() as client:
        client.headers.update(_auth(admin_token))
        yield client


def _error(response: httpx.Response, status: int) -> str:
    """Assert Keystone's error body with ``status``; return the message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert error["title"] == httpx.codes.get_reason_phrase(status)
    return str(error["message"])


def _service(http: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("type", _name("type"))
    response = http.post("/v3/services", json={"service": body})
    assert response.status_code == 201, response.text
    return dict(response.json()["service"])


def _endpoint(http: httpx.Client, service_id: str, **body: Any) -> dict[str, Any]:
    body = {"service_id": service_id, "interface": "public", "url": "http://e.example/", **body}
    response = http.post("/v3/endpoints", json={"endpoint": body})
    assert response.status_code == 201, response.text
    return dict(response.json()["endpoint"])


def _ids(http: httpx.Client, path: str, key: str) -> set[str]:
    response = http.get(path)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()[key]}


def _project_id(http: httpx.Client, name: str) -> str:
    return str(http.get("/v3/projects", params={"name": name}).json()["projects"][0]["id"])


# Services.


def test_service_crud_through_sdk(admin: Any) -> None:
    kind = _name("type")
    created = admin.identity.create_service(name="svc", type=kind, description="first")
    assert (created.name, created.type, created.description) == ("svc", kind, "first")
    assert created.is_enabled is True

    updated = admin.identity.update_service(created, description="second", is_enabled=False)
    assert updated.description == "second" and updated.is_enabled is False
    fetched = admin.identity.get_service(created.id)
    assert (fetched.name, fetched.description, fetched.is_enabled) == ("svc", "second", False)

    other = admin.identity.create_service(name="other", type=_name("type"))
    assert [s.id for s in admin.identity.services(type=kind)] == [created.id]
    assert other.id in {s.id for s in admin.identity.services()}

    admin.identity.delete_service(created)
    admin.identity.delete_service(other)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.identity.get_service(created.id)


def test_service_keeps_extra_attributes(http: httpx.Client) -> None:
    service = _service(http, name="extra", color="blue", **{"os-flavor": "x"})
    assert service["color"] == "blue"
    # Keystone normalises "-" and ":" in attribute names on create.
    assert service["os_flavor"] == "x"
    assert service["links"]["self"].endswith(f"/identity/v3/services/{service['id']}")
    # No description given: Keystone leaves it out rather than inventing one.
    assert "description" not in service

    patched = http.patch(f"/v3/services/{service['id']}", json={"service": {"size": 3}})
    assert patched.status_code == 200
    body = patched.json()["service"]
    assert (body["color"], body["size"], body["name"]) == ("blue", 3, "extra")

    listed = http.get("/v3/services", params={"name": "extra"}).json()["services"]
    assert [s["id"] for s in listed] == [service["id"]]
    assert http.delete(f"/v3/services/{service['id']}").status_code == 204


def test_service_bad_input_changes_nothing(http: httpx.Client) -> None:
    before = _ids(http, "/v3/services", "services")
    message = _error(http.post("/v3/services", json={"service": {"name": "x"}}), 400)
    assert "type" in message
    _error(http.post("/v3/services", json={"service": {"type": "t", "enabled": "yes"}}), 400)
    assert _ids(http, "/v3/services", "services") == before

    service = _service(http)
    _error(http.patch(f"/v3/services/{service['id']}", json={"service": {}}), 400)
    wrong_id = {"service": {"id": "other", "name": "n"}}
    _error(http.patch(f"/v3/services/{service['id']}", json=wrong_id), 400)
    assert http.get(f"/v3/services/{service['id']}").json()["service"]["name"] == ""
    _error(http.get("/v3/services/nope"), 404)
    http.delete(f"/v3/services/{service['id']}")


def test_deleting_a_service_deletes_its_endpoints(http: httpx.Client) -> None:
    service = _service(http)
    endpoint = _endpoint(http, service["id"])
    project_id = _project_id(http, "demo")
    path = f"/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint['id']}"
    assert http.put(path).status_code == 204

    assert http.delete(f"/v3/services/{service['id']}").status_code == 204
    _error(http.get(f"/v3/endpoints/{endpoint['id']}"), 404)
    assert endpoint["id"] not in _ids(
        http, f"/v3/OS-EP-FILTER/projects/{project_id}/endpoints", "endpoints"
    )
    _error(http.delete(f"/v3/services/{service['id']}"), 404)


# Endpoints.


def test_endpoint_crud_through_sdk(admin: Any) -> None:
    service = admin.identity.create_service(name="ep", type=_name("type"))
    region = admin.identity.create_region(id=_name("region"))
    url = "http://svc.example/v1/$(project_id)s"
    endpoint = admin.identity.create_endpoint(
        service_id=service.id, interface="internal", url=url, region_id=region.id
    )
    assert (endpoint.interface, endpoint.url, endpoint.region_id) == ("internal", url, region.id)
    assert endpoint.is_enabled is True

    assert [e.id for e in admin.identity.endpoints(service_id=service.id)] == [endpoint.id]
    assert [e.id for e in admin.identity.endpoints(region_id=region.id)] == [endpoint.id]
    internal = {e.id for e in admin.identity.endpoints(interface="internal")}
    public = {e.id for e in admin.identity.endpoints(interface="public")}
    assert endpoint.id in internal and endpoint.id not in public

    updated = admin.identity.update_endpoint(endpoint, interface="admin", is_enabled=False)
    assert (updated.interface, updated.is_enabled) == ("admin", False)
    assert admin.identity.get_endpoint(endpoint.id).interface == "admin"

    admin.identity.delete_endpoint(endpoint)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.identity.get_endpoint(endpoint.id)
    admin.identity.delete_region(region)
    admin.identity.delete_service(service)


def test_endpoint_renders_region_both_ways(http: httpx.Client) -> None:
    service = _service(http)
    legacy = _name("legacy")
    endpoint = _endpoint(http, service["id"], region=legacy, name="named")
    assert endpoint["region_id"] == legacy and endpoint["region"] == legacy
    assert endpoint["name"] == "named"
    # The legacy "region" creates the region on the fly, as Keystone does.
    assert http.get(f"/v3/regions/{legacy}").status_code == 200
    # A region in use cannot go.
    message = _error(http.delete(f"/v3/regions/{legacy}"), 403)
    assert "associated endpoints" in message
    http.delete(f"/v3/services/{service['id']}")
    assert http.delete(f"/v3/regions/{legacy}").status_code == 204


def test_endpoint_bad_input_changes_nothing(http: httpx.Client) -> None:
    service = _service(http)
    before = _ids(http, "/v3/endpoints", "endpoints")
    regions_before = _ids(http, "/v3/regions", "regions")
    good = {"service_id": service["id"], "interface": "public", "url": "http://x.example/"}

    def create(**changes: Any) -> httpx.Response:
        return http.post("/v3/endpoints", json={"endpoint": {**good, **changes}})

    assert "interface" in _error(create(interface="private"), 400)
    message = _error(create(service_id="missing"), 400)
    assert message.startswith("Expecting to find endpoint service_id in service table.")
    message = _error(create(region_id="missing"), 400)
    assert message.startswith("Expecting to find endpoint region_id in region table.")
    _error(create(enabled="True"), 400)
    _error(create(url="not a url"), 400)
    assert "invalid URL" in _error(create(url="http://x/$(bogus)s"), 400)
    # A legacy region would be created, but the bad service undoes the whole request.
    _error(create(service_id="missing", region=_name("ghost")), 400)

    assert _ids(http, "/v3/endpoints", "endpoints") == before
    assert _ids(http, "/v3/regions", "regions") == regions_before
    _error(http.get("/v3/endpoints", params={"interface": "private"}), 400)

    endpoint = _endpoint(http, service["id"])
    path = f"/v3/endpoints/{endpoint['id']}"
    _error(http.patch(path, json={"endpoint": {"enabled": "False"}}), 400)
    _error(http.patch(path, json={"endpoint": {"service_id": "missing"}}), 400)
    _error(http.patch(path, json={"endpoint": {"region_id": "missing"}}), 400)
    assert http.get(path).json()["endpoint"] == endpoint
    _error(http.delete("/v3/endpoints/missing"), 404)
    http.delete(f"/v3/services/{service['id']}")


# Regions.


def test_region_crud_through_sdk(admin: Any) -> None:
    parent = admin.identity.create_region(description="parent")
    assert parent.id and parent.description == "parent"
    child = admin.identity.create_region(id=_name("child"), parent_region_id=parent.id)
    assert child.parent_region_id == parent.id

    children = [r.id for r in admin.identity.regions(parent_region_id=parent.id)]
    assert children == [child.id]
    updated = admin.identity.update_region(child, description="kid", parent_region_id=None)
    assert (updated.description, updated.parent_region_id) == ("kid", None)
    admin.identity.delete_region(child)
    admin.identity.delete_region(parent)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.identity.get_region(parent.id)


def test_region_put_duplicate_and_conflicts(http: httpx.Client) -> None:
    region_id = _name("put")
    created = http.put(f"/v3/regions/{region_id}", json={"region": {"description": "d"}})
    assert created.status_code == 201
    assert created.json()["region"] == {
        "id": region_id,
        "description": "d",
        "parent_region_id": None,
        "links": {"self": str(http.base_url).rstrip("/") + f"/v3/regions/{region_id}"},
    }

    again = http.put(f"/v3/regions/{region_id}", json={"region": {"description": "other"}})
    assert "Duplicate ID" in _error(again, 409)
    _error(http.post("/v3/regions", json={"region": {"id": region_id}}), 409)
    mismatch = http.put(f"/v3/regions/{_name('a')}", json={"region": {"id": "b"}})
    assert "Conflicting region IDs" in _error(mismatch, 400)
    assert http.get(f"/v3/regions/{region_id}").json()["region"]["description"] == "d"
    http.delete(f"/v3/regions/{region_id}")


def test_region_hierarchy_rules(http: httpx.Client) -> None:
    top = http.post("/v3/regions", json={"region": {}}).json()["region"]
    middle = http.post("/v3/regions", json={"region": {"parent_region_id": top["id"]}})
    middle_id = middle.json()["region"]["id"]
    leaf_id = _name("leaf")
    leaf = http.put(f"/v3/regions/{leaf_id}", json={"region": {"parent_region_id": middle_id}})
    assert leaf.status_code == 201

    missing_parent = {"region": {"parent_region_id": "missing"}}
    _error(http.post("/v3/regions", json=missing_parent), 404)
    cycle = http.patch(f"/v3/regions/{top['id']}", json={"region": {"parent_region_id": leaf_id}})
    assert "circular" in _error(cycle, 400)
    own = http.patch(f"/v3/regions/{top['id']}", json={"region": {"parent_region_id": top["id"]}})
    _error(own, 400)
    assert http.get(f"/v3/regions/{top['id']}").json()["region"]["parent_region_id"] is None
    _error(http.get("/v3/regions", params={"unknown": "x"}), 400)

    # Deleting a region takes its whole subtree with it.
    assert http.delete(f"/v3/regions/{top['id']}").status_code == 204
    for region_id in (top["id"], middle_id, leaf_id):
        _error(http.get(f"/v3/regions/{region_id}"), 404)


def test_region_with_endpoint_below_is_kept(http: httpx.Client) -> None:
    top = http.post("/v3/regions", json={"region": {}}).json()["region"]
    child = http.post("/v3/regions", json={"region": {"parent_region_id": top["id"]}}).json()
    service = _service(http)
    _endpoint(http, service["id"], region_id=child["region"]["id"])
    _error(http.delete(f"/v3/regions/{top['id']}"), 403)
    assert http.get(f"/v3/regions/{child['region']['id']}").status_code == 200
    http.delete(f"/v3/services/{service['id']}")
    assert http.delete(f"/v3/regions/{top['id']}").status_code == 204


# Policy.


def test_member_reads_regions_but_administers_nothing(cloud: Cloud, demo_token: str) -> None:
    with cloud.http() as demo:
        demo.headers.update(_auth(demo_token))
        assert demo.get("/v3/regions").status_code == 200
        assert demo.get("/v3/regions/RegionOne").status_code == 200
        _error(demo.post("/v3/regions", json={"region": {}}), 403)
        _error(demo.post("/v3/services", json={"service": {"type": "x"}}), 403)
        _error(demo.get("/v3/services"), 403)
        _error(demo.get("/v3/endpoints"), 403)
        _error(demo.get("/v3/OS-EP-FILTER/endpoint_groups"), 403)
        endpoint_id = "whatever"
        path = f"/v3/OS-EP-FILTER/projects/demo/endpoints/{endpoint_id}"
        _error(demo.put(path), 403)


def test_member_forbidden_changes_nothing(
    cloud: Cloud, demo_token: str, http: httpx.Client
) -> None:
    service = _service(http, name="keep")
    with cloud.http() as demo:
        demo.headers.update(_auth(demo_token))
        patch = {"service": {"name": "hijacked"}}
        _error(demo.patch(f"/v3/services/{service['id']}", json=patch), 403)
        _error(demo.delete(f"/v3/services/{service['id']}"), 403)
    assert http.get(f"/v3/services/{service['id']}").json()["service"]["name"] == "keep"
    http.delete(f"/v3/services/{service['id']}")


# The token catalog follows writes.


def test_catalog_follows_writes(http: httpx.Client, admin_token: str) -> None:
    def catalog_types() -> dict[str, list[str]]:
        response = http.get("/v3/auth/catalog")
        assert response.status_code == 200, response.text
        return {s["type"]: [e["url"] for e in s["endpoints"]] for s in response.json()["catalog"]}

    assert "identity" in catalog_types()
    kind = _name("type")
    service = _service(http, type=kind, name="fresh")
    endpoint = _endpoint(http, service["id"], url="http://fresh.example/$(project_id)s")
    project_id = _project_id(http, "admin")
    # The same token sees the new endpoint at once: writes drop the cached catalog.
    assert catalog_types()[kind] == [f"http://fresh.example/{project_id}"]

    http.patch(f"/v3/endpoints/{endpoint['id']}", json={"endpoint": {"enabled": False}})
    assert catalog_types()[kind] == []
    http.patch(f"/v3/services/{service['id']}", json={"service": {"enabled": False}})
    assert kind not in catalog_types()
    http.delete(f"/v3/services/{service['id']}")
    assert kind not in catalog_types()


# OS-EP-FILTER: endpoint groups.


def test_endpoint_group_crud_through_sdk(admin: Any) -> None:
    service = admin.identity.create_service(name="grp", type=_name("type"))
    group = admin.identity.create_endpoint_group(
        name="g", description="d", filters={"service_id": service.id}
    )
    assert (group.name, group.description, group.filters) == ("g", "d", {"service_id": service.id})
    assert group.id in {g.id for g in admin.identity.endpoint_groups()}
    updated = admin.identity.update_endpoint_group(group, name="g2", filters={"interface": "admin"})
    assert (updated.name, updated.filters) == ("g2", {"interface": "admin"})
    assert admin.identity.get_endpoint_group(group.id).name == "g2"
    admin.identity.delete_endpoint_group(group)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.identity.get_endpoint_group(group.id)
    admin.identity.delete_service(service)


def test_endpoint_group_filters_are_checked(http: httpx.Client) -> None:
    before = _ids(http, "/v3/OS-EP-FILTER/endpoint_groups", "endpoint_groups")

    def create(body: dict[str, Any]) -> httpx.Response:
        return http.post("/v3/OS-EP-FILTER/endpoint_groups", json={"endpoint_group": body})

    message = _error(create({"name": "g", "filters": {"enabled": True}}), 400)
    assert message.startswith("Expecting to find service_id or region_id or interface")
    _error(create({"name": "g", "filters": {"url": "x"}}), 400)
    _error(create({"name": "g", "filters": {}}), 400)
    _error(create({"name": "g", "filters": {"interface": "private"}}), 400)
    _error(create({"filters": {"interface": "public"}}), 400)
    _error(create({"name": "g", "filters": {"interface": "public"}, "other": 1}), 400)
    assert _ids(http, "/v3/OS-EP-FILTER/endpoint_groups", "endpoint_groups") == before

    group = create({"name": "g", "filters": {"interface": "public"}}).json()["endpoint_group"]
    path = f"/v3/OS-EP-FILTER/endpoint_groups/{group['id']}"
    _error(http.patch(path, json={"endpoint_group": {"filters": {"enabled": False}}}), 400)
    assert http.get(path).json()["endpoint_group"]["filters"] == {"interface": "public"}
    assert http.head(path).status_code == 200
    _error(http.get("/v3/OS-EP-FILTER/endpoint_groups/missing"), 404)
    http.delete(path)


def test_endpoint_group_selects_endpoints_and_projects(http: httpx.Client) -> None:
    service = _service(http)
    public = _endpoint(http, service["id"], interface="public")
    internal = _endpoint(http, service["id"], interface="internal")
    filters = {"service_id": service["id"], "interface": "internal"}
    group = http.post(
        "/v3/OS-EP-FILTER/endpoint_groups",
        json={"endpoint_group": {"name": "internal-only", "filters": filters}},
    ).json()["endpoint_group"]
    base = f"/v3/OS-EP-FILTER/endpoint_groups/{group['id']}"
    assert _ids(http, f"{base}/endpoints", "endpoints") == {internal["id"]}

    project_id = _project_id(http, "demo")
    link = f"{base}/projects/{project_id}"
    _error(http.get(link), 404)
    assert http.put(link).status_code == 204
    assert "Duplicate entry" in _error(http.put(link), 409)
    shown = http.get(link).json()["project_endpoint_group"]
    assert (shown["endpoint_group_id"], shown["project_id"]) == (group["id"], project_id)
    assert _ids(http, f"{base}/projects", "projects") == {project_id}
    groups = f"/v3/OS-EP-FILTER/projects/{project_id}/endpoint_groups"
    assert _ids(http, groups, "endpoint_groups") == {group["id"]}
    listed = _ids(http, f"/v3/OS-EP-FILTER/projects/{project_id}/endpoints", "endpoints")
    assert internal["id"] in listed and public["id"] not in listed

    _error(http.put(f"{base}/projects/missing"), 404)
    _error(http.put(f"/v3/OS-EP-FILTER/endpoint_groups/missing/projects/{project_id}"), 404)
    _error(http.get("/v3/OS-EP-FILTER/projects/missing/endpoint_groups"), 404)
    _error(http.get("/v3/OS-EP-FILTER/endpoint_groups/missing/endpoints"), 404)

    assert http.delete(link).status_code == 204
    _error(http.delete(link), 404)
    assert http.put(link).status_code == 204
    # Deleting the group drops its project associations.
    assert http.delete(base).status_code == 204
    assert _ids(http, groups, "endpoint_groups") == set()
    http.delete(f"/v3/services/{service['id']}")


# OS-EP-FILTER: endpoints tied to projects directly.


def test_project_endpoint_associations_through_sdk(admin: Any) -> None:
    service = admin.identity.create_service(name="assoc", type=_name("type"))
    endpoint = admin.identity.create_endpoint(
        service_id=service.id, interface="public", url="http://assoc.example/"
    )
    project = admin.identity.find_project("alt_demo", ignore_missing=False)
    admin.identity.associate_endpoint_with_project(project, endpoint)
    assert endpoint.id in {e.id for e in admin.identity.project_endpoints(project)}
    assert [p.id for p in admin.identity.endpoint_projects(endpoint)] == [project.id]
    admin.identity.disassociate_endpoint_from_project(project, endpoint)
    assert endpoint.id not in {e.id for e in admin.identity.project_endpoints(project)}
    admin.identity.delete_service(service)


def test_project_endpoint_association_errors(http: httpx.Client) -> None:
    service = _service(http)
    endpoint = _endpoint(http, service["id"])
    project_id = _project_id(http, "alt_demo")
    path = f"/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint['id']}"

    assert http.head(path.replace(project_id, "missing")).status_code == 404
    message = _error(http.get(path.replace(project_id, "missing")), 404)
    assert message == "Could not find project: missing."
    _error(http.put(f"/v3/OS-EP-FILTER/projects/{project_id}/endpoints/missing"), 404)
    _error(http.put(path.replace(project_id, "missing")), 404)
    message = _error(http.get(path), 404)
    assert message == f"Endpoint {endpoint['id']} not found in project {project_id}"

    assert http.put(path).status_code == 204
    assert http.head(path).status_code == 204
    assert http.get(path).status_code == 204
    assert "Duplicate entry" in _error(http.put(path), 409)
    projects = f"/v3/OS-EP-FILTER/endpoints/{endpoint['id']}/projects"
    assert _ids(http, projects, "projects") == {project_id}
    _error(http.get("/v3/OS-EP-FILTER/endpoints/missing/projects"), 404)
    _error(http.get("/v3/OS-EP-FILTER/projects/missing/endpoints"), 404)

    # Deleting the endpoint drops its associations.
    assert http.delete(f"/v3/endpoints/{endpoint['id']}").status_code == 204
    assert endpoint["id"] not in _ids(
        http, f"/v3/OS-EP-FILTER/projects/{project_id}/endpoints", "endpoints"
    )
    _error(http.delete(path), 404)
    http.delete(f"/v3/services/{service['id']}")


def test_project_endpoint_filter_limits_that_projects_catalog(
    cloud: Cloud, http: httpx.Client
) -> None:
    service = _service(http, name="filtered")
    chosen = _endpoint(http, service["id"], url="http://chosen.example/")
    _endpoint(http, service["id"], url="http://other.example/", interface="internal")
    alt_id = _project_id(http, "alt_demo")
    alt_token = cloud.token("alt_demo", project="alt_demo")

    def catalog() -> dict[str, set[str]]:
        response = http.get("/v3/auth/catalog", headers=_auth(alt_token))
        assert response.status_code == 200, response.text
        return {s["type"]: {e["id"] for e in s["endpoints"]} for s in response.json()["catalog"]}

    before = catalog()
    assert "identity" in before and len(before[service["type"]]) == 2
    linked = http.put(f"/v3/OS-EP-FILTER/projects/{alt_id}/endpoints/{chosen['id']}")
    assert linked.status_code == 204
    # Once a project has associations, its catalog holds only those endpoints.
    assert catalog() == {service["type"]: {chosen["id"]}}
    # Other projects are unaffected.
    demo = cloud.token("demo", project="demo")
    demo_catalog = http.get("/v3/auth/catalog", headers=_auth(demo)).json()["catalog"]
    assert "identity" in {s["type"] for s in demo_catalog}
    http.delete(f"/v3/OS-EP-FILTER/projects/{alt_id}/endpoints/{chosen['id']}")
    assert catalog() == before
