"""PATCH /v2/images/{id}: both JSON-patch media types and Glance's rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import cloudfixture

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    token = cloud.token("demo", project="demo")
    with httpx.Client(
        base_url=cloud.base_url + "/image", headers={"X-Auth-Token": token}, timeout=30
    ) as client:
        yield client


def new_image(http: httpx.Client, **attrs: Any) -> dict[str, Any]:
    response = http.post(
        "/v2/images", json={"disk_format": "raw", "container_format": "bare", **attrs}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def patch(
    http: httpx.Client, image_id: str, ops: list[dict[str, Any]], media: str = V21
) -> httpx.Response:
    return http.patch(f"/v2/images/{image_id}", json=ops, headers={"Content-Type": media})


def test_both_patch_forms(demo: httpx.Client) -> None:
    image = new_image(demo, name="before")
    done = patch(
        demo,
        image["id"],
        [
            {"op": "replace", "path": "/name", "value": "after"},
            {"op": "add", "path": "/color", "value": "blue"},
        ],
    )
    assert done.status_code == 200, done.text
    assert done.json()["name"] == "after" and done.json()["color"] == "blue"
    legacy = patch(
        demo,
        image["id"],
        [{"replace": "/name", "value": "legacy"}, {"remove": "/color"}],
        media=V20,
    )
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["name"] == "legacy" and "color" not in legacy.json()


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/size", "value": 3}], 403),
        ([{"op": "add", "path": "/os_glance_import_task", "value": "x"}], 403),
        ([{"op": "remove", "path": "/nope"}], 409),
        ([{"op": "replace", "path": "/nope", "value": "x"}], 409),
        ([{"op": "replace", "path": "/min_ram", "value": "lots"}], 400),
        ([{"op": "add", "path": "/custom", "value": 5}], 400),
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
    ],
)
def test_refused_patches_change_nothing(
    demo: httpx.Client, ops: list[dict[str, Any]], status: int
) -> None:
    image = new_image(demo, name="steady", flavor_hint="small")
    response = patch(demo, image["id"], ops)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["code"].startswith(str(status)) and error["message"]
    after = demo.get(f"/v2/images/{image['id']}").json()
    assert after == image


def test_wrong_media_type_is_415(demo: httpx.Client) -> None:
    image = new_image(demo)
    response = demo.patch(
        f"/v2/images/{image['id']}", json=[], headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 415
    assert V21 in response.headers["Accept-Patch"]
