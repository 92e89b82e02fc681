"""GET /v2/images: filters, visibility, sorting, pagination, schemas, and the CLI's image list."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests import cloudfixture

OPENSTACK = str(Path(sys.executable).parent / "openstack")


class Images:
    """One project's view of the image API over plain HTTP."""

    def __init__(self, cloud: cloudfixture.Cloud, token: str) -> None:
        self.http = httpx.Client(
            base_url=cloud.base_url + "/image", headers={"X-Auth-Token": token}, timeout=30
        )

    def create(self, **attrs: Any) -> dict[str, Any]:
        attrs.setdefault("disk_format", "raw")
        attrs.setdefault("container_format", "bare")
        response = self.http.post("/v2/images", json=attrs)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def list(self, *params: tuple[str, Any], **named: Any) -> httpx.Response:
        return self.http.get("/v2/images", params=[*params, *named.items()])

    def names(self, *params: tuple[str, Any], **named: Any) -> list[str]:
        response = self.list(*params, **named)
        assert response.status_code == 200, response.text
        return [image["name"] for image in response.json()["images"]]


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Images:
    return Images(cloud, cloud.token("demo", project="demo"))


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Images:
    return Images(cloud, cloud.token("alt_demo", project="alt_demo"))


@pytest.fixture(scope="module")
def admin_api(cloud: cloudfixture.Cloud) -> Images:
    return Images(cloud, cloud.token())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_filters_on_core_attributes_custom_properties_and_tags(demo: Images) -> None:
    run = unique("flt")
    demo.create(name=f"{run}-a", tags=["x", "y"], os_distro="debian", min_ram=512)
    demo.create(name=f"{run}-b", tags=["x"], os_distro="arch", container_format="ovf")
    demo.create(name=f"{run}-c", visibility="private", protected=True, disk_format="qcow2")

    assert demo.names(name=f"{run}-a") == [f"{run}-a"]
    assert sorted(demo.names(name=f"in:{run}-a,{run}-c")) == [f"{run}-a", f"{run}-c"]
    assert demo.names(name=f"eq:{run}-b") == [f"{run}-b"]
    mine = {"sort": "name:asc", "name": f"in:{run}-a,{run}-b,{run}-c"}
    assert demo.names(**mine, os_distro="debian") == [f"{run}-a"]
    assert demo.names(**mine, os_distro="none") == []
    assert demo.names(("tag", "x"), **mine) == [f"{run}-a", f"{run}-b"]
    # Every tag given must be on the image.
    assert demo.names(("tag", "x"), ("tag", "y"), **mine) == [f"{run}-a"]
    assert demo.names(**mine, container_format="ovf") == [f"{run}-b"]
    assert demo.names(**mine, disk_format="in:qcow2,vhd") == [f"{run}-c"]
    assert demo.names(**mine, visibility="private") == [f"{run}-c"]
    assert demo.names(**mine, protected="true") == [f"{run}-c"]
    assert demo.names(**mine, protected="false") == [f"{run}-a", f"{run}-b"]
    assert demo.names(**mine, min_ram=512) == [f"{run}-a"]
    assert demo.names(**mine, status="queued") == [f"{run}-a", f"{run}-b", f"{run}-c"]
    assert demo.names(**mine, status="active") == []
    # A quoted item may hold the list's separator.
    assert demo.names(name=f'in:"{run}-a",nothing') == [f"{run}-a"]


def test_owner_and_id_filters(demo: Images, alt: Images, admin_api: Images) -> None:
    first = admin_api.create(name=unique("own"), visibility="public")
    second = admin_api.create(name=unique("own"), visibility="public")
    ids = f"in:{first['id']},{second['id']}"
    assert len(alt.list(id=ids).json()["images"]) == 2
    assert alt.names(id=first["id"]) == [first["name"]]
    assert alt.names(id=ids, owner=first["owner"], sort="name") != []
    assert alt.names(id=ids, owner="someone-else") == []
    mine = demo.create(name=unique("own"), visibility="private")
    assert admin_api.names(owner=mine["owner"], name=mine["name"]) == [mine["name"]]
    assert alt.names(owner=mine["owner"], name=mine["name"]) == []


def test_size_filters_compare_numbers(demo: Images) -> None:
    image = demo.create(name=unique("sized"))
    # Without data the size is null: no range includes it.
    assert demo.names(name=image["name"], size_min=0) == []
    assert demo.names(name=image["name"]) == [image["name"]]
    bad = demo.list(size_min="big")
    assert bad.status_code == 400
    assert "non-numeric" in bad.json()["message"]


def test_time_filters_compare_to_the_second_shown(demo: Images) -> None:
    image = demo.create(name=unique("timed"))
    shown = image["created_at"]
    found = {
        op: demo.names(name=image["name"], created_at=f"{op}:{shown}")
        for op in ("eq", "neq", "gt", "gte", "lt", "lte")
    }
    assert found == {
        "eq": [image["name"]],
        "neq": [],
        "gt": [],
        "gte": [image["name"]],
        "lt": [],
        "lte": [image["name"]],
    }
    assert demo.names(name=image["name"], updated_at=f"gte:{shown}") == [image["name"]]
    assert demo.names(name=image["name"], created_at="lt:2000-01-01T00:00:00Z") == []
    assert demo.names(name=image["name"], created_at="gt:2000-01-01T00:00:00+02:00") != []


