"""Image members: sharing an image with another project, accepting, rejecting, revoking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture

OPENSTACK = str(Path(sys.executable).parent / "openstack")
MEMBER_KEYS = {"created_at", "image_id", "member_id", "schema", "status", "updated_at"}


class Project:
    """One project's member token and its image API over plain HTTP."""

    def __init__(self, cloud: cloudfixture.Cloud, user: str, project: str) -> None:
        token = cloud.token(user, project=project)
        self.http = httpx.Client(
            base_url=cloud.base_url + "/image", headers={"X-Auth-Token": token}, timeout=30
        )
        self.id = cloud.sdk().identity.find_project(project, ignore_missing=False).id

    def create(self, **attrs: Any) -> dict[str, Any]:
        attrs.setdefault("disk_format", "raw")
        attrs.setdefault("container_format", "bare")
        attrs.setdefault("name", f"shared-{uuid.uuid4().hex[:8]}")
        response = self.http.post("/v2/images", json=attrs)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def listed(self, **params: Any) -> list[str]:
        response = self.http.get("/v2/images", params=params)
        assert response.status_code == 200, response.text
        return [image["id"] for image in response.json()["images"]]

    def add_member(self, image_id: str, member: str) -> httpx.Response:
        return self.http.post(f"/v2/images/{image_id}/members", json={"member": member})

    def set_status(self, image_id: str, member: str, status: str) -> httpx.Response:
        return self.http.put(f"/v2/images/{image_id}/members/{member}", json={"status": status})


@pytest.fixture(scope="module")
def owner(cloud: cloudfixture.Cloud) -> Project:
    return Project(cloud, "demo", "demo")


@pytest.fixture(scope="module")
def consumer(cloud: cloudfixture.Cloud) -> Project:
    return Project(cloud, "alt_demo", "alt_demo")


@pytest.fixture(scope="module")
def admin_project(cloud: cloudfixture.Cloud) -> Project:
    return Project(cloud, "admin", "admin")


def patch(project: Project, image_id: str, *operations: dict[str, Any]) -> httpx.Response:
    return project.http.patch(
        f"/v2/images/{image_id}",
        content=json.dumps(list(operations)),
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )


