"""The node image cache: Glance's /v2/cache API, the server's prefetcher, and the
``stackbox image cache`` commands working on real files.

A "node" here is a state dir holding only the cloud's clouds.yaml, as a compute
node would: its cache is filled through the Image API over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackbox.image import cache
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


@pytest.fixture
def node(cloud: cloudfixture.Cloud, tmp_path: Path) -> Path:
    """A compute node's state dir: the cloud's credentials and nothing else."""
    state = tmp_path / "node"
    state.mkdir()
    shutil.copy(cloud.clouds_yaml, state / "clouds.yaml")
    return state


def stackbox(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbox", "image", "cache", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def listing(state: Path) -> dict[str, Any]:
    done = stackbox(state, "list", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def cached_ids(found: dict[str, Any]) -> list[str]:
    return [e["image_id"] for e in found["cached_images"]]


def server_cache_dir(cloud: cloudfixture.Cloud) -> Path:
    return cloud.state_dir / cache.DIR_NAME


def wait_cached(client: httpx.Client, image_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get("/v2/cache").json()
        if image_id in cached_ids(state) or time.monotonic() > deadline:
            return dict(state)
        time.sleep(0.05)


# -- the API --------------------------------------------------------------------------------


def test_cache_api_is_for_admins_only(
    cloud: cloudfixture.Cloud, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    image = imagedata.active_image(glance, blobs, b"admin only")
    with imagedata.image_client(cloud, cloud.token("demo", project="demo")) as demo:
        assert demo.get("/v2/cache").status_code == 403
        assert demo.delete("/v2/cache").status_code == 403
        # Another project's image is invisible to demo before any policy applies.
        assert demo.put(f"/v2/cache/{image['id']}").status_code == 404
        public = imagedata.active_image(glance, blobs, b"public", visibility="public")
        assert demo.put(f"/v2/cache/{public['id']}").status_code == 403
        assert demo.delete(f"/v2/cache/{public['id']}").status_code == 403
    state = glance.get("/v2/cache").json()
    assert image["id"] not in state["queued_images"] and public["id"] not in state["queued_images"]


def test_queue_refuses_unknown_and_inactive_images(glance: httpx.Client) -> None:
    missing = glance.put("/v2/cache/non-existing-image-id")
    assert missing.status_code == 404
    assert missing.json()["code"] == "404 Not Found"
    assert glance.put("/v2/cache/00000000-0000-4000-8000-000000000000").status_code == 404
    queued = glance.post("/v2/images", json={"name": "no data"}).json()
    refused = glance.put(f"/v2/cache/{queued['id']}")
    assert refused.status_code == 400
    assert queued["id"] not in glance.get("/v2/cache").json()["queued_images"]


def test_queueing_caches_a_verified_copy(
    cloud: cloudfixture.Cloud, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    data = imagedata.random_bytes(300_000)
    image = imagedata.active_image(glance, blobs, data)
    assert glance.put(f"/v2/cache/{image['id']}").status_code == 202
    state = wait_cached(glance, image["id"])
    entry = next(e for e in state["cached_images"] if e["image_id"] == image["id"])
    assert entry["size"] == len(data)
    assert entry["hits"] == 0
    assert image["id"] not in state["queued_images"]
    copy = server_cache_dir(cloud) / image["id"]
    assert hashlib.sha512(copy.read_bytes()).hexdigest() == image["os_hash_value"]
    assert list((server_cache_dir(cloud) / cache.INCOMPLETE).iterdir()) == []


def test_delete_entry_and_clear_targets(
    cloud: cloudfixture.Cloud, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    first = imagedata.active_image(glance, blobs, b"first entry")
    second = imagedata.active_image(glance, blobs, b"second entry")
    assert glance.put(f"/v2/cache/{first['id']}").status_code == 202
    wait_cached(glance, first["id"])
    # Queued on the server's own cache dir without a nudge: it stays queued.
    assert stackbox(cloud.state_dir, "queue", second["id"]).returncode == 0
    state = glance.get("/v2/cache").json()
    assert first["id"] in cached_ids(state)
    assert second["id"] in state["queued_images"]

    bad = glance.delete("/v2/cache", headers={"x-image-cache-clear-target": "invalid"})
    assert bad.status_code == 400
    assert glance.get("/v2/cache").json() == state

    assert (
        glance.delete("/v2/cache", headers={"x-image-cache-clear-target": "queue"}).status_code
        == 204
    )
    state = glance.get("/v2/cache").json()
    assert state["queued_images"] == [] and first["id"] in cached_ids(state)

    assert (
        glance.delete("/v2/cache", headers={"x-image-cache-clear-target": "cache"}).status_code
        == 204
    )
    assert glance.get("/v2/cache").json() == {"cached_images": [], "queued_images": []}

    assert glance.put(f"/v2/cache/{first['id']}").status_code == 202
    wait_cached(glance, first["id"])
    assert glance.delete(f"/v2/cache/{first['id']}").status_code == 204
    assert first["id"] not in cached_ids(glance.get("/v2/cache").json())
    assert not (server_cache_dir(cloud) / first["id"]).exists()
    # As in Glance: 404 only for an id that is neither an image nor in the cache.
    assert glance.delete(f"/v2/cache/{first['id']}").status_code == 204
    assert glance.delete("/v2/cache/00000000-0000-4000-8000-000000000000").status_code == 404


def test_cache_entry_of_a_deleted_image_can_be_removed(
    cloud: cloudfixture.Cloud, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    image = imagedata.active_image(glance, blobs, b"soon gone")
    assert glance.put(f"/v2/cache/{image['id']}").status_code == 202
    wait_cached(glance, image["id"])
    assert glance.delete(f"/v2/images/{image['id']}").status_code == 204
    assert image["id"] in cached_ids(glance.get("/v2/cache").json())
    assert glance.delete(f"/v2/cache/{image['id']}").status_code == 204
    assert image["id"] not in cached_ids(glance.get("/v2/cache").json())


def test_prune_and_clean_over_the_api(
    cloud: cloudfixture.Cloud, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    image = imagedata.active_image(glance, blobs, imagedata.random_bytes(50_000))
    assert glance.put(f"/v2/cache/{image['id']}").status_code == 202
    wait_cached(glance, image["id"])
    corrupt(server_cache_dir(cloud) / image["id"])
    assert glance.post("/v2/cache/clean").status_code == 200
    assert image["id"] not in cached_ids(glance.get("/v2/cache").json())
    pruned = glance.post("/v2/cache/prune")
    assert pruned.status_code == 200
    assert pruned.json() == {"total_files_pruned": 0, "total_bytes_pruned": 0}


# -- the server's periodic prefetcher ---------------------------------------------------------


def test_server_prefetches_queued_images_on_its_interval(tmp_path: Path) -> None:
    env = {
        "STACKBOX_IMAGE_CACHE_PREFETCH_INTERVAL": "1",
        "STACKBOX_IMAGE_IMPORT_ALLOWED_HOSTS": imagedata.LOOPBACK_FETCH["import_allowed_hosts"],
        "STACKBOX_IMAGE_IMPORT_ALLOWED_PORTS": imagedata.LOOPBACK_FETCH["import_allowed_ports"],
    }
    with (
        imagedata.blob_server(tmp_path / "blobs") as blob_source,
        cloudfixture.as_process(tmp_path, env=env) as running,
        imagedata.image_client(running) as client,
    ):
        data = imagedata.random_bytes(100_000)
        image = imagedata.active_image(client, blob_source, data)
        # Queued behind the API's back: only the periodic run can fetch it.
        assert stackbox(running.state_dir, "queue", image["id"]).returncode == 0
        state = wait_cached(client, image["id"], timeout=15)
        assert image["id"] in cached_ids(state)
        assert (running.state_dir / cache.DIR_NAME / image["id"]).read_bytes() == data


# -- the commands, as a compute node runs them ------------------------------------------------


def corrupt(path: Path) -> None:
    with open(path, "r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))


def test_node_prefetch_downloads_and_verifies(
    node: Path, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    data = imagedata.random_bytes(2_500_000)
    image = imagedata.active_image(glance, blobs, data)
    queued = stackbox(node, "queue", image["id"])
    assert queued.returncode == 0 and "queued" in queued.stdout
    assert listing(node)["queued_images"] == [image["id"]]

    done = stackbox(node, "prefetch")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{image['id']}: cached" in done.stdout
    found = listing(node)
    assert found["queued_images"] == []
    assert cached_ids(found) == [image["id"]]
    assert (node / cache.DIR_NAME / image["id"]).read_bytes() == data
    meta = json.loads((node / cache.DIR_NAME / cache.META / f"{image['id']}.json").read_text())
    assert meta["os_hash_value"] == image["os_hash_value"]
    assert meta["checksum"] == image["checksum"]

    again = stackbox(node, "queue", image["id"])
    assert "already cached" in again.stdout


def test_node_prefetch_refuses_data_that_does_not_match(
    cloud: cloudfixture.Cloud, node: Path, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    image = imagedata.active_image(glance, blobs, imagedata.random_bytes(200_000))
    # The store's copy rots: the API now serves data that no longer matches the image.
    corrupt(cloud.state_dir / "images" / "file" / image["id"])
    assert stackbox(node, "queue", image["id"]).returncode == 0
    done = stackbox(node, "prefetch")
    assert done.returncode == 1
    assert f"{image['id']}: invalid" in done.stdout
    found = listing(node)
    assert cached_ids(found) == []
    assert found["queued_images"] == [image["id"]]
    assert list((node / cache.DIR_NAME / cache.INCOMPLETE).iterdir()) == []


def test_node_prefetch_drops_deleted_images(
    node: Path, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    image = imagedata.active_image(glance, blobs, b"deleted before the fetch")
    assert stackbox(node, "queue", image["id"]).returncode == 0
    assert glance.delete(f"/v2/images/{image['id']}").status_code == 204
    done = stackbox(node, "prefetch")
    assert done.returncode == 0
    assert f"{image['id']}: gone" in done.stdout
    assert listing(node) == {"cached_images": [], "queued_images": []}


def test_node_prefetch_without_credentials_fails_clearly(tmp_path: Path) -> None:
    done = stackbox(tmp_path, "prefetch")
    assert done.returncode == 1
    assert "clouds.yaml" in done.stderr


def test_queue_refuses_what_is_not_an_image_id(node: Path) -> None:
    done = stackbox(node, "queue", "../../etc/passwd")
    assert done.returncode == 2
    assert "not an image id" in done.stderr
    assert listing(node)["queued_images"] == []


def prefetch_all(
    node: Path, glance: httpx.Client, blobs: imagedata.BlobServer, sizes: list[int]
) -> list[dict[str, Any]]:
    made = [imagedata.active_image(glance, blobs, imagedata.random_bytes(s)) for s in sizes]
    for image in made:
        assert stackbox(node, "queue", image["id"]).returncode == 0
    done = stackbox(node, "prefetch")
    assert done.returncode == 0, done.stdout + done.stderr
    return made


def test_prune_removes_least_recently_used_until_under_the_limit(
    node: Path, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    old, used, new = prefetch_all(node, glance, blobs, [100_000, 100_000, 100_000])
    node_cache = cache.ImageCache(node / cache.DIR_NAME, max_size=10**9)
    # Reading through the cache (as a compute agent does) counts as a use.
    for image in (old, used, new):
        time.sleep(0.01)
        with node_cache.open(image["id"]) as handle:
            handle.read(10)
    time.sleep(0.01)
    with node_cache.open(old["id"]):
        pass
    # Least recently used now: used, then new, then old.
    done = stackbox(node, "prune", "--max-size", "150000")
    assert done.returncode == 0, done.stderr
    assert f"{used['id']}: pruned" in done.stdout
    assert f"{new['id']}: pruned" in done.stdout
    found = listing(node)
    assert cached_ids(found) == [old["id"]]
    entry = found["cached_images"][0]
    assert entry["hits"] == 2
    assert sum(e["size"] for e in found["cached_images"]) <= 150_000

    unchanged = stackbox(node, "prune", "--max-size", "150000")
    assert "pruned" not in unchanged.stdout
    assert cached_ids(listing(node)) == [old["id"]]


def test_prune_defaults_to_the_configured_size(
    node: Path, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    prefetch_all(node, glance, blobs, [60_000, 60_000])
    (node / "stackbox.toml").write_text("[image]\ncache_max_size = 70000\n")
    done = stackbox(node, "prune")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": pruned") == 1
    assert len(listing(node)["cached_images"]) == 1


def test_clean_removes_corrupt_partial_and_orphaned_entries(
    node: Path, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    good, bad, truncated = prefetch_all(node, glance, blobs, [80_000, 80_000, 80_000])
    root = node / cache.DIR_NAME
    corrupt(root / bad["id"])
    with open(root / truncated["id"], "r+b") as handle:
        handle.truncate(1000)
    orphan = "11111111-2222-4333-8444-555555555555"
    (root / cache.META / f"{orphan}.json").write_text(json.dumps({"size": 3}))
    stalled = root / cache.INCOMPLETE / f"{good['id']}.dead"
    stalled.write_bytes(b"half a download")
    old = time.time() - 2 * cache.STALL_GRACE
    os.utime(stalled, (old, old))
    fresh = root / cache.INCOMPLETE / f"{good['id']}.busy"
    fresh.write_bytes(b"a download in progress")

    done = stackbox(node, "clean")
    assert done.returncode == 0, done.stderr
    assert f"{bad['id']}: removed (sha512 mismatch)" in done.stdout
    assert f"{truncated['id']}: removed (size 1000 instead of 80000)" in done.stdout
    assert f"{orphan}: removed (metadata without data)" in done.stdout
    assert "stalled download" in done.stdout
    assert cached_ids(listing(node)) == [good["id"]]
    assert not stalled.exists() and fresh.exists()
    assert not (root / cache.META / f"{bad['id']}.json").exists()
    assert hashlib.sha512((root / good["id"]).read_bytes()).hexdigest() == good["os_hash_value"]

    again = stackbox(node, "clean")
    assert again.stdout == ""


def test_next_prefetch_run_drops_copies_of_deleted_images(
    cloud: cloudfixture.Cloud, glance: httpx.Client, blobs: imagedata.BlobServer
) -> None:
    doomed = imagedata.active_image(glance, blobs, b"deleted later")
    other = imagedata.active_image(glance, blobs, b"queued later")
    assert glance.put(f"/v2/cache/{doomed['id']}").status_code == 202
    wait_cached(glance, doomed["id"])
    assert glance.delete(f"/v2/images/{doomed['id']}").status_code == 204
    # Queueing another image runs the prefetcher, which also forgets deleted images.
    assert glance.put(f"/v2/cache/{other['id']}").status_code == 202
    state = wait_cached(glance, other["id"])
    deadline = time.monotonic() + 10
    while doomed["id"] in cached_ids(state) and time.monotonic() < deadline:
        time.sleep(0.05)
        state = glance.get("/v2/cache").json()
    assert doomed["id"] not in cached_ids(state)
    assert not (server_cache_dir(cloud) / doomed["id"]).exists()