def test_hidden_images_only_when_asked(demo: Images) -> None:
    image = demo.create(name=unique("hidden"), os_hidden=True)
    assert demo.names(name=image["name"]) == []
    assert demo.names(name=image["name"], os_hidden="true") == [image["name"]]
    assert demo.names(name=image["name"], os_hidden="True") == [image["name"]]
    assert demo.list(os_hidden="maybe").status_code == 400


def test_default_view_and_visibility_filter(demo: Images, alt: Images, admin_api: Images) -> None:
    run = unique("vis")
    names = {v: f"{run}-{v}" for v in ("public", "private", "shared", "community")}
    for visibility, name in names.items():
        (admin_api if visibility == "public" else demo).create(name=name, visibility=visibility)
    mine = {"name": "in:" + ",".join(names.values()), "sort": "name:asc"}

    # The owner sees its own images of every visibility, community ones included.
    assert sorted(demo.names(**mine)) == sorted(
        [names["private"], names["shared"], names["community"], names["public"]]
    )
    # Another project: public only by default; community only when asked for.
    assert alt.names(**mine) == [names["public"]]
    assert alt.names(**mine, visibility="community") == [names["community"]]
    assert sorted(alt.names(**mine, visibility="all")) == sorted(
        [names["public"], names["community"]]
    )
    assert alt.names(**mine, visibility="private") == []
    # Admins see every image, other projects' community images only when asked.
    assert sorted(admin_api.names(**mine)) == sorted(
        [names["public"], names["private"], names["shared"]]
    )
    assert len(admin_api.names(**mine, visibility="all")) == 4
    assert demo.list(visibility="everything").status_code == 400


def walk(api: Images, **params: Any) -> list[dict[str, Any]]:
    """Follow ``next`` links from the first page to the end."""
    response = api.list(**params)
    assert response.status_code == 200, response.text
    page = response.json()
    seen = list(page["images"])
    while "next" in page:
        link = urllib.parse.urlsplit(page["next"])
        assert link.path == "/v2/images"
        response = api.http.get(f"/v2/images?{link.query}")
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(page["images"])
    return seen


def test_pagination_visits_every_image_once_in_order(demo: Images) -> None:
    run = unique("page")
    created = [demo.create(name=f"{run}-{i % 3}") for i in range(7)]
    ids = ",".join(image["id"] for image in created)

    by_name = walk(demo, id=f"in:{ids}", limit=2, sort="name:asc,id:desc")
    expected = sorted(created, key=lambda i: i["id"], reverse=True)
    expected.sort(key=lambda i: i["name"])
    assert [i["id"] for i in by_name] == [i["id"] for i in expected]

    # The default order is newest first.
    default = walk(demo, id=f"in:{ids}", limit=3)
    assert [i["id"] for i in default] == [i["id"] for i in reversed(created)]

    first = demo.list(id=f"in:{ids}", limit=2).json()
    assert first["schema"] == "/v2/schemas/images"
    assert first["first"].startswith("/v2/images?")
    assert "marker=" in first["next"]
    assert demo.list(id=f"in:{ids}", limit=0).json()["images"] == []


def test_default_and_largest_page(cloud: cloudfixture.Cloud, demo: Images) -> None:
    run = unique("many")
    created = {demo.create(name=run)["id"] for _ in range(27)}
    page = demo.list(name=run).json()
    assert len(page["images"]) == 25 and "next" in page
    assert len(demo.list(name=run, limit=5000).json()["images"]) == 27
    # openstacksdk follows the next links.
    sdk = cloud.sdk("stackbox")
    assert {image.id for image in sdk.image.images(name=run, limit=4)} == created


def test_sort_keys_and_directions(demo: Images) -> None:
    run = unique("sort")
    for name in ("b", "a", "c"):
        demo.create(name=f"{run}-{name}", disk_format="qcow2" if name == "a" else "raw")
    mine = {"name": f"in:{run}-a,{run}-b,{run}-c"}
    asc = [f"{run}-a", f"{run}-b", f"{run}-c"]
    assert demo.names(**mine, sort="name:asc") == asc
    assert demo.names(**mine, sort="name:desc") == asc[::-1]
    assert demo.names(**mine, sort_key="name", sort_dir="asc") == asc
    assert demo.names(("sort_key", "disk_format"), ("sort_key", "name"), **mine) == [
        f"{run}-c",
        f"{run}-b",
        f"{run}-a",
    ]
    assert demo.names(
        ("sort_key", "disk_format"),
        ("sort_key", "name"),
        ("sort_dir", "desc"),
        ("sort_dir", "asc"),
        **mine,
    ) == [f"{run}-b", f"{run}-c", f"{run}-a"]


