"""Image locations and the read-only http store, through plain HTTP.

A loopback HTTP server started here holds the data; the cloud may fetch from it
only because its allow-list names 127.0.0.1 and that server's port. A second
server on another port counts the requests it gets: the cloud must never send
it any, whatever URL a caller names.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional.imagetransfer import glance, new_image, show, upload, wait_for

V21 = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
DATA = os.urandom(300_000)
OTHER = os.urandom(1000)


class _Server(http.server.ThreadingHTTPServer):
    blobs: dict[str, bytes]
    hits: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        self.server.hits.append(f"{self.command} {self.path}")
        path = self.path.split("?")[0]
        if path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", path.removeprefix("/redirect/").replace("|", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/slow":
            return self._slow(send_body)
        data = self.server.blobs.get(path)
        if data is None:
            self.send_error(404)
            return
        status, first, last = 200, 0, len(data) - 1
        wanted = self.headers.get("Range", "")
        if send_body and wanted.startswith("bytes="):
            low, _, high = wanted.removeprefix("bytes=").partition("-")
            status, first, last = 206, int(low), int(high) if high else len(data) - 1
        self.send_response(status)
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.end_headers()
        if send_body:
            self.wfile.write(data[first : last + 1])

    def _slow(self, send_body: bool) -> None:
        # 20 MB announced, sent a little at a time: hashing is still running a while.
        self.send_response(200)
        self.send_header("Content-Length", str(20_000_000))
        self.end_headers()
        if not send_body:
            return
        with contextlib.suppress(OSError):
            for _ in range(200):
                self.wfile.write(b"x" * 65536)
                time.sleep(0.05)


@contextlib.contextmanager
def serving(blobs: dict[str, bytes]) -> Iterator[tuple[str, _Server]]:
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler))
    server.blobs, server.hits = blobs, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def origin() -> Iterator[tuple[str, _Server]]:
    with serving({"/image.raw": DATA, "/other.raw": OTHER}) as found:
        yield found


@pytest.fixture(scope="module")
def outside() -> Iterator[tuple[str, _Server]]:
    """A server the allow-list does not name (another port)."""
    with serving({"/image.raw": DATA}) as found:
        yield found


@pytest.fixture(scope="module")
def located(
    tmp_path_factory: pytest.TempPathFactory, origin: tuple[str, _Server]
) -> Iterator[cloudfixture.ProcessCloud]:
    port = origin[0].rsplit(":", 1)[1]
    env = {
        "STACKBOX_IMAGE_STORES": "file,fast",
        "STACKBOX_IMAGE_SHOW_MULTIPLE_LOCATIONS": "true",
        "STACKBOX_IMAGE_SHOW_IMAGE_DIRECT_URL": "true",
        "STACKBOX_IMAGE_HTTP_STORE": "true",
        "STACKBOX_IMAGE_IMPORT_ALLOWED_HOSTS": "127.0.0.1",
        "STACKBOX_IMAGE_IMPORT_ALLOWED_PORTS": port,
    }
    with cloudfixture.as_process(tmp_path_factory.mktemp("located"), env=env) as running:
        yield running


@pytest.fixture
def owner(located: cloudfixture.ProcessCloud) -> Iterator[httpx.Client]:
    member = cloudfixture.ProjectMember(located, located.sdk())
    with glance(located, member.token()) as client:
        yield client


@pytest.fixture(scope="module")
def admin(located: cloudfixture.ProcessCloud) -> Iterator[httpx.Client]:
    with glance(located) as client:
        yield client


def patch(client: httpx.Client, image_id: str, *ops: dict[str, Any]) -> httpx.Response:
    return client.patch(f"/v2/images/{image_id}", json=list(ops), headers=V21)


def add(url: str, where: str = "-", **extra: Any) -> dict[str, Any]:
    return {
        "op": "add",
        "path": f"/locations/{where}",
        "value": {"url": url, "metadata": {}, **extra},
    }


def located_image(client: httpx.Client, url: str, **extra: Any) -> dict[str, Any]:
    image = new_image(client)
    done = patch(client, image["id"], add(url, **extra))
    assert done.status_code == 200, done.text
    return dict(done.json())


def tasks_of(client: httpx.Client, image_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/v2/images/{image_id}/tasks").json()["tasks"])


def finished_task(client: httpx.Client, image_id: str) -> dict[str, Any]:
    done = wait_for(
        lambda: [t for t in tasks_of(client, image_id) if t["status"] in ("success", "failure")]
    )
    return dict(done[0])


# --- hidden by default ---


def test_locations_are_hidden_and_closed_by_default(cloud: cloudfixture.Cloud) -> None:
    with glance(cloud) as client:
        image = new_image(client)
        assert "locations" not in image and "direct_url" not in image
        refused = patch(client, image["id"], add("http://example.com/image.raw"))
        assert refused.status_code == 403
        assert "invisible" in refused.json()["message"]
        posted = client.post(
            f"/v2/images/{image['id']}/locations", json={"url": "http://example.com/x"}
        )
        assert posted.status_code == 403
        assert show(client, image["id"])["status"] == "queued"


# --- what is shown ---


def test_an_upload_shows_its_file_location(
    located: cloudfixture.ProcessCloud, owner: httpx.Client
) -> None:
    image = new_image(owner)
    assert image["locations"] == []
    assert upload(owner, image["id"], b"uploaded bytes").status_code == 204
    shown = show(owner, image["id"])
    path = located.state_dir / "images" / "file" / image["id"]
    assert shown["locations"] == [{"url": f"file://{path}", "metadata": {"store": "file"}}]
    assert shown["direct_url"] == f"file://{path}"
    assert Path(shown["direct_url"].removeprefix("file://")).read_bytes() == b"uploaded bytes"
    listed = owner.get("/v2/images", params={"id": image["id"]}).json()["images"]
    assert listed[0]["locations"] == shown["locations"]


def test_other_projects_see_no_locations(
    located: cloudfixture.ProcessCloud, owner: httpx.Client
) -> None:
    image = new_image(owner, visibility="community")
    assert upload(owner, image["id"], b"community bytes").status_code == 204
    stranger = cloudfixture.ProjectMember(located, located.sdk())
    with glance(located, stranger.token()) as client:
        seen = show(client, image["id"])
    assert seen["locations"] == [] and "direct_url" not in seen


def test_only_admins_see_the_locations_of_a_deactivated_image(
    owner: httpx.Client, admin: httpx.Client
) -> None:
    image = new_image(owner)
    assert upload(owner, image["id"], b"soon deactivated").status_code == 204
    assert owner.post(f"/v2/images/{image['id']}/actions/deactivate").status_code == 204
    seen = show(owner, image["id"])
    assert seen["locations"] == [] and "direct_url" not in seen
    assert len(show(admin, image["id"])["locations"]) == 1


# --- PATCH /locations ---


def test_adding_an_http_location_activates_and_serves_the_image(
    origin: tuple[str, _Server], owner: httpx.Client
) -> None:
    url = f"{origin[0]}/image.raw"
    image = located_image(owner, url, metadata={"foo": "bar"})
    assert image["status"] == "active"
    assert image["size"] == len(DATA)
    assert image["os_hash_algo"] is None and image["checksum"] is None
    assert image["locations"] == [{"url": url, "metadata": {"foo": "bar", "store": "web"}}]
    assert image["direct_url"] == url
    assert image["stores"] == "web"
    got = owner.get(f"/v2/images/{image['id']}/file")
    assert got.status_code == 200 and got.content == DATA
    part = owner.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == DATA[10:20]


@pytest.mark.parametrize(
    "url",
    ["gopher://info.cern.ch", "file:///etc/passwd", "ftp://127.0.0.1/image.raw", "not a url"],
)
def test_urls_of_no_store_are_refused(owner: httpx.Client, url: str) -> None:
    image = new_image(owner)
    refused = patch(owner, image["id"], add(url))
    assert refused.status_code == 400
    assert show(owner, image["id"])["status"] == "queued"


def test_urls_outside_the_allow_list_are_never_fetched(
    origin: tuple[str, _Server], outside: tuple[str, _Server], owner: httpx.Client
) -> None:
    image = new_image(owner)
    port = origin[0].rsplit(":", 1)[1]
    for url in (
        f"{outside[0]}/image.raw",
        f"http://localhost:{port}/image.raw",
        f"http://2130706433:{port}/image.raw",
        f"http://169.254.169.254:{port}/latest",
        f"https://127.0.0.1:{outside[0].rsplit(':', 1)[1]}/image.raw",
    ):
        refused = patch(owner, image["id"], add(url))
        assert refused.status_code == 400, url
        assert "does not pass filtering" in refused.json()["message"]
        posted = owner.post(f"/v2/images/{image['id']}/locations", json={"url": url})
        assert posted.status_code == 400, url
        assert "does not pass filtering" in posted.json()["message"]
    # A redirect out of the allow-list is not followed either.
    hop = f"{origin[0]}/redirect/{outside[0].replace('/', '|')}|image.raw"
    assert patch(owner, image["id"], add(hop)).status_code == 400
    assert outside[1].hits == []
    assert show(owner, image["id"])["status"] == "queued"
    assert tasks_of(owner, image["id"]) == []


def test_validation_data_sets_hashes_and_later_locations_must_match(
    origin: tuple[str, _Server], owner: httpx.Client
) -> None:
    hashes = {"checksum": "1" * 32, "os_hash_algo": "sha512", "os_hash_value": "de" * 64}
    image = located_image(owner, f"{origin[0]}/image.raw", validation_data=hashes)
    assert image["status"] == "active"
    assert {k: image[k] for k in hashes} == hashes
    assert all("validation_data" not in loc for loc in image["locations"])
    second = patch(owner, image["id"], add(f"{origin[0]}/image.raw#2", validation_data=hashes))
    assert second.status_code == 200, second.text
    assert len(second.json()["locations"]) == 2
    for key, other in (("checksum", "2" * 32), ("os_hash_value", "ad" * 64)):
        changed = {**hashes, key: other}
        clash = patch(owner, image["id"], add(f"{origin[0]}/image.raw#3", validation_data=changed))
        assert clash.status_code == 409, key
    assert len(show(owner, image["id"])["locations"]) == 2


def test_validation_data_must_use_the_configured_algorithm(
    origin: tuple[str, _Server], owner: httpx.Client
) -> None:
    image = new_image(owner)
    sha256 = {"os_hash_algo": "sha256", "os_hash_value": "ab" * 32}
    refused = patch(owner, image["id"], add(f"{origin[0]}/image.raw", validation_data=sha256))
    assert refused.status_code == 409
    assert show(owner, image["id"])["status"] == "queued"


def test_replace_reorders_and_edits_metadata_but_keeps_the_urls(
    origin: tuple[str, _Server], owner: httpx.Client
) -> None:
    first, second = f"{origin[0]}/image.raw", f"{origin[0]}/image.raw#b"
    image = located_image(owner, first)
    image = patch(owner, image["id"], add(second, metadata={"speed": "88mph"})).json()
    swapped = [dict(image["locations"][1]), dict(image["locations"][0])]
    swapped[1]["metadata"] = {**swapped[1]["metadata"], "date": "2015-10-15"}
    done = patch(owner, image["id"], {"op": "replace", "path": "/locations", "value": swapped})
    assert done.status_code == 200, done.text
    assert done.json()["locations"] == swapped
    assert done.json()["direct_url"] == second
    for wrong in ([swapped[0]], [swapped[0], {"url": f"{first}#new", "metadata": {}}]):
        refused = patch(owner, image["id"], {"op": "replace", "path": "/locations", "value": wrong})
        assert refused.status_code == 400
    empty = patch(owner, image["id"], {"op": "replace", "path": "/locations", "value": []})
    assert empty.status_code == 403
    assert show(owner, image["id"])["locations"] == swapped


def test_replace_sets_the_locations_of_a_queued_image(
    origin: tuple[str, _Server], owner: httpx.Client
) -> None:
    image = new_image(owner)
    wanted = [
        {"url": f"{origin[0]}/image.raw", "metadata": {"a": "1"}},
        {"url": f"{origin[0]}/image.raw#2", "metadata": {}},
    ]
    done = patch(owner, image["id"], {"op": "replace", "path": "/locations", "value": wanted})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "active"
    assert [loc["url"] for loc in done.json()["locations"]] == [w["url"] for w in wanted]


def test_bad_positions_and_pointers(origin: tuple[str, _Server], owner: httpx.Client) -> None:
    image = located_image(owner, f"{origin[0]}/image.raw")
    url = f"{origin[0]}/image.raw#x"
    assert patch(owner, image["id"], add(url, where="first")).status_code == 400
    deep = {"op": "add", "path": "/locations/0/url", "value": {"url": url, "metadata": {}}}
    assert patch(owner, image["id"], deep).status_code == 400
    no_metadata = {"op": "add", "path": "/locations/-", "value": {"url": url}}
    assert patch(owner, image["id"], no_metadata).status_code == 400
    duplicate = patch(owner, image["id"], add(f"{origin[0]}/image.raw"))
    assert duplicate.status_code == 400
    inserted = patch(owner, image["id"], add(url, where="0"))
    assert [loc["url"] for loc in inserted.json()["locations"]] == [url, f"{origin[0]}/image.raw"]


def test_only_admins_remove_locations_and_never_the_last(
    located: cloudfixture.ProcessCloud,
    origin: tuple[str, _Server],
    owner: httpx.Client,
    admin: httpx.Client,
) -> None:
    image = new_image(owner)
    assert upload(owner, image["id"], DATA).status_code == 204
    stored = located.state_dir / "images" / "file" / image["id"]
    file_url = show(owner, image["id"])["locations"][0]["url"]
    assert patch(owner, image["id"], add(f"{file_url}#again")).status_code == 400
    added = patch(owner, image["id"], add(f"{origin[0]}/image.raw"))
    assert added.status_code == 200, added.text
    assert added.json()["stores"] == "file,web"
    remove = {"op": "remove", "path": "/locations/0"}
    assert patch(owner, image["id"], remove).status_code == 403
    removed = patch(admin, image["id"], remove)
    assert removed.status_code == 200, removed.text
    assert [loc["metadata"]["store"] for loc in removed.json()["locations"]] == ["web"]
    assert removed.json()["stores"] == "web"
    wait_for(lambda: not stored.exists())
    assert owner.get(f"/v2/images/{image['id']}/file").content == DATA
    last = patch(admin, image["id"], remove)
    assert last.status_code == 403
    assert len(show(owner, image["id"])["locations"]) == 1


# --- Image API 2.17: POST and GET /v2/images/{id}/locations ---


def test_add_location_hashes_the_data_and_checks_the_given_hash(
    origin: tuple[str, _Server], owner: httpx.Client
) -> None:
    url = f"{origin[0]}/image.raw"
    image = new_image(owner)
    given = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(DATA).hexdigest()}
    posted = owner.post(
        f"/v2/images/{image['id']}/locations", json={"url": url, "validation_data": given}
    )
    assert posted.status_code == 202, posted.text
    task = finished_task(owner, image["id"])
    assert task["status"] == "success", task
    assert task["type"] == "location_import"
    assert task["result"] == {"image_id": image["id"]}
    done = show(owner, image["id"])
    assert done["status"] == "active" and done["stores"] == "web"
    assert done["os_hash_algo"] == "sha256" and done["os_hash_value"] == given["os_hash_value"]
    assert done["checksum"] == hashlib.md5(DATA).hexdigest()
    assert done["size"] == len(DATA)
    again = owner.post(f"/v2/images/{image['id']}/locations", json={"url": url})
    assert again.status_code == 409


def test_add_location_without_hashes_computes_them(
    origin: tuple[str, _Server], owner: httpx.Client
) -> None:
    image = new_image(owner)
    url = f"{origin[0]}/other.raw"
    assert owner.post(f"/v2/images/{image['id']}/locations", json={"url": url}).status_code == 202
    assert finished_task(owner, image["id"])["status"] == "success"
    done = show(owner, image["id"])
    assert done["status"] == "active"
    assert done["os_hash_algo"] == "sha512"
    assert done["os_hash_value"] == hashlib.sha512(OTHER).hexdigest()
    assert done["checksum"] == hashlib.md5(OTHER).hexdigest()
    assert owner.get(f"/v2/images/{image['id']}/file").content == OTHER


def test_a_wrong_hash_fails_the_task_and_requeues_the_image(
    origin: tuple[str, _Server], owner: httpx.Client
) -> None:
    image = new_image(owner)
    given = {"os_hash_algo": "sha512", "os_hash_value": "beefdead" * 16}
    url = f"{origin[0]}/image.raw"
    posted = owner.post(
        f"/v2/images/{image['id']}/locations", json={"url": url, "validation_data": given}
    )
    assert posted.status_code == 202
    task = finished_task(owner, image["id"])
    assert task["status"] == "failure" and "not matched" in task["message"]
    done = show(owner, image["id"])
    assert done["status"] == "queued"
    assert done["checksum"] is None and done["os_hash_algo"] is None
    assert done["os_hash_value"] is None
    assert done["stores"] == "web"  # the read-only store keeps the location, as in Glance
    assert owner.get(f"/v2/images/{image['id']}/file").status_code == 204


@pytest.mark.parametrize(
    "given",
    [
        {"os_hash_algo": "sha512", "os_hash_value": "ab" * 15},
        {"os_hash_value": "ab" * 64},
        {"os_hash_algo": "sha123", "os_hash_value": "ab" * 64},
        {"os_hash_algo": "sha512", "os_hash_value": "zz" * 64},
        {"checksum": "1" * 32},
    ],
)
def test_bad_validation_data_is_refused_at_once(
    origin: tuple[str, _Server], owner: httpx.Client, given: dict[str, str]
) -> None:
    image = new_image(owner)
    url = f"{origin[0]}/image.raw"
    refused = owner.post(
        f"/v2/images/{image['id']}/locations", json={"url": url, "validation_data": given}
    )
    assert refused.status_code == 400, refused.text
    assert tasks_of(owner, image["id"]) == []
    assert show(owner, image["id"])["status"] == "queued"


def test_deleting_the_image_stops_the_hashing(
    origin: tuple[str, _Server], owner: httpx.Client, admin: httpx.Client
) -> None:
    image = new_image(owner)
    posted = owner.post(f"/v2/images/{image['id']}/locations", json={"url": f"{origin[0]}/slow"})
    assert posted.status_code == 202
    wait_for(lambda: show(owner, image["id"])["status"] == "active")
    (task,) = tasks_of(owner, image["id"])
    assert task["status"] == "processing"
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    failed = wait_for(
        lambda: (t := admin.get(f"/v2/tasks/{task['id']}").json())["status"] == "failure" and t,
        timeout=20,
    )
    assert "deleted" in failed["message"]


def test_listing_locations_is_for_services_and_admins(
    origin: tuple[str, _Server], owner: httpx.Client, admin: httpx.Client
) -> None:
    url = f"{origin[0]}/image.raw"
    image = located_image(owner, url, metadata={"k": "v"})
    assert owner.get(f"/v2/images/{image['id']}/locations").status_code == 403
    listed = admin.get(f"/v2/images/{image['id']}/locations")
    assert listed.status_code == 200
    assert listed.json() == [{"url": url, "metadata": {"k": "v", "store": "web"}}]


def test_schema_describes_locations(admin: httpx.Client) -> None:
    schema = admin.get("/v2/schemas/image").json()["properties"]
    assert schema["direct_url"]["readOnly"] is True
    assert schema["locations"]["items"]["required"] == ["url", "metadata"]


# --- the default allow-list ---


@pytest.fixture(scope="module")
def open_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.ProcessCloud]:
    """No host list, any port: only addresses of this machine or its link are refused."""
    env = {
        "STACKBOX_IMAGE_SHOW_MULTIPLE_LOCATIONS": "true",
        "STACKBOX_IMAGE_HTTP_STORE": "true",
        "STACKBOX_IMAGE_IMPORT_ALLOWED_PORTS": "",
    }
    with cloudfixture.as_process(tmp_path_factory.mktemp("open"), env=env) as running:
        yield running


def test_without_a_host_list_local_addresses_are_refused(
    open_hosts: cloudfixture.ProcessCloud, outside: tuple[str, _Server]
) -> None:
    port = outside[0].rsplit(":", 1)[1]
    with glance(open_hosts) as client:
        image = new_image(client)
        for host in ("127.0.0.1", "localhost", "[::1]", "0.0.0.0", "169.254.169.254"):
            url = f"http://{host}:{port}/image.raw"
            refused = patch(client, image["id"], add(url))
            assert refused.status_code == 400, host
            assert "does not pass filtering" in refused.json()["message"]
    assert outside[1].hits == []
