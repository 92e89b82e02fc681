"""Rebuild, resize (confirm / revert), snapshots and backups that land in the Image
service and boot again, console output, and the same through the ``openstack`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, cloud, default_image, error

__all__ = ["cloud"]


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("demo", project="demo"))


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token())


def openstack(cloud: cloudfixture.Cloud, *args: str) -> str:
    exe = Path(sys.executable).with_name("openstack")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(cloud.clouds_yaml)}
    done = subprocess.run(
        [str(exe), "--os-cloud", "stackbox", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rebuild_answers_the_server_and_keeps_stopped_servers_stopped(demo: Compute) -> None:
    sid = demo.boot("rebuild-me")["id"]
    image = default_image(demo.cloud, demo.token)
    body = {
        "rebuild": {
            "imageRef": image,
            "name": "rebuilt",
            "adminPass": "s3cret",
            "metadata": {"rebuild": "yes"},
            "description": "again",
        }
    }
    response = demo.action(sid, body)
    assert response.status_code == 202, response.text
    rebuilt = response.json()["server"]
    assert rebuilt["adminPass"] == "s3cret"
    assert rebuilt["image"]["id"] == image
    assert rebuilt["name"] == "rebuilt" and rebuilt["status"] == "REBUILD"
    assert "user_data" in rebuilt
    server = demo.wait(sid, "ACTIVE")
    assert server["metadata"] == {"rebuild": "yes"} and server["description"] == "again"
    error(demo.action(sid, {"rebuild": {"imageRef": "6b2bd5d6-2b5b-4a4c-8f0c-000000000000"}}), 400)
    error(demo.action(sid, {"rebuild": {"name": "no-image"}}), 400)
    assert demo.action(sid, {"os-stop": None}).status_code == 202
    demo.wait(sid, "SHUTOFF")
    assert demo.action(sid, {"rebuild": {"imageRef": image}}).status_code == 202
    demo.wait(sid, "SHUTOFF")


def test_resize_confirm_and_revert(demo: Compute, admin: Compute) -> None:
    sid = demo.boot("resize-me", flavor="42")["id"]
    message = error(demo.action(sid, {"resize": {"flavorRef": "42"}}), 400)
    assert message == "When resizing, instances must change flavor!"
    error(demo.action(sid, {"resize": {"flavorRef": "no-such"}}), 400)
    assert demo.action(sid, {"resize": {"flavorRef": "84"}}).status_code == 202
    server = demo.wait(sid, "VERIFY_RESIZE")
    assert server["flavor"]["original_name"] == "m1.micro"
    migrations = admin.http.get("/os-migrations", params={"instance_uuid": sid}).json()
    assert [m["migration_type"] for m in migrations["migrations"]] == ["resize"]
    response = demo.action(sid, {"confirmResize": None})
    assert response.status_code == 204, response.text
    server = demo.wait(sid, "ACTIVE")
    assert server["flavor"]["original_name"] == "m1.micro"
    error(demo.action(sid, {"confirmResize": None}), 409)
    # A resize of a stopped server ends stopped; a revert gives the old flavor back.
    assert demo.action(sid, {"os-stop": None}).status_code == 202
    demo.wait(sid, "SHUTOFF")
    assert demo.action(sid, {"resize": {"flavorRef": "1"}}).status_code == 202
    demo.wait(sid, "VERIFY_RESIZE")
    assert demo.action(sid, {"revertResize": None}).status_code == 202
    server = demo.wait(sid, "SHUTOFF")
    assert server["flavor"]["original_name"] == "m1.micro"


def test_resize_past_the_quota_is_403(cloud: cloudfixture.Cloud, demo: Compute) -> None:
    sid = demo.boot("too-big")["id"]
    admin_token = cloud.token()
    project = httpx.get(
        f"{cloud.base_url}/identity/v3/projects",
        headers={"X-Auth-Token": admin_token},
        params={"name": "demo"},
    ).json()["projects"][0]["id"]
    admin = Compute(cloud, admin_token)
    quota = {"quota_set": {"cores": 1, "force": True}}
    assert admin.http.put(f"/os-quota-sets/{project}", json=quota).status_code == 200
    try:
        message = error(demo.action(sid, {"resize": {"flavorRef": "3"}}), 403)
        assert "cores" in message
    finally:
        admin.http.delete(f"/os-quota-sets/{project}")
    assert demo.server(sid)["status"] == "ACTIVE"


def test_snapshot_goes_active_and_boots_another_server(demo: Compute) -> None:
    server = demo.boot("snap-source")
    body = {"createImage": {"name": "snap-1", "metadata": {"purpose": "test"}}}
    response = demo.action(server["id"], body)
    assert response.status_code == 202, response.text
    image_id = response.json()["image_id"]
    image = demo.wait_image(image_id, "active")
    assert image["image_type"] == "snapshot"
    assert image["instance_uuid"] == server["id"]
    assert image["base_image_ref"] == server["image"]["id"]
    assert image["purpose"] == "test" and image["visibility"] == "private"
    demo.wait(server["id"], "ACTIVE")
    # Before 2.45 the image is in the Location header instead.
    old = demo.at("2.44").action(server["id"], {"createImage": {"name": "snap-2"}})
    assert old.status_code == 202 and not old.content
    located = old.headers["Location"].rsplit("/", 1)[-1]
    demo.wait_image(located, "active")
    demo.wait(server["id"], "ACTIVE")
    # The snapshot boots.
    again = demo.http.post(
        "/servers",
        json={
            "server": {
                "name": "from-snap",
                "imageRef": image_id,
                "flavorRef": "42",
                "networks": "auto",
            }
        },
    )
    assert again.status_code == 202, again.text
    booted = demo.wait(again.json()["server"]["id"], "ACTIVE")
    assert booted["image"]["id"] == image_id


def test_backups_rotate(demo: Compute) -> None:
    sid = demo.boot("backup-source")["id"]
    made = []
    for name in ("b1", "b2", "b3"):
        body = {"createBackup": {"name": name, "backup_type": "daily", "rotation": 2}}
        response = demo.action(sid, body)
        assert response.status_code == 202, response.text
        made.append(response.json()["image_id"])
        demo.wait_image(made[-1], "active")
        demo.wait(sid, "ACTIVE")
    gone = httpx.get(
        f"{demo.cloud.base_url}/image/v2/images/{made[0]}", headers={"X-Auth-Token": demo.token}
    )
    assert gone.status_code == 404
    assert demo.image(made[2])["backup_type"] == "daily"


def test_console_output(cloud: cloudfixture.Cloud, demo: Compute) -> None:
    sid = demo.boot("console")["id"]
    conn = cloud.sdk("stackbox")
    output = conn.compute.get_server_console_output(sid)["output"]
    assert output
    three = demo.action(sid, {"os-getConsoleOutput": {"length": 3}}).json()["output"]
    assert len(three.split("\n")) <= 3
    error(demo.action(sid, {"os-getConsoleOutput": {"length": "x"}}), 400)


def test_cli_reboot_stop_and_image_create(cloud: cloudfixture.Cloud, demo: Compute) -> None:
    sid = demo.boot("cli-actions")["id"]
    openstack(cloud, "server", "reboot", "--wait", sid)
    demo.wait(sid, "ACTIVE")
    openstack(cloud, "server", "stop", sid)
    demo.wait(sid, "SHUTOFF")
    openstack(cloud, "server", "start", sid)
    demo.wait(sid, "ACTIVE")
    out = openstack(
        cloud,
        "server",
        "image",
        "create",
        "--wait",
        "--name",
        "cli-snap",
        sid,
        "-f",
        "value",
        "-c",
        "status",
    )
    assert out.strip() == "active"
    listed = openstack(cloud, "server", "event", "list", sid, "-f", "value", "-c", "Action")
    assert {"create", "reboot", "stop", "start", "createImage"} <= set(listed.split())


def test_image_create_keeps_a_locked_server_snapshotable(demo: Compute) -> None:
    sid = demo.boot("locked-snap")["id"]
    assert demo.action(sid, {"lock": None}).status_code == 202
    response = demo.action(sid, {"createImage": {"name": "while-locked"}})
    assert response.status_code == 202, response.text
    demo.wait_image(response.json()["image_id"], "active")
    demo.wait(sid, "ACTIVE")
    assert demo.action(sid, {"unlock": None}).status_code == 202