def test_private_image_reaches_another_project_only_once_shared_and_accepted(
    owner: Project, consumer: Project
) -> None:
    image = owner.create(visibility="private")
    data = os.urandom(3000)
    uploaded = owner.http.put(
        f"/v2/images/{image['id']}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 204, uploaded.text
    assert owner.http.get(f"/v2/images/{image['id']}/file").content == data

    def consumer_sees() -> tuple[int, int, bool]:
        shown = consumer.http.get(f"/v2/images/{image['id']}")
        fetched = consumer.http.get(f"/v2/images/{image['id']}/file")
        return shown.status_code, fetched.status_code, image["id"] in consumer.listed()

    assert consumer_sees() == (404, 404, False)
    # A private image has no members: the owner must make it shared first.
    assert owner.add_member(image["id"], consumer.id).status_code == 403
    shared = patch(owner, image["id"], {"op": "replace", "path": "/visibility", "value": "shared"})
    assert shared.status_code == 200, shared.text
    assert consumer_sees() == (404, 404, False)

    added = owner.add_member(image["id"], consumer.id)
    assert added.status_code == 200, added.text
    assert added.json()["status"] == "pending"
    # Pending: reachable by id, but not in the default list.
    assert consumer_sees() == (200, 200, False)
    assert consumer.listed(member_status="pending", visibility="shared") == [image["id"]]

    assert consumer.set_status(image["id"], consumer.id, "accepted").status_code == 200
    assert consumer_sees() == (200, 200, True)
    assert consumer.http.get(f"/v2/images/{image['id']}/file").content == data
    assert image["id"] in consumer.listed(visibility="shared")
    assert image["id"] not in consumer.listed(member_status="pending", visibility="shared")

    # Revoked: gone again.
    removed = owner.http.delete(f"/v2/images/{image['id']}/members/{consumer.id}")
    assert removed.status_code == 204
    assert consumer_sees() == (404, 404, False)


def test_member_body_and_list_shape(owner: Project, consumer: Project) -> None:
    image = owner.create()
    assert image["visibility"] == "shared"
    member = owner.add_member(image["id"], consumer.id).json()
    assert set(member) == MEMBER_KEYS
    assert member["image_id"] == image["id"]
    assert member["member_id"] == consumer.id
    assert member["schema"] == "/v2/schemas/member"
    assert member["created_at"].endswith("Z")

    listing = owner.http.get(f"/v2/images/{image['id']}/members").json()
    assert listing == {"members": [member], "schema": "/v2/schemas/members"}
    shown = consumer.http.get(f"/v2/images/{image['id']}/members/{consumer.id}")
    assert shown.json() == member


def test_only_the_member_accepts_or_rejects(
    owner: Project, consumer: Project, admin_project: Project
) -> None:
    image = owner.create()
    owner.add_member(image["id"], consumer.id)
    # The owner may not accept for the member.
    assert owner.set_status(image["id"], consumer.id, "accepted").status_code == 403
    bad = consumer.set_status(image["id"], consumer.id, "maybe")
    assert bad.status_code == 400
    missing = consumer.http.put(f"/v2/images/{image['id']}/members/{consumer.id}", json={})
    assert missing.status_code == 400

    rejected = consumer.set_status(image["id"], consumer.id, "rejected")
    assert rejected.json()["status"] == "rejected"
    assert image["id"] not in consumer.listed()
    assert consumer.listed(member_status="rejected", visibility="shared") == [image["id"]]
    assert image["id"] in consumer.listed(member_status="all")
    # Changing one's mind is allowed.
    assert consumer.set_status(image["id"], consumer.id, "accepted").json()["status"] == "accepted"
    assert image["id"] in consumer.listed()
    # The admin may set any member's status.
    assert admin_project.set_status(image["id"], consumer.id, "pending").status_code == 200
    assert image["id"] not in consumer.listed()


def test_members_see_only_their_own_membership(
    owner: Project, consumer: Project, admin_project: Project
) -> None:
    image = owner.create()
    for project in (consumer, admin_project):
        assert owner.add_member(image["id"], project.id).status_code == 200
    everyone = owner.http.get(f"/v2/images/{image['id']}/members").json()["members"]
    assert sorted(m["member_id"] for m in everyone) == sorted([consumer.id, admin_project.id])
    own = consumer.http.get(f"/v2/images/{image['id']}/members").json()["members"]
    assert [m["member_id"] for m in own] == [consumer.id]
    other = consumer.http.get(f"/v2/images/{image['id']}/members/{admin_project.id}")
    assert other.status_code == 404
    # Neither may a member change another member's status or remove it.
    assert consumer.set_status(image["id"], admin_project.id, "accepted").status_code == 404
    own_removal = consumer.http.delete(f"/v2/images/{image['id']}/members/{consumer.id}")
    assert own_removal.status_code == 403


def test_member_errors(owner: Project, consumer: Project) -> None:
    image = owner.create()
    assert owner.add_member(image["id"], consumer.id).status_code == 200
    duplicate = owner.add_member(image["id"], consumer.id)
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "409 Conflict"
    assert owner.http.post(f"/v2/images/{image['id']}/members", json={}).status_code == 400
    assert owner.add_member(image["id"], "").status_code == 400
    assert owner.http.post(f"/v2/images/{image['id']}/members", json=["x"]).status_code == 400

    unknown = str(uuid.uuid4())
    assert owner.add_member(unknown, consumer.id).status_code == 404
    assert owner.http.get(f"/v2/images/{unknown}/members").status_code == 404
    not_a_member = owner.http.get(f"/v2/images/{image['id']}/members/nobody")
    assert not_a_member.status_code == 404
    assert owner.http.delete(f"/v2/images/{image['id']}/members/nobody").status_code == 404

    # Another project's image it was never shared with: 404, not 403.
    stranger = owner.create()
    assert consumer.http.get(f"/v2/images/{stranger['id']}/members").status_code == 404
    assert consumer.add_member(stranger["id"], consumer.id).status_code == 404

    # Only shared images have members: 403 to change them, 404 to look one up.
    private = owner.create(visibility="private")
    assert owner.add_member(private["id"], consumer.id).status_code == 403
    assert owner.http.get(f"/v2/images/{private['id']}/members").status_code == 403
    assert owner.http.get(f"/v2/images/{private['id']}/members/x").status_code == 404


def test_a_member_cannot_share_further(
    owner: Project, consumer: Project, admin_project: Project
) -> None:
    image = owner.create()
    owner.add_member(image["id"], consumer.id)
    consumer.set_status(image["id"], consumer.id, "accepted")
    assert consumer.add_member(image["id"], admin_project.id).status_code == 403
    members = owner.http.get(f"/v2/images/{image['id']}/members").json()["members"]
    assert [m["member_id"] for m in members] == [consumer.id]


def test_only_an_admin_makes_an_image_public(
    owner: Project, consumer: Project, admin_project: Project
) -> None:
    denied = owner.http.post(
        "/v2/images", json={"name": "pub", "visibility": "public", "disk_format": "raw"}
    )
    assert denied.status_code == 403
    image = owner.create(visibility="private")
    refused = patch(owner, image["id"], {"op": "replace", "path": "/visibility", "value": "public"})
    assert refused.status_code == 403
    assert image["id"] not in consumer.listed()

    made = patch(
        admin_project, image["id"], {"op": "replace", "path": "/visibility", "value": "public"}
    )
    assert made.status_code == 200, made.text
    assert image["id"] in consumer.listed()
    assert consumer.http.get(f"/v2/images/{image['id']}").status_code == 200


def openstack(cloud: cloudfixture.Cloud, cloud_name: str, *args: str) -> Any:
    env = dict(os.environ)
    env["OS_CLIENT_CONFIG_FILE"] = str(cloud.clouds_yaml)
    result = subprocess.run(
        [OPENSTACK, "--os-cloud", cloud_name, *args, "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_sharing_with_the_cli(cloud: cloudfixture.Cloud, owner: Project, consumer: Project) -> None:
    image = owner.create()
    added = openstack(cloud, "stackbox", "image", "add", "project", image["id"], consumer.id)
    assert added["status"] == "pending"
    members = openstack(cloud, "stackbox", "image", "member", "list", image["id"])
    assert [(m["Member ID"], m["Status"]) for m in members] == [(consumer.id, "pending")]

    listed = [row["ID"] for row in openstack(cloud, "stackbox-alt", "image", "list")]
    assert image["id"] not in listed
    subprocess_env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    accepted = subprocess.run(
        [OPENSTACK, "--os-cloud", "stackbox-alt", "image", "set", "--accept", image["id"]],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )
    assert accepted.returncode == 0, accepted.stderr
    listed = [row["ID"] for row in openstack(cloud, "stackbox-alt", "image", "list")]
    assert image["id"] in listed
    members = openstack(cloud, "stackbox", "image", "member", "list", image["id"])
    assert [m["Status"] for m in members] == ["accepted"]
