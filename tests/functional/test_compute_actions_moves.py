"""Moving servers between two fake compute hosts: cold migration with confirm and
revert, live migration, and evacuation from a host forced down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, error


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("moves")),
        compute={"create_defaults": True},
        network={"create_defaults": True},
    ) as running:
        running.start_host("actions-second")
        yield running


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token())


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("demo", project="demo"))


def host(admin: Compute, server_id: str) -> str:
    return str(admin.server(server_id)["OS-EXT-SRV-ATTR:host"])


def test_cold_migration_confirm_and_revert(admin: Compute, demo: Compute) -> None:
    sid = demo.boot("cold")["id"]
    source = host(admin, sid)
    error(demo.action(sid, {"migrate": None}), 403)
    assert admin.action(sid, {"migrate": None}).status_code == 202
    moved = admin.wait(sid, "VERIFY_RESIZE")
    assert moved["OS-EXT-SRV-ATTR:host"] != source
    migration = admin.http.get("/os-migrations", params={"instance_uuid": sid}).json()
    assert migration["migrations"][0]["migration_type"] == "migration"
    assert migration["migrations"][0]["source_compute"] == source
    assert demo.action(sid, {"revertResize": None}).status_code == 202
    back = admin.wait(sid, "ACTIVE")
    assert back["OS-EXT-SRV-ATTR:host"] == source
    # Again, confirmed this time: the server stays on the other host.
    assert admin.action(sid, {"migrate": None}).status_code == 202
    admin.wait(sid, "VERIFY_RESIZE")
    assert demo.action(sid, {"confirmResize": None}).status_code == 204
    assert admin.wait(sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] != source
    assert demo.http.get(f"/servers/{sid}/os-interface").json()["interfaceAttachments"]
    # To the host it is on: refused.
    current = host(admin, sid)
    message = error(admin.action(sid, {"migrate": {"host": current}}), 400)
    assert "to current host" in message


def test_live_migration_keeps_the_server_running(admin: Compute, demo: Compute) -> None:
    sid = demo.boot("live")["id"]
    source = host(admin, sid)
    body = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
    assert admin.action(sid, body).status_code == 202
    moved = admin.wait(sid, "ACTIVE")
    assert moved["OS-EXT-SRV-ATTR:host"] != source
    listed = admin.http.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    assert listed[0]["action"] == "live-migration"
    unknown = {"os-migrateLive": {"host": "nowhere", "block_migration": "auto"}}
    error(admin.action(sid, unknown), 400)


def test_evacuate_from_a_host_forced_down(admin: Compute, demo: Compute) -> None:
    sid = demo.boot("evacuee")["id"]
    source = host(admin, sid)
    message = error(admin.action(sid, {"evacuate": {}}), 400)
    assert message == f"Compute service of {source} is still in use."
    services = admin.http.get("/os-services", params={"binary": "nova-compute"}).json()
    service = next(s for s in services["services"] if s["host"] == source)
    down = admin.http.put(f"/os-services/{service['id']}", json={"forced_down": True})
    assert down.status_code == 200, down.text
    try:
        # From 2.95 an evacuated server arrives stopped; before, as it was.
        response = admin.action(sid, {"evacuate": {}})
        assert response.status_code == 200, response.text
        assert not response.content
        moved = admin.wait(sid, "SHUTOFF")
        assert moved["OS-EXT-SRV-ATTR:host"] != source
    finally:
        admin.http.put(f"/os-services/{service['id']}", json={"forced_down": False})
