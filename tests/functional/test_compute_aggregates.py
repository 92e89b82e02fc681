"""Host aggregates and the availability zones they make.

Compute hosts are registered with ``computehosts.register_host`` (a STAND-IN for
the compute agents' heartbeats); everything else goes through the API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackbox.compute import aggregates, runtime
from stackbox.db import session as db_session
from tests import cloudfixture
from tests.functional import computehosts

HOSTS = ("agg-h1", "agg-h2", "agg-h3")


@pytest.fixture(scope="module")
def db(cloud: cloudfixture.Cloud) -> Iterator[db_session.Database]:
    database = computehosts.database(cloud)
    for host in HOSTS:
        computehosts.register_host(database, host)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def http(cloud: cloudfixture.Cloud, db: db_session.Database) -> Iterator[httpx.Client]:
    with computehosts.api(cloud) as client:
        yield client


def create(
    http: httpx.Client, name: str, zone: str | None = None, **headers: str
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if zone is not None:
        body["availability_zone"] = zone
    response = http.post("/os-aggregates", json={"aggregate": body}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["aggregate"])


def act(http: httpx.Client, agg_id: int, action: str, **params: Any) -> httpx.Response:
    return http.post(f"/os-aggregates/{agg_id}/action", json={action: params})


def test_create_show_update_delete(http: httpx.Client) -> None:
    made = create(http, "crud-agg", "crud-zone")
    assert set(made) == {
        "availability_zone",
        "created_at",
        "deleted",
        "deleted_at",
        "id",
        "name",
        "updated_at",
    }
    assert (made["availability_zone"], made["deleted"], made["deleted_at"]) == (
        "crud-zone",
        False,
        None,
    )
    shown = http.get(f"/os-aggregates/{made['id']}").json()["aggregate"]
    assert shown["hosts"] == [] and shown["metadata"] == {"availability_zone": "crud-zone"}
    assert "uuid" not in shown
    v241 = http.get(f"/os-aggregates/{made['id']}", headers=computehosts.at(http, "2.41"))
    assert uuid.UUID(v241.json()["aggregate"]["uuid"])

    updated = http.put(
        f"/os-aggregates/{made['id']}",
        json={"aggregate": {"name": "  crud-agg-2 ", "availability_zone": "zone-2"}},
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()["aggregate"]
    assert (body["name"], body["availability_zone"]) == ("crud-agg-2", "zone-2")
    assert body["updated_at"] is not None
    listed = http.get("/os-aggregates").json()["aggregates"]
    assert [a["name"] for a in listed if a["id"] == made["id"]] == ["crud-agg-2"]

    assert http.delete(f"/os-aggregates/{made['id']}").status_code == 200
    assert http.get(f"/os-aggregates/{made['id']}").status_code == 404


def test_bad_requests_and_conflicts(http: httpx.Client) -> None:
    first = create(http, "dup-agg")
    again = http.post("/os-aggregates", json={"aggregate": {"name": "dup-agg"}})
    assert again.status_code == 409
    assert "dup-agg" in again.json()["conflictingRequest"]["message"]
    other = create(http, "dup-agg-other")
    renamed = http.put(f"/os-aggregates/{other['id']}", json={"aggregate": {"name": "dup-agg"}})
    assert renamed.status_code == 409
    for bad in ({"name": ""}, {"name": "x" * 256}, {"name": " padded"}, {}):
        response = http.post("/os-aggregates", json={"aggregate": bad})
        assert response.status_code == 400, bad
    zone_colon = http.post(
        "/os-aggregates", json={"aggregate": {"name": "z", "availability_zone": "a:b"}}
    )
    assert zone_colon.status_code == 400
    assert http.put(f"/os-aggregates/{first['id']}", json={"aggregate": {}}).status_code == 400
    assert http.get("/os-aggregates/-1").status_code == 404
    assert http.delete("/os-aggregates/-1").status_code == 404
    assert http.get("/os-aggregates/abc").status_code == 400
    no_action = http.post(f"/os-aggregates/{first['id']}/action", json={"reboot": {}})
    assert no_action.status_code == 400
    for agg in (first, other):
        http.delete(f"/os-aggregates/{agg['id']}")


def test_hosts_membership_rules(http: httpx.Client) -> None:
    zoned = create(http, "members-z1", "z1")
    plain = create(http, "members-plain")
    other_zone = create(http, "members-z2", "z2")
    added = act(http, zoned["id"], "add_host", host="agg-h1")
    assert added.status_code == 200, added.text
    assert added.json()["aggregate"]["hosts"] == ["agg-h1"]
    assert act(http, zoned["id"], "add_host", host="agg-h1").status_code == 409
    assert act(http, zoned["id"], "add_host", host="no-such-host").status_code == 404
    # A host in z1 cannot join an aggregate of z2; an aggregate without a zone is fine.
    clash = act(http, other_zone["id"], "add_host", host="agg-h1")
    assert clash.status_code == 409
    assert "z1" in clash.json()["conflictingRequest"]["message"]
    assert act(http, plain["id"], "add_host", host="agg-h1").status_code == 200
    # Giving the plain aggregate another zone would move agg-h1 to two zones.
    to_z2 = act(http, plain["id"], "set_metadata", metadata={"availability_zone": "z2"})
    assert to_z2.status_code == 400
    same = act(http, plain["id"], "set_metadata", metadata={"availability_zone": "z1"})
    assert same.status_code == 200
    assert (
        http.put(
            f"/os-aggregates/{plain['id']}", json={"aggregate": {"availability_zone": "z2"}}
        ).status_code
        == 400
    )
    # Non-empty aggregates cannot be deleted.
    assert http.delete(f"/os-aggregates/{zoned['id']}").status_code == 400

    assert act(http, zoned["id"], "remove_host", host="agg-h2").status_code == 404
    assert act(http, zoned["id"], "remove_host", host="agg-h1").status_code == 200
    assert act(http, plain["id"], "remove_host", host="agg-h1").status_code == 200
    for agg in (zoned, plain, other_zone):
        assert http.delete(f"/os-aggregates/{agg['id']}").status_code == 200


def test_set_metadata_sets_and_deletes_keys(http: httpx.Client) -> None:
    agg = create(http, "meta-agg")
    response = act(http, agg["id"], "set_metadata", metadata={"ssd": "true", "gpu": "1"})
    assert response.json()["aggregate"]["metadata"] == {"ssd": "true", "gpu": "1"}
    response = act(http, agg["id"], "set_metadata", metadata={"ssd": None, "absent": None})
    assert response.json()["aggregate"]["metadata"] == {"gpu": "1"}
    empty_zone = act(http, agg["id"], "set_metadata", metadata={"availability_zone": None})
    assert empty_zone.status_code == 400
    bad_key = act(http, agg["id"], "set_metadata", metadata={"bad/key": "x"})
    assert bad_key.status_code == 400
    http.delete(f"/os-aggregates/{agg['id']}")


def test_host_zone_and_host_aggregates_for_the_scheduler(
    http: httpx.Client, db: db_session.Database
) -> None:
    agg = create(http, "sched-agg", "sched-zone")
    act(http, agg["id"], "add_host", host="agg-h3")
    act(http, agg["id"], "set_metadata", metadata={"ssd": "true"})

    def read(session: Any) -> tuple[str, str, Any]:
        return (
            aggregates.host_zone(session, "agg-h3"),
            aggregates.host_zone(session, "agg-h2"),
            aggregates.host_aggregates(session).get("agg-h3"),
        )

    runtime_settings = runtime.get().settings
    assert db.run(read, write=False) == (
        "sched-zone",
        runtime_settings.default_availability_zone,
        [("sched-agg", {"availability_zone": "sched-zone", "ssd": "true"})],
    )
    act(http, agg["id"], "remove_host", host="agg-h3")
    http.delete(f"/os-aggregates/{agg['id']}")


def test_non_admin_is_forbidden(cloud: cloudfixture.Cloud, db: db_session.Database) -> None:
    with computehosts.api(cloud, username="demo", project="demo") as demo:
        assert demo.get("/os-aggregates").status_code == 403
        assert demo.post("/os-aggregates", json={"aggregate": {"name": "x"}}).status_code == 403


def test_sdk_and_cli(cloud: cloudfixture.Cloud, http: httpx.Client) -> None:
    admin = cloud.sdk()
    made = admin.compute.create_aggregate(name="sdk-agg", availability_zone="sdk-zone")
    admin.compute.add_host_to_aggregate(made, "agg-h2")
    shown = admin.compute.get_aggregate(made.id)
    assert shown.hosts == ["agg-h2"] and shown.availability_zone == "sdk-zone"
    admin.compute.remove_host_from_aggregate(made, "agg-h2")
    admin.compute.delete_aggregate(made)

    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    openstack = str(Path(sys.executable).parent / "openstack")
    result = subprocess.run(
        [
            openstack,
            "--os-cloud",
            "stackbox-admin",
            "aggregate",
            "create",
            "--zone",
            "az1",
            "agg1",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert (created["name"], created["availability_zone"]) == ("agg1", "az1")
    listed = http.get("/os-aggregates").json()["aggregates"]
    agg1 = [a for a in listed if a["name"] == "agg1"]
    assert agg1 and agg1[0]["availability_zone"] == "az1"
    http.delete(f"/os-aggregates/{agg1[0]['id']}")


def test_image_cache_request(cloud: cloudfixture.Cloud, http: httpx.Client) -> None:
    agg = create(http, "cache-agg")
    image = cloud.sdk().image.create_image(
        name="cache-me", disk_format="raw", container_format="bare"
    )
    v281 = computehosts.at(http, "2.81")
    path = f"/os-aggregates/{agg['id']}/images"
    accepted = http.post(path, json={"cache": [{"id": image.id}]}, headers=v281)
    assert accepted.status_code == 202, accepted.text
    assert http.post(path, json={"cache": [{"id": image.id}]}).status_code == 404
    missing = http.post(path, json={"cache": [{"id": str(uuid.uuid4())}]}, headers=v281)
    assert missing.status_code == 400
    dupes = http.post(path, json={"cache": [{"id": image.id}] * 2}, headers=v281)
    assert dupes.status_code == 400
    assert http.post(path, json={"cache": []}, headers=v281).status_code == 400
    gone = http.post(
        "/os-aggregates/999999/images", json={"cache": [{"id": image.id}]}, headers=v281
    )
    assert gone.status_code == 404
    http.delete(f"/os-aggregates/{agg['id']}")