@pytest.mark.parametrize(
    "params",
    [
        {"sort_key": "owner"},
        {"sort_dir": "up"},
        {"sort": "name:up"},
        {"sort": "name", "sort_key": "name"},
        [("sort_key", "name"), ("sort_dir", "asc"), ("sort_dir", "desc"), ("sort_dir", "asc")],
        {"limit": "-1"},
        {"limit": "ten"},
        {"marker": str(uuid.uuid4())},
        {"marker": "not-an-id"},
        {"member_status": "maybe"},
        {"protected": "yes"},
        {"size_max": "1e3"},
        {"created_at": "gt:yesterday"},
        {"created_at": "around:2020-01-01T00:00:00Z"},
        {"name": "like:x"},
        {"name": 'in:"unclosed'},
        {"changes-since": "2020-01-01T00:00:00Z"},
    ],
)
def test_bad_parameters_are_400(demo: Images, params: Any) -> None:
    pairs = params.items() if isinstance(params, dict) else params
    response = demo.list(*pairs)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "400 Bad Request" and body["message"]


def test_marker_of_an_invisible_image_is_400(demo: Images, alt: Images) -> None:
    private = demo.create(name=unique("hidden-marker"), visibility="private")
    assert demo.list(marker=private["id"]).status_code == 200
    assert alt.list(marker=private["id"]).status_code == 400


def test_listing_loads_a_page_in_a_fixed_number_of_queries(demo: Images) -> None:
    run = unique("batch")
    for i in range(12):
        demo.create(name=run, tags=[f"t{i}", "common"], owner_note=str(i))
    statements = 0
    lock = threading.Lock()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Only the Image service's statements: the cloud's background work (heartbeats,
        # the outbox relay) shares this process and would make the count vary.
        nonlocal statements
        if "image_" in statement:
            with lock:
                statements += 1

    def queries_for(limit: int) -> int:
        nonlocal statements
        demo.list(name=run, limit=limit)  # warm any token cache
        statements = 0
        event.listen(Engine, "before_cursor_execute", count)
        try:
            page = demo.list(name=run, limit=limit).json()
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        assert len(page["images"]) == limit
        assert all("common" in image["tags"] for image in page["images"])
        return statements

    few, many = queries_for(2), queries_for(12)
    assert 0 < few == many


def test_schemas_describe_what_is_served(demo: Images) -> None:
    image = demo.create(name=unique("schema"), hw_disk_bus="virtio")
    schema = demo.http.get("/v2/schemas/image").json()
    assert schema["name"] == "image"
    properties = schema["properties"]
    # Every attribute of a served image is described, except its custom properties.
    assert set(image) - set(properties) == {"hw_disk_bus"}
    assert schema["additionalProperties"] == {"type": "string"}
    assert properties["status"]["readOnly"] is True
    assert "readOnly" not in properties["name"]
    assert properties["disk_format"]["enum"][1:] == [
        "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
    ]  # fmt: skip
    collection = demo.http.get("/v2/schemas/images").json()
    assert collection["name"] == "images"
    assert collection["properties"]["images"]["items"] == schema
    member = demo.http.get("/v2/schemas/member").json()
    assert member["name"] == "member"
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    members = demo.http.get("/v2/schemas/members").json()
    assert members["name"] == "members"
    assert members["properties"]["members"]["items"] == member
    anonymous = httpx.get(str(demo.http.base_url).rstrip("/") + "/v2/schemas/image")
    assert anonymous.status_code == 401


@pytest.fixture(scope="module")
def cli_env(cloud: cloudfixture.Cloud) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["OS_CLIENT_CONFIG_FILE"] = str(cloud.clouds_yaml)
    yield env


def openstack(env: dict[str, str], cloud_name: str, *args: str) -> str:
    result = subprocess.run(
        [OPENSTACK, "--os-cloud", cloud_name, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cli_image_list_by_property_long_and_set_tag(demo: Images, cli_env: dict[str, str]) -> None:
    import json

    wanted = demo.create(name=unique("cli"), os_distro="cirros-cli")
    demo.create(name=unique("cli"), os_distro="other")
    openstack(cli_env, "stackbox", "image", "set", "--tag", "blue", "--tag", "x86", wanted["id"])
    shown = demo.http.get(f"/v2/images/{wanted['id']}").json()
    assert sorted(shown["tags"]) == ["blue", "x86"]

    rows = json.loads(
        openstack(
            cli_env, "stackbox", "image", "list", "--property", "os_distro=cirros-cli",
            "--long", "-f", "json",
        )
    )  # fmt: skip
    assert [row["ID"] for row in rows] == [wanted["id"]]
    assert sorted(rows[0]["Tags"]) == ["blue", "x86"]
    assert rows[0]["Disk Format"] == "raw"
    tagged = json.loads(
        openstack(cli_env, "stackbox", "image", "list", "--tag", "blue", "-f", "json")
    )
    assert [row["ID"] for row in tagged] == [wanted["id"]]
