"""``compute.fake_extra_hosts``: more fake compute hosts in the all-in-one's process,
registered by their own agents, taking servers like any host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cloudfixture
from tests.functional import serveractions
from tests.functional.serveractions import Compute


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("cloud")),
        compute={"create_defaults": True, "fake_extra_hosts": 2},
        network={"create_defaults": True},
    ) as running:
        yield running


def test_extra_hosts_register_and_take_servers(cloud: cloudfixture.Cloud) -> None:
    admin = Compute(cloud, cloud.token())
    demo = Compute(cloud, cloud.token("demo", project="demo"))
    hypervisors = admin.http.get("/os-hypervisors/detail").json()["hypervisors"]
    names = sorted(h["hypervisor_hostname"] for h in hypervisors)
    assert len(names) == 3
    local = names[0]
    assert names[1:] == [f"{local}-2", f"{local}-3"]
    assert all(h["state"] == "up" and h["status"] == "enabled" for h in hypervisors)
    group = demo.http.post(
        "/os-server-groups", json={"server_group": {"name": "spread", "policy": "anti-affinity"}}
    ).json()["server_group"]
    image = serveractions.default_image(cloud, demo.token)
    ids = []
    for i in range(3):
        response = demo.http.post(
            "/servers",
            json={
                "server": {
                    "name": f"spread-{i}",
                    "imageRef": image,
                    "flavorRef": "42",
                    "networks": "auto",
                },
                "os:scheduler_hints": {"group": group["id"]},
            },
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["server"]["id"])
    hosts = {admin.wait(i, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for i in ids}
    assert hosts == set(names)
