"""Acceptance: the all-in-one restarted during 20 parallel boots converges.

The first cloud boots 20 servers at once through ``POST /servers`` on a slow fake
hypervisor and is stopped while they build (the process's agent, bus and fake
guests go with it). A second cloud starts on the same state dir: every server
ends ACTIVE or ERROR with a fault, none stays in BUILD, each holds exactly its
claim and its port, and deleting them all leaves no port and no claim behind.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import config
from stackbox.agent.compute import fake
from stackbox.compute import models
from stackbox.db import session as db_session
from stackbox.network import models as net_models
from stackbox.web import assembly
from tests import cloudfixture

BOOTS = 20
T = TypeVar("T")


def _settings(tmp: Path, port: int) -> config.Settings:
    return config.Settings(
        state_dir=tmp,
        port=port,
        admin_password=cloudfixture.ADMIN_PASSWORD,
        hostname="restart-node",
        log_level="warning",
        identity=config.IdentitySettings(bcrypt_rounds=4),
        network=config.NetworkSettings(agent_report_interval=0.3, agent_resync_interval=5.0),
        compute=config.ComputeSettings(
            agent_report_interval=0.3,
            agent_resync_interval=2.0,
            quota_instances=-1,
            quota_cores=-1,
            quota_ram=-1,
        ),
    )


@contextlib.contextmanager
def cloud(
    settings: config.Settings,
) -> Iterator[tuple[cloudfixture.Cloud, assembly.NetworkPlane, db_session.Database]]:
    with cloudfixture.serve(settings) as (running, database):
        assert running.plane is not None
        yield running, running.plane, database


wait_for = cloudfixture.wait_for


def compute(running: cloudfixture.Cloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=running.base_url + "/compute/v2.1",
        headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.96"},
        timeout=60,
    )


def servers(running: cloudfixture.Cloud, token: str) -> list[dict[str, Any]]:
    with compute(running, token) as http:
        response = http.get("/servers/detail")
    assert response.status_code == 200, response.text
    return list(response.json()["servers"])


def holdings(database: db_session.Database) -> tuple[set[str], dict[str, int], dict[str, int]]:
    """Live server ids, and per consumer of each kind: claims and compute ports."""

    def read(session: Session) -> tuple[set[str], dict[str, int], dict[str, int]]:
        live = set(
            session.scalars(select(models.Server.id).where(models.Server.deleted.is_(False)))
        )
        claims: dict[str, int] = {}
        for server_id in session.scalars(select(models.Allocation.server_id)):
            claims[server_id] = claims.get(server_id, 0) + 1
        ports: dict[str, int] = {}
        for device_id in session.scalars(
            select(net_models.Port.device_id).where(net_models.Port.device_owner.like("compute:%"))
        ):
            ports[device_id] = ports.get(device_id, 0) + 1
        return live, claims, ports

    return database.run(read, write=False)


def test_a_restart_during_parallel_boots_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `up` merges clouds.yaml into ~/.config/openstack: keep it in the test's dir.
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = _settings(tmp_path, cloudfixture.free_port())
    with cloud(settings) as (first, plane, _):
        token = first.token("demo", project="demo")
        with httpx.Client(
            base_url=first.base_url + "/networking/v2.0", headers={"X-Auth-Token": token}
        ) as net:
            [private] = net.get("/networks", params={"name": "private"}).json()["networks"]
        with httpx.Client(
            base_url=first.base_url + "/image/v2", headers={"X-Auth-Token": token}
        ) as images:
            image_id = images.get("/images").json()["images"][0]["id"]
        driver = plane.compute_agents[0].driver
        assert isinstance(driver, fake.FakeDriver)
        driver.spawn_delay = 0.25
        accepted: list[str] = []

        def boot(index: int) -> None:
            body = {
                "server": {
                    "name": f"restart-{index}",
                    "imageRef": image_id,
                    "flavorRef": "42",
                    "networks": [{"uuid": private["id"]}],
                }
            }
            with contextlib.suppress(httpx.HTTPError), compute(first, token) as http:
                response = http.post("/servers", json=body)
                assert response.status_code == 202, response.text
                accepted.append(response.json()["server"]["id"])

        pool = futures.ThreadPoolExecutor(BOOTS)
        launched = [pool.submit(boot, i) for i in range(BOOTS)]
        wait_for(lambda: len(accepted) >= BOOTS // 2, 30, "half the boots accepted")
        time.sleep(0.4)  # some builds finish, some are mid-spawn, some still queued
        building = sum(1 for s in servers(first, token) if s["status"] == "BUILD")
        # Leaving the block stops the cloud mid-way (requests in flight still finish).
    for done in launched:
        done.result(timeout=30)
    pool.shutdown()
    assert building > 0, "the restart came too late to interrupt any boot"

    with cloud(settings) as (second, _, database):
        token = second.token("demo", project="demo")

        def all_settled() -> list[dict[str, Any]] | None:
            found = servers(second, token)
            return found if all(s["status"] in ("ACTIVE", "ERROR") for s in found) else None

        final = wait_for(all_settled, 60, "every server to leave BUILD")
        assert {s["id"] for s in final} >= set(accepted)
        for item in final:
            if item["status"] == "ERROR":
                assert item.get("fault", {}).get("message"), item
        assert any(s["status"] == "ACTIVE" for s in final)

        live, claims, ports = holdings(database)
        assert live == {s["id"] for s in final}
        assert claims == {server_id: 1 for server_id in live}
        assert ports == {server_id: 1 for server_id in live}

        with compute(second, token) as http:
            for item in final:
                response = http.delete(f"/servers/{item['id']}")
                assert response.status_code == 204, response.text
        wait_for(lambda: not servers(second, token), 60, "every server to be deleted")
        live, claims, ports = holdings(database)
        assert (live, claims, ports) == (set(), {}, {})
