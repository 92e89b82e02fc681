"""The metadata definitions catalog (/v2/metadefs) over plain HTTP and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests import cloudfixture

OPENSTACK = str(Path(sys.executable).parent / "openstack")
NS = "/v2/metadefs/namespaces"
STANDARD_TYPES = {"OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor"}


def client(cloud: cloudfixture.Cloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/image", headers={"X-Auth-Token": token}, timeout=30
    )


@pytest.fixture(scope="module")
def api(cloud: cloudfixture.Cloud) -> httpx.Client:
    return client(cloud, cloud.token())


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> httpx.Client:
    return client(cloud, cloud.token("demo", project="demo"))


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> httpx.Client:
    return client(cloud, cloud.token("alt_demo", project="alt_demo"))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def created(api: httpx.Client, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
    response = api.post(path, json=body, **kw)
    assert response.status_code == 201, response.text
    return dict(response.json())


def namespace(api: httpx.Client, **attrs: Any) -> str:
    attrs.setdefault("namespace", unique("ns"))
    created(api, NS, attrs)
    return str(attrs["namespace"])


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"].startswith(str(status)), body
    return str(body["message"])


PROPERTY = {"type": "string", "title": "Hypervisor", "enum": ["kvm", "qemu"], "default": "kvm"}


def test_namespace_with_contents_round_trips(api: httpx.Client) -> None:
    name = unique("full")
    body = {
        "namespace": name,
        "display_name": "Full",
        "description": "all of it",
        "visibility": "public",
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
        "properties": {"hypervisor": PROPERTY},
        "objects": [
            {
                "name": "CPU",
                "required": ["cores"],
                "properties": {"cores": {"type": "integer", "title": "Cores", "minimum": 1}},
            }
        ],
        "tags": [{"name": "fast"}, {"name": "small"}],
    }
    response = api.post(NS, json=body)
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(f"/image{NS}/{name}")
    shown = api.get(f"{NS}/{name}").json()
    assert shown["display_name"] == "Full" and shown["visibility"] == "public"
    assert shown["protected"] is False and shown["self"] == f"{NS}/{name}"
    assert shown["properties"] == {"hypervisor": PROPERTY}
    assert [o["name"] for o in shown["objects"]] == ["CPU"]
    assert shown["objects"][0]["required"] == ["cores"]
    assert {t["name"] for t in shown["tags"]} == {"fast", "small"}
    assert shown["resource_type_associations"][0]["prefix"] == "hw_"
    # ?resource_type= shows the names as that resource type sees them.
    prefixed = api.get(f"{NS}/{name}", params={"resource_type": "OS::Glance::Image"}).json()
    assert list(prefixed["properties"]) == ["hw_hypervisor"]
    assert prefixed["objects"][0]["required"] == ["hw_cores"]


def test_put_replaces_the_namespace_and_can_rename_it(api: httpx.Client) -> None:
    name = namespace(api, display_name="Before", visibility="public", description="d")
    new = unique("renamed")
    response = api.put(f"{NS}/{name}", json={"namespace": new, "description": "after"})
    assert response.status_code == 200, response.text
    body = response.json()
    # As in Glance, what the body leaves out falls back to the defaults.
    assert body["namespace"] == new and body["description"] == "after"
    assert body["visibility"] == "private" and "display_name" not in body
    error(api.get(f"{NS}/{name}"), 404)
    other = namespace(api)
    error(api.put(f"{NS}/{new}", json={"namespace": other}), 409)
    error(api.put(f"{NS}/{new}", json={"description": "no name"}), 400)


def test_duplicate_namespace_is_409_and_failed_creates_leave_nothing(api: httpx.Client) -> None:
    name = namespace(api)
    assert "already exists" in error(api.post(NS, json={"namespace": name}), 409)
    half = unique("half")
    error(api.post(NS, json={"namespace": half, "tags": [{"name": "x"}, {"name": "X"}]}), 409)
    error(api.get(f"{NS}/{half}"), 404)


@pytest.mark.parametrize(
    "definition",
    [
        {"type": "string"},
        {"title": "No type"},
        {"type": "str", "title": "Bad type"},
        {"type": "string", "title": "T", "bogus": 1},
        {"type": "string", "title": "T", "pattern": "[a-"},
        {"type": "string", "title": "T", "maxLength": -1},
        {"type": "array", "title": "T", "items": {"enum": ["a"]}},
        {"type": "number", "title": "T", "minimum": "one"},
    ],
)
def test_bad_property_definitions_are_400(api: httpx.Client, definition: dict[str, Any]) -> None:
    name = namespace(api)
    error(api.post(f"{NS}/{name}/properties", json={"name": "p", **definition}), 400)
    error(
        api.post(f"{NS}/{name}/objects", json={"name": "o", "properties": {"p": definition}}), 400
    )
    inline = unique("inline")
    error(api.post(NS, json={"namespace": inline, "properties": {"p": definition}}), 400)
    error(api.get(f"{NS}/{inline}"), 404)
    assert api.get(f"{NS}/{name}/properties").json() == {"properties": {}}


def test_bad_bodies(api: httpx.Client) -> None:
    name = namespace(api)
    error(api.post(NS, json={"namespace": unique("v"), "visibility": "shared"}), 400)
    error(api.post(NS, json={"namespace": ""}), 400)
    error(api.post(NS, json={"namespace": unique("x"), "unknown": 1}), 400)
    error(api.post(NS, json=["namespace"]), 400)
    error(api.post(NS), 400)
    for key in ("created_at", "self", "schema"):
        assert "read-only" in error(api.post(NS, json={"namespace": unique("r"), key: "x"}), 403)
    error(api.post(f"{NS}/{name}/objects", json={"description": "no name"}), 400)
    error(api.post(f"{NS}/{name}/resource_types", json={"prefix": "x_"}), 400)
    error(api.post(f"{NS}/{name}/tags", json={"tags": [{"label": "x"}]}), 400)
    error(api.post(f"{NS}/{name}/tags/{'t' * 81}"), 400)


def test_protected_namespace_refuses_every_delete(api: httpx.Client) -> None:
    name = namespace(
        api,
        protected=True,
        resource_type_associations=[{"name": "OS::Nova::Flavor"}],
        properties={"p": PROPERTY},
        objects=[{"name": "o"}],
        tags=[{"name": "t"}],
    )
    for path in (
        "",
        "/objects",
        "/properties",
        "/tags",
        "/objects/o",
        "/properties/p",
        "/tags/t",
        "/resource_types/OS::Nova::Flavor",
    ):
        assert "protected" in error(api.delete(f"{NS}/{name}{path}"), 403)
    shown = api.get(f"{NS}/{name}").json()
    assert shown["objects"] and shown["properties"] and shown["tags"]
    api.put(f"{NS}/{name}", json={"namespace": name, "protected": False})
    for path in ("/objects", "/properties", "/tags"):
        assert api.delete(f"{NS}/{name}{path}").status_code == 204
    shown = api.get(f"{NS}/{name}").json()
    assert not {"objects", "properties", "tags"} & set(shown)
    assert api.delete(f"{NS}/{name}").status_code == 204
    error(api.get(f"{NS}/{name}"), 404)


def test_readers_read_public_namespaces_but_writes_are_admin_only(
    api: httpx.Client, demo: httpx.Client
) -> None:
    name = namespace(api, visibility="public", objects=[{"name": "o"}], tags=[{"name": "t"}])
    assert demo.get(f"{NS}/{name}").status_code == 200
    assert demo.get(f"{NS}/{name}/objects/o").status_code == 200
    assert [t["name"] for t in demo.get(f"{NS}/{name}/tags").json()["tags"]] == ["t"]
    error(demo.post(NS, json={"namespace": unique("mine")}), 403)
    error(demo.put(f"{NS}/{name}", json={"namespace": name}), 403)
    error(demo.delete(f"{NS}/{name}"), 403)
    error(demo.post(f"{NS}/{name}/objects", json={"name": "x"}), 403)
    error(demo.post(f"{NS}/{name}/properties", json={"name": "x", **PROPERTY}), 403)
    error(demo.post(f"{NS}/{name}/tags/x"), 403)
    error(demo.post(f"{NS}/{name}/resource_types", json={"name": "OS::Glance::Image"}), 403)
    assert api.get(f"{NS}/{name}").json()["tags"] == [{"name": "t"}]


def test_another_projects_private_namespace_is_404(
    admin: Any, api: httpx.Client, demo: httpx.Client, alt: httpx.Client
) -> None:
    demo_project = admin.identity.find_project("demo").id
    name = namespace(api, owner=demo_project, objects=[{"name": "o"}], tags=[{"name": "t"}])
    assert demo.get(f"{NS}/{name}").json()["owner"] == demo_project
    assert name in [
        n["namespace"] for n in demo.get(NS, params={"limit": 1000}).json()["namespaces"]
    ]
    assert name not in [
        n["namespace"] for n in alt.get(NS, params={"limit": 1000}).json()["namespaces"]
    ]
    for path in ("", "/objects", "/objects/o", "/tags", "/properties", "/resource_types"):
        error(alt.get(f"{NS}/{name}{path}"), 404)
    # Writes answer 404 too: the namespace does not exist as far as alt_demo knows.
    error(alt.delete(f"{NS}/{name}"), 404)
    error(alt.post(f"{NS}/{name}/objects", json={"name": "x"}), 404)
    error(demo.delete(f"{NS}/{name}"), 403)


def test_list_filters_sorting_and_paging(api: httpx.Client) -> None:
    tag = unique("rt")
    names = sorted(
        namespace(
            api,
            namespace=f"{tag}-{i}",
            visibility="public" if i % 2 else "private",
            resource_type_associations=[{"name": tag}],
        )
        for i in range(5)
    )

    def listed(**params: Any) -> dict[str, Any]:
        response = api.get(NS, params={"resource_types": tag, **params})
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert [
        n["namespace"] for n in listed(sort_key="namespace", sort_dir="asc")["namespaces"]
    ] == names
    assert [n["namespace"] for n in listed()["namespaces"]] == names[::-1]
    public = listed(visibility="public")["namespaces"]
    assert {n["namespace"] for n in public} == {names[1], names[3]}
    first = listed(sort_key="namespace", sort_dir="asc", limit=2)
    assert [n["namespace"] for n in first["namespaces"]] == names[:2]
    assert "marker=" + names[1] in first["next"] and "marker" not in first["first"]
    rest = listed(sort_key="namespace", sort_dir="asc", limit=2, marker=names[1])
    assert [n["namespace"] for n in rest["namespaces"]] == names[2:4]
    assert listed(resource_types="nothing-has-this")["namespaces"] == []
    assert all(n["resource_type_associations"][0]["name"] == tag for n in public)
    error(api.get(NS, params={"sort_dir": "up"}), 400)
    error(api.get(NS, params={"sort_key": "bogus"}), 400)
    error(api.get(NS, params={"visibility": "shared"}), 400)
    error(api.get(NS, params={"limit": "x"}), 400)
    error(api.get(NS, params={"marker": unique("gone")}), 404)


def test_objects(api: httpx.Client) -> None:
    name = namespace(api)
    objects = f"{NS}/{name}/objects"
    body = {"name": "CPU Limits", "description": "d", "properties": {"period": PROPERTY}}
    made = created(api, objects, body)
    assert made["self"] == f"{objects}/CPU Limits" and made["required"] == []
    error(api.post(objects, json={"name": "CPU Limits"}), 409)
    created(api, objects, {"name": "other"})
    assert [o["name"] for o in api.get(objects).json()["objects"]] == ["CPU Limits", "other"]
    error(api.put(f"{objects}/CPU Limits", json={"name": "other"}), 409)
    renamed = api.put(f"{objects}/CPU Limits", json={"name": "CPU", "required": ["period"]})
    assert renamed.status_code == 200, renamed.text
    # A replacement: description and properties went with the old body.
    assert "description" not in renamed.json() and renamed.json()["properties"] == {}
    assert api.get(f"{objects}/CPU").json()["required"] == ["period"]
    error(api.get(f"{objects}/CPU Limits"), 404)
    assert api.delete(f"{objects}/CPU").status_code == 204
    error(api.delete(f"{objects}/CPU"), 404)


def test_properties(api: httpx.Client) -> None:
    name = namespace(
        api, resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "hw_"}]
    )
    props = f"{NS}/{name}/properties"
    made = created(api, props, {"name": "cpu", **PROPERTY})
    assert made == {"name": "cpu", **PROPERTY}
    array = {"type": "array", "title": "Buses", "items": {"type": "string", "enum": ["scsi"]}}
    created(api, props, {"name": "buses", **array})
    error(api.post(props, json={"name": "cpu", **PROPERTY}), 409)
    assert api.get(props).json() == {"properties": {"cpu": PROPERTY, "buses": array}}
    assert (
        api.get(f"{props}/hw_cpu", params={"resource_type": "OS::Glance::Image"}).json()["name"]
        == "cpu"
    )
    error(api.get(f"{props}/cpu", params={"resource_type": "OS::Glance::Image"}), 404)
    error(api.get(f"{props}/hw_cpu", params={"resource_type": "OS::Nova::Flavor"}), 404)
    error(api.put(f"{props}/cpu", json={"name": "buses", **PROPERTY}), 409)
    changed = api.put(f"{props}/cpu", json={"name": "vcpus", "type": "integer", "title": "N"})
    assert changed.json() == {"name": "vcpus", "type": "integer", "title": "N"}
    error(api.get(f"{props}/cpu"), 404)
    assert api.delete(f"{props}/vcpus").status_code == 204
    assert list(api.get(props).json()["properties"]) == ["buses"]


def test_tags(api: httpx.Client) -> None:
    name = namespace(api)
    tags = f"{NS}/{name}/tags"

    def listed(**params: Any) -> list[str]:
        return [t["name"] for t in api.get(tags, params=params).json()["tags"]]

    made = created(api, f"{tags}/alpha")
    assert made["name"] == "alpha" and made["created_at"].endswith("Z")
    error(api.post(f"{tags}/ALPHA"), 409)
    error(api.put(f"{tags}/missing", json={"name": "x"}), 404)
    created(api, f"{tags}/beta")
    error(api.put(f"{tags}/beta", json={"name": "Alpha"}), 409)
    assert api.put(f"{tags}/beta", json={"name": "gamma"}).json()["name"] == "gamma"
    assert api.get(f"{tags}/gamma").status_code == 200
    # Bulk: replaces all, unless X-Openstack-Append says to add.
    assert created(api, tags, {"tags": [{"name": "a"}, {"name": "b"}]}) == {
        "tags": [{"name": "a"}, {"name": "b"}]
    }
    assert sorted(listed()) == ["a", "b"]
    created(api, tags, {"tags": [{"name": "c"}]}, headers={"X-Openstack-Append": "True"})
    error(
        api.post(tags, json={"tags": [{"name": "c"}]}, headers={"X-Openstack-Append": "true"}), 409
    )
    error(api.post(tags, json={"tags": [{"name": "d"}, {"name": "d"}]}), 409)
    assert sorted(listed()) == ["a", "b", "c"]
    created(api, tags, {"tags": []})
    assert listed(sort_key="name", sort_dir="asc") == ["a", "b", "c"]
    assert listed(sort_key="name", sort_dir="asc", limit=1, marker="a") == ["b"]
    error(api.get(tags, params={"sort_key": "colour"}), 400)
    error(api.get(tags, params={"marker": "zzz"}), 404)
    assert api.delete(f"{tags}/a").status_code == 204
    assert api.delete(tags).status_code == 204
    assert listed() == []


def test_resource_types_and_associations(api: httpx.Client, demo: httpx.Client) -> None:
    types = {t["name"] for t in demo.get("/v2/metadefs/resource_types").json()["resource_types"]}
    assert types >= STANDARD_TYPES
    name = namespace(api)
    links = f"{NS}/{name}/resource_types"
    made = created(
        api, links, {"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"}
    )
    assert made["properties_target"] == "image" and made["created_at"].endswith("Z")
    error(api.post(links, json={"name": "OS::Cinder::Volume"}), 409)
    fresh = unique("OS::Test::Thing")
    created(api, links, {"name": fresh})
    listed = api.get(links).json()["resource_type_associations"]
    assert [a["name"] for a in listed] == ["OS::Cinder::Volume", fresh]
    every = api.get("/v2/metadefs/resource_types").json()["resource_types"]
    assert fresh in {t["name"] for t in every}
    assert api.delete(f"{links}/OS::Cinder::Volume").status_code == 204
    error(api.delete(f"{links}/OS::Cinder::Volume"), 404)
    assert [a["name"] for a in api.get(links).json()["resource_type_associations"]] == [fresh]


SCHEMAS = {
    "namespace": "namespace",
    "namespaces": "namespaces",
    "object": "object",
    "objects": "objects",
    "property": "property",
    "properties": "properties",
    "tag": "tag",
    "tags": "tags",
    "resource_type": "resource_type_association",
    "resource_types": "resource_type_associations",
}


def test_schemas_describe_what_the_api_returns(api: httpx.Client, demo: httpx.Client) -> None:
    docs = {}
    for path, title in SCHEMAS.items():
        response = demo.get(f"/v2/schemas/metadefs/{path}")
        assert response.status_code == 200, response.text
        docs[path] = response.json()
        assert docs[path]["name"] == title
    name = namespace(
        api,
        properties={"p": PROPERTY},
        objects=[{"name": "o", "properties": {"p": PROPERTY}}],
        tags=[{"name": "t"}],
        resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "x_"}],
    )
    jsonschema.validate(api.get(f"{NS}/{name}").json(), docs["namespace"])
    jsonschema.validate(api.get(f"{NS}/{name}/objects/o").json(), docs["object"])
    jsonschema.validate(api.get(f"{NS}/{name}/properties/p").json(), docs["property"])
    jsonschema.validate(api.get(f"{NS}/{name}/properties").json(), docs["properties"])
    jsonschema.validate(api.get(f"{NS}/{name}/tags/t").json(), docs["tag"])
    jsonschema.validate(api.get(f"{NS}/{name}/resource_types").json(), docs["resource_types"])
    # What the schema refuses, the API refuses.
    assert docs["namespace"]["properties"]["visibility"]["enum"] == ["public", "private"]
    error(api.post(NS, json={"namespace": unique("s"), "visibility": "community"}), 400)
    assert (
        httpx.get(str(api.base_url).rstrip("/") + "/v2/schemas/metadefs/namespace").status_code
        == 401
    )


def openstack(
    cloud: cloudfixture.Cloud, *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    result = subprocess.run(
        [OPENSTACK, "--os-cloud", "stackbox-admin", "image", "metadef", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (result.returncode == 0) == ok, result.stderr
    return result


def cli_json(cloud: cloudfixture.Cloud, *args: str) -> Any:
    return json.loads(openstack(cloud, *args, "-f", "json").stdout)


def test_cli(cloud: cloudfixture.Cloud, api: httpx.Client) -> None:
    name = unique("cli")
    made = cli_json(cloud, "namespace", "create", "--public", "--display-name", "CLI", name)
    assert made["namespace"] == name and made["visibility"] == "public"
    assert "409" in openstack(cloud, "namespace", "create", name, ok=False).stderr
    assert name in [n["namespace"] for n in cli_json(cloud, "namespace", "list")]
    types = {t["Name"] for t in cli_json(cloud, "resource", "type", "list")}
    assert types >= STANDARD_TYPES
    cli_json(cloud, "resource", "type", "association", "create", name, "OS::Glance::Image")
    links = cli_json(cloud, "resource", "type", "association", "list", name)
    assert [link["Name"] for link in links] == ["OS::Glance::Image"]
    schema = json.dumps({"enum": ["kvm", "qemu"]})
    args = ("--name", "hv", "--type", "string", "--title", "HV", "--schema", schema, name)
    assert cli_json(cloud, "property", "create", *args)["enum"] == ["kvm", "qemu"]
    openstack(cloud, "property", "set", "--title", "Hypervisor", name, "hv")
    assert cli_json(cloud, "property", "show", name, "hv")["title"] == "Hypervisor"
    bad = ("--name", "x", "--type", "text", "--title", "X", "--schema", "{}", name)
    assert "400" in openstack(cloud, "property", "create", *bad, ok=False).stderr
    assert cli_json(cloud, "object", "create", "--namespace", name, "obj")["name"] == "obj"
    openstack(cloud, "object", "update", "--name", "obj2", name, "obj")
    assert [o["name"] for o in cli_json(cloud, "object", "list", name)] == ["obj2"]
    openstack(cloud, "namespace", "set", "--tag", "a", "--tag", "b", name)
    assert sorted(t["name"] for t in api.get(f"{NS}/{name}/tags").json()["tags"]) == ["a", "b"]
    shown = cli_json(cloud, "namespace", "show", name)
    assert shown["resource_type_associations"] == ["OS::Glance::Image"]
    openstack(cloud, "property", "delete", name, "hv")
    openstack(cloud, "object", "delete", name, "obj2")
    openstack(cloud, "resource", "type", "association", "delete", name, "OS::Glance::Image")
    openstack(cloud, "namespace", "delete", name)
    error(api.get(f"{NS}/{name}"), 404)
