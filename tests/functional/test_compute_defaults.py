"""DevStack's first-start compute defaults: the flavors and the default image.

A module of its own: its cloud is the only one running in the process (the services'
runtimes are process-wide)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import cloudfixture


def compute(cloud: cloudfixture.Cloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/compute/v2.1",
        headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.96"},
        timeout=30,
    )


@pytest.fixture(scope="module")
def defaults_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    tmp = Path(tmp_path_factory.mktemp("defaults"))
    with cloudfixture.in_process(tmp, compute={"create_defaults": True}) as running:
        yield running


def test_defaults_flavors(defaults_cloud: cloudfixture.Cloud) -> None:
    with compute(defaults_cloud, defaults_cloud.token("demo", project="demo")) as client:
        flavors = {f["id"]: f for f in client.get("/flavors/detail").json()["flavors"]}
    nano = flavors["42"]
    assert (nano["name"], nano["ram"], nano["vcpus"], nano["disk"]) == ("m1.nano", 64, 1, 1)
    assert nano["extra_specs"] == {"hw_rng:allowed": "True"}
    assert flavors["84"]["name"] == "m1.micro"
    expected = {
        "1": ("m1.tiny", 512, 1, 1),
        "2": ("m1.small", 2048, 20, 1),
        "3": ("m1.medium", 4096, 40, 2),
        "4": ("m1.large", 8192, 80, 4),
        "5": ("m1.xlarge", 16384, 160, 8),
    }
    for flavor_id, (name, ram, disk, vcpus) in expected.items():
        flavor = flavors[flavor_id]
        assert (flavor["name"], flavor["ram"], flavor["disk"], flavor["vcpus"]) == (
            name,
            ram,
            disk,
            vcpus,
        )
        assert flavor["os-flavor-access:is_public"] is True


def test_defaults_image_is_a_qcow2(defaults_cloud: cloudfixture.Cloud) -> None:
    headers = {"X-Auth-Token": defaults_cloud.token("demo", project="demo")}
    with httpx.Client(
        base_url=defaults_cloud.base_url + "/image/v2", headers=headers, timeout=30
    ) as client:
        (image,) = [
            i for i in client.get("/images").json()["images"] if i["name"] == "stackbox-tiny"
        ]
        assert image["status"] == "active" and image["visibility"] == "public"
        assert (image["disk_format"], image["container_format"]) == ("qcow2", "bare")
        assert image["checksum"] and image["size"] > 0 and "hw_architecture" not in image
        data = client.get(f"/images/{image['id']}/file").content
    assert data[:4] == b"QFI\xfb" and len(data) == image["size"]
    admin = defaults_cloud.sdk()
    assert image["owner"] == admin.identity.find_project("admin", ignore_missing=False).id


def test_defaults_are_made_once(defaults_cloud: cloudfixture.Cloud) -> None:
    from stackbox.compute import defaults
    from stackbox.db import session as db_session

    assert defaults.done(defaults_cloud.state_dir)
    # Running the step again (a start that died halfway) makes nothing twice.
    database = db_session.Database(f"sqlite:///{defaults_cloud.state_dir / 'stackbox.db'}")
    admin_project = defaults_cloud.sdk().identity.find_project("admin", ignore_missing=False).id
    assert defaults.create(database, admin_project) == []
    with compute(defaults_cloud, defaults_cloud.token()) as client:
        names = [f["name"] for f in client.get("/flavors").json()["flavors"]]
    assert len(names) == len(set(names)) == len(defaults.FLAVORS)
