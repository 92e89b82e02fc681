"""Glance's legacy tasks API: import tasks run to success or failure; list and show."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import cloudfixture
from tests.functional import imagedata


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    """A cloud allowed to fetch from the loopback servers this module starts."""
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("cloud")), image=imagedata.LOOPBACK_FETCH
    ) as running:
        yield running


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[imagedata.BlobServer]:
    with imagedata.blob_server(tmp_path_factory.mktemp("blobs")) as server:
        yield server


@pytest.fixture(scope="module")
def glance(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with imagedata.image_client(cloud) as client:
        yield client


def test_import_task_makes_an_active_image(
    cloud: cloudfixture.Cloud, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    data = imagedata.random_bytes(1_500_000)
    body = imagedata.import_task(blobs.add(data), name="imported", tags=["a"], color="blue")
    created = glance.post("/v2/tasks", json=body)
    assert created.status_code == 201
    task = created.json()
    assert task["status"] == "pending"
    assert task["type"] == "import"
    assert task["input"] == body["input"]
    assert created.headers["Location"] == f"/v2/tasks/{task['id']}"

    done = imagedata.wait_task(glance, task["id"])
    assert done["status"] == "success", done
    assert done["message"] == ""
    assert "expires_at" in done
    image = glance.get(f"/v2/images/{done['result']['image_id']}").json()
    assert image["status"] == "active"
    assert image["name"] == "imported"
    assert image["color"] == "blue"
    assert image["tags"] == ["a"]
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    stored = cloud.state_dir / "images" / "file" / image["id"]
    assert stored.read_bytes() == data


def test_import_from_an_unreachable_url_fails_and_leaves_no_image(glance: httpx.Client) -> None:
    before = {i["id"] for i in glance.get("/v2/images").json().get("images", [])}
    created = glance.post(
        "/v2/tasks",
        json=imagedata.import_task("http://tempest-dummy-img-file-1.qcow2", name="nowhere"),
    )
    assert created.status_code == 201
    done = imagedata.wait_task(glance, created.json()["id"])
    assert done["status"] == "failure"
    assert "tempest-dummy-img-file-1.qcow2" in done["message"]
    assert done["result"] is None
    after = {i["id"] for i in glance.get("/v2/images").json().get("images", [])}
    assert after == before


def test_import_of_a_missing_file_fails(glance: httpx.Client, blobs: imagedata.BlobServer) -> None:
    created = glance.post("/v2/tasks", json=imagedata.import_task(f"{blobs.url}/absent.bin"))
    done = imagedata.wait_task(glance, created.json()["id"])
    assert done["status"] == "failure"
    assert "404" in done["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"type": "import"}, "Task 'input' is required"),
        ({"input": {}}, "Task 'type' is required"),
        ({"type": "export", "input": {}}, "type"),
        (imagedata.import_task("file:///etc/passwd"), "File based imports are not allowed"),
        (imagedata.import_task("ftp://example.com/x"), "uri is not valid"),
        ({"type": "import", "input": {"import_from_format": "raw"}}, "Invalid location"),
        (imagedata.import_task("http://example.com/x", disk_format="floppy"), "disk_format"),
        ({"type": "import", "input": {}, "extra": 1}, "extra"),
    ],
)
def test_bad_tasks_are_refused(glance: httpx.Client, body: dict[str, object], words: str) -> None:
    before = len(glance.get("/v2/tasks", params={"limit": 1000}).json()["tasks"])
    refused = glance.post("/v2/tasks", json=body)
    assert refused.status_code == 400, refused.text
    assert words in refused.json()["message"]
    assert len(glance.get("/v2/tasks", params={"limit": 1000}).json()["tasks"]) == before


def test_read_only_image_properties_are_refused(glance: httpx.Client) -> None:
    refused = glance.post(
        "/v2/tasks", json=imagedata.import_task("http://example.com/x", checksum="0" * 32)
    )
    assert refused.status_code == 403


def test_list_filters_sorts_and_pages(glance: httpx.Client, blobs: imagedata.BlobServer) -> None:
    made = []
    for _ in range(3):
        created = glance.post("/v2/tasks", json=imagedata.import_task(blobs.add(b"x")))
        made.append(imagedata.wait_task(glance, created.json()["id"]))
    listed = glance.get("/v2/tasks", params={"limit": 1000}).json()
    assert listed["schema"] == "/v2/schemas/tasks"
    ids = [t["id"] for t in listed["tasks"]]
    assert {t["id"] for t in made} <= set(ids)
    stub = listed["tasks"][0]
    assert "input" not in stub and "result" not in stub
    assert {"id", "type", "status", "owner", "created_at", "self", "schema"} <= set(stub)

    first = glance.get("/v2/tasks", params={"limit": 2}).json()
    assert len(first["tasks"]) == 2
    assert "marker=" in first["next"]
    second = glance.get("/v2/tasks", params={"limit": 2, "marker": first["tasks"][-1]["id"]}).json()
    assert [t["id"] for t in first["tasks"] + second["tasks"]] == ids[: 2 + len(second["tasks"])]

    failed = glance.get("/v2/tasks", params={"status": "failure"}).json()["tasks"]
    assert all(t["status"] == "failure" for t in failed)
    ascending = glance.get("/v2/tasks", params={"sort_dir": "asc", "limit": 1000}).json()
    assert [t["id"] for t in ascending["tasks"]] == list(reversed(ids))
    for params in (
        {"status": "done"},
        {"type": "copy"},
        {"sort_dir": "up"},
        {"limit": "x"},
        {"marker": "nope"},
        {"sort_key": "input"},
    ):
        assert glance.get("/v2/tasks", params=params).status_code == 400, params


def test_show_delete_and_missing(glance: httpx.Client, blobs: imagedata.BlobServer) -> None:
    created = glance.post("/v2/tasks", json=imagedata.import_task(blobs.add(b"y"))).json()
    assert glance.get(f"/v2/tasks/{created['id']}").json()["id"] == created["id"]
    refused = glance.delete(f"/v2/tasks/{created['id']}")
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET"
    assert glance.get("/v2/tasks/00000000-0000-4000-8000-000000000000").status_code == 404


def test_tasks_api_is_for_admins(cloud: cloudfixture.Cloud, blobs: imagedata.BlobServer) -> None:
    with imagedata.image_client(cloud, cloud.token("demo", project="demo")) as demo:
        assert demo.get("/v2/tasks").status_code == 403
        assert (
            demo.post("/v2/tasks", json=imagedata.import_task(blobs.add(b"z"))).status_code == 403
        )
