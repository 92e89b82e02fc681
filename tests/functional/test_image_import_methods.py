"""The web-download and glance-download import methods.

With the defaults (in-process cloud): web-download is not offered, glance-download is,
and copies images of this cloud (read locally) or of another endpoint in the caller's
catalog (fetched over HTTP, subject to the fetch allow-list). On a `stackbox up`
process that allows fetching from a loopback HTTP server: web-download into two stores,
the allow-list, and every way a download can fail (each leaves the image ``queued``
with its stores in ``os_glance_failed_import`` and no data anywhere).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import openstack
import pytest

from tests import cloudfixture
from tests.functional.imagetransfer import (
    MIB,
    glance,
    import_,
    member_token,
    new_image,
    qcow2,
    show,
    stage,
    upload,
    wait_for,
)

COPIED = {"hw_cpu_cores": "5", "trait:STORAGE_DISK_SSD": "required", "os_distro": "rhel"}
EVERY_METHOD = "glance-direct,web-download,copy-image,glance-download"
CAP = 2 * MIB
STAGE_QUOTA = 3 * MIB


# --- a loopback HTTP server to download from ---


class Blobs:
    """Data served at ``<url>/<name>``; ``/redirect?to=`` redirects, ``/short/<name>``
    announces more bytes than it sends."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.url = ""

    def add(self, data: bytes) -> str:
        name = uuid.uuid4().hex
        self.data[name] = data
        return f"{self.url}/{name}"


def _handler(blobs: Blobs) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", parse_qs(parts.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            short = parts.path.startswith("/short/")
            found = blobs.data.get(parts.path.removeprefix("/short/").lstrip("/"))
            if found is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(found) + (1000 if short else 0)))
            self.end_headers()
            self.wfile.write(found)
            self.close_connection = True

    return Handler


@pytest.fixture(scope="module")
def blobs() -> Iterator[Blobs]:
    served = Blobs()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


# --- helpers ---


def web(uri: str) -> dict[str, Any]:
    return {"name": "web-download", "uri": uri}


def from_glance(image_id: str, region: str = "RegionOne", **extra: str) -> dict[str, Any]:
    return {
        "name": "glance-download",
        "glance_image_id": image_id,
        "glance_region": region,
        **extra,
    }


def tasks_done(client: httpx.Client, image_id: str) -> list[dict[str, Any]]:
    """The image's tasks once none is still running."""

    def check() -> list[dict[str, Any]] | None:
        tasks = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        done = tasks and all(t["status"] in ("success", "failure") for t in tasks)
        return tasks if done else None

    return list(wait_for(check))


def failed_task(client: httpx.Client, image_id: str) -> dict[str, Any]:
    (task,) = tasks_done(client, image_id)
    assert task["status"] == "failure", task
    return task


def active_source(
    client: httpx.Client, data: bytes, visibility: str = "private", **props: str
) -> dict[str, Any]:
    image = new_image(client, visibility=visibility, **props)
    assert upload(client, image["id"], data).status_code == 204
    return show(client, image["id"])


def leftovers(state_dir: Path, image_id: str) -> list[Path]:
    """Any file of the image in any store, staging included, finished or not."""
    return [p for p in (state_dir / "images").rglob(f"{image_id}*") if p.is_file()]


def image_service_id(admin: openstack.connection.Connection) -> str:
    return str(next(s.id for s in admin.identity.services() if s.type == "image"))


@contextlib.contextmanager
def extra_endpoint(admin: openstack.connection.Connection, region: str, url: str) -> Iterator[None]:
    """An image endpoint in another region of the catalog (new tokens carry it)."""
    with contextlib.suppress(openstack.exceptions.ConflictException):
        admin.identity.create_region(id=region)
    endpoint = admin.identity.create_endpoint(
        service_id=image_service_id(admin), interface="public", url=url, region_id=region
    )
    try:
        yield
    finally:
        admin.identity.delete_endpoint(endpoint)


# --- the defaults ---


@pytest.fixture(scope="module")
def admin_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with glance(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def demo_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with glance(cloud, member_token(cloud)) as client:
        yield client


def test_defaults_offer_glance_download_but_not_web_download(admin_http: httpx.Client) -> None:
    info = admin_http.get("/v2/info/import").json()
    assert info["import-methods"]["value"] == ["glance-direct", "copy-image", "glance-download"]
    image = new_image(admin_http)
    refused = import_(admin_http, image["id"], method=web("http://example.com/x.img"))
    assert refused.status_code == 400
    assert "Unknown import method name 'web-download'" in refused.json()["message"]
    assert show(admin_http, image["id"])["status"] == "queued"


def test_glance_download_copies_data_formats_and_chosen_properties(
    cloud: cloudfixture.Cloud, admin_http: httpx.Client
) -> None:
    data = os.urandom(MIB + 17)
    source = active_source(admin_http, data, **COPIED, speed="88mph", os_type="linux")
    target = new_image(
        admin_http, "iso", container_format="ovf", name="copy", hw_cpu_cores="1", os_distro="win"
    )
    answer = import_(admin_http, target["id"], method=from_glance(source["id"]))
    assert answer.status_code == 202, answer.text
    (task,) = tasks_done(admin_http, target["id"])
    assert task["status"] == "success", task
    assert task["input"]["import_req"]["method"]["glance_service_interface"] == "public"
    done = show(admin_http, target["id"])
    assert done["status"] == "active"
    assert (done["disk_format"], done["container_format"]) == ("raw", "bare")
    assert {k: done.get(k) for k in COPIED} == COPIED
    assert done["os_type"] == "linux"
    assert "speed" not in done
    assert done["name"] == "copy"
    assert (done["size"], done["checksum"]) == (len(data), hashlib.md5(data).hexdigest())
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert (done["stores"], done["os_glance_failed_import"]) == ("file", "")
    assert admin_http.get(f"/v2/images/{target['id']}/file").content == data
    # The staged copy goes once the import is done; the source is untouched.
    wait_for(lambda: not (cloud.state_dir / "images" / "_staging" / target["id"]).exists())
    assert show(admin_http, source["id"])["status"] == "active"


def test_glance_download_request_checks(admin_http: httpx.Client) -> None:
    image = new_image(admin_http)
    bad_uuid = import_(admin_http, image["id"], method=from_glance("foo"))
    assert bad_uuid.status_code == 400
    assert "image id does not look like a UUID" in bad_uuid.json()["message"]
    no_region = {"name": "glance-download", "glance_image_id": str(uuid.uuid4())}
    refused = import_(admin_http, image["id"], method=no_region)
    assert refused.status_code == 400
    assert "glance_region" in refused.json()["message"]
    no_id = {"name": "glance-download", "glance_region": "RegionOne"}
    assert import_(admin_http, image["id"], method=no_id).status_code == 400
    assert admin_http.get(f"/v2/images/{image['id']}/tasks").json()["tasks"] == []
    # Only a queued image can be filled this way.
    source = active_source(admin_http, b"source")
    staged = new_image(admin_http)
    assert stage(admin_http, staged["id"], b"staged").status_code == 204
    for busy in (source, staged):
        conflict = import_(admin_http, busy["id"], method=from_glance(source["id"]))
        assert conflict.status_code == 409, conflict.text
    assert show(admin_http, staged["id"])["status"] == "uploading"


def test_glance_download_from_unknown_region_or_interface_fails(
    cloud: cloudfixture.Cloud, admin_http: httpx.Client
) -> None:
    source = active_source(admin_http, b"never copied")
    for method in (
        from_glance(source["id"], region="not a region"),
        from_glance(source["id"], glance_service_interface="not an interface"),
    ):
        image = new_image(admin_http, hw_cpu_cores="1", os_distro="windows")
        assert import_(admin_http, image["id"], method=method).status_code == 202
        task = failed_task(admin_http, image["id"])
        assert "glance endpoint not found" in task["message"]
        after = show(admin_http, image["id"])
        assert after["status"] == "queued"
        assert (after["hw_cpu_cores"], after["os_distro"]) == ("1", "windows")
        assert after["os_glance_failed_import"] == "file"
        assert after["os_glance_importing_to_stores"] == ""
        assert "os_glance_import_task" not in after
        assert leftovers(cloud.state_dir, image["id"]) == []


def test_glance_download_of_a_missing_or_unusable_image_fails(
    admin_http: httpx.Client, demo_http: httpx.Client
) -> None:
    missing = new_image(admin_http)
    assert import_(admin_http, missing["id"], method=from_glance(str(uuid.uuid4()))).is_success
    assert "No image found" in failed_task(admin_http, missing["id"])["message"]
    assert show(admin_http, missing["id"])["status"] == "queued"

    queued_source = new_image(admin_http)
    target = new_image(admin_http)
    assert import_(admin_http, target["id"], method=from_glance(queued_source["id"])).is_success
    assert "should be active" in failed_task(admin_http, target["id"])["message"]

    # The source is read with the caller's rights: another project's private image is
    # as missing as one that does not exist, and its properties stay secret.
    private = new_image(admin_http, visibility="private", os_distro="secret")
    assert upload(admin_http, private["id"], b"private").status_code == 204
    theirs = new_image(demo_http)
    assert import_(demo_http, theirs["id"], method=from_glance(private["id"])).is_success
    assert "No image found" in failed_task(demo_http, theirs["id"])["message"]
    after = show(demo_http, theirs["id"])
    assert (after["status"], after.get("os_distro")) == ("queued", None)


def test_member_copies_a_public_image(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    data = os.urandom(4096)
    source = active_source(admin_http, data, visibility="public", os_distro="cirros")
    mine = new_image(demo_http)
    assert import_(demo_http, mine["id"], method=from_glance(source["id"])).status_code == 202
    assert tasks_done(demo_http, mine["id"])[0]["status"] == "success"
    done = show(demo_http, mine["id"])
    assert (done["status"], done["os_distro"]) == ("active", "cirros")
    assert done["owner"] != source["owner"]
    assert demo_http.get(f"/v2/images/{mine['id']}/file").content == data


def test_remote_endpoint_must_pass_the_allow_list(
    cloud: cloudfixture.Cloud, admin: openstack.connection.Connection
) -> None:
    # Another region's endpoint is fetched over HTTP; the default allow-list only
    # permits ports 80 and 443, so one on this test port is refused.
    port = urlsplit(cloud.base_url).port
    with (
        extra_endpoint(admin, "RegionTwo", f"http://localhost:{port}/image"),
        glance(cloud) as client,
    ):
        source = active_source(client, b"over there")
        image = new_image(client)
        method = from_glance(source["id"], region="RegionTwo")
        assert import_(client, image["id"], method=method).status_code == 202
        assert "does not pass filtering" in failed_task(client, image["id"])["message"]
        assert show(client, image["id"])["status"] == "queued"


# --- a cloud that may fetch from the loopback server ---


@pytest.fixture(scope="module")
def fetching(
    tmp_path_factory: pytest.TempPathFactory, blobs: Blobs
) -> Iterator[cloudfixture.ProcessCloud]:
    env = {
        "STACKBOX_IMAGE_IMPORT_METHODS": EVERY_METHOD,
        "STACKBOX_IMAGE_STORES": "file,fast",
        # does-not.exist: listed, but no name server knows it.
        "STACKBOX_IMAGE_IMPORT_ALLOWED_HOSTS": "127.0.0.1,localhost,does-not.exist",
        # Any port: the blob server's and the cloud's own (both chosen at random).
        "STACKBOX_IMAGE_IMPORT_ALLOWED_PORTS": "",
        "STACKBOX_IMAGE_QUOTA_IMAGE_STAGE_TOTAL": str(STAGE_QUOTA),
        "STACKBOX_IMAGE_IMAGE_SIZE_CAP": str(CAP),
    }
    with cloudfixture.as_process(tmp_path_factory.mktemp("fetching"), env=env) as running:
        yield running


@pytest.fixture
def member(fetching: cloudfixture.ProcessCloud) -> Iterator[httpx.Client]:
    """A member of a fresh project (each test has the whole staging quota)."""
    user = cloudfixture.ProjectMember(fetching, fetching.sdk())
    with glance(fetching, user.token()) as client:
        yield client


def test_every_method_is_offered(member: httpx.Client) -> None:
    info = member.get("/v2/info/import").json()
    assert info["import-methods"]["value"] == EVERY_METHOD.split(",")


def test_web_download_into_every_store(
    fetching: cloudfixture.ProcessCloud, member: httpx.Client, blobs: Blobs, tmp_path: Path
) -> None:
    data = qcow2(tmp_path / "disk.qcow2", "16M")
    image = new_image(member, "qcow2")
    uri = blobs.add(data)
    answer = import_(member, image["id"], method=web(uri), all_stores=True)
    assert answer.status_code == 202, answer.text
    (task,) = tasks_done(member, image["id"])
    assert task["status"] == "success", task
    assert task["input"]["import_req"]["method"]["uri"] == uri
    done = show(member, image["id"])
    assert done["status"] == "active"
    assert done["stores"] == "fast,file"
    assert (done["size"], done["virtual_size"]) == (len(data), 16 * MIB)
    assert done["checksum"] == hashlib.md5(data).hexdigest()
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert (done["os_glance_importing_to_stores"], done["os_glance_failed_import"]) == ("", "")
    for store in ("file", "fast"):
        assert (fetching.state_dir / "images" / store / image["id"]).read_bytes() == data
    wait_for(lambda: not (fetching.state_dir / "images" / "_staging" / image["id"]).exists())


def test_web_download_follows_allowed_redirects(member: httpx.Client, blobs: Blobs) -> None:
    image = new_image(member)
    uri = f"{blobs.url}/redirect?to={blobs.add(b'redirected data')}"
    assert import_(member, image["id"], method=web(uri)).status_code == 202
    assert tasks_done(member, image["id"])[0]["status"] == "success"
    assert member.get(f"/v2/images/{image['id']}/file").content == b"redirected data"


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.2/disk.img",
        "http://example.com/disk.img",
        "http://2130706433/disk.img",
        "ftp://127.0.0.1/disk.img",
        "file:///etc/passwd",
        # A listed host must resolve too (the address is checked, then connected to).
        "http://does-not.exist/no/possible/way",
    ],
)
def test_web_download_refuses_urls_off_the_allow_list(member: httpx.Client, uri: str) -> None:
    image = new_image(member)
    refused = import_(member, image["id"], method=web(uri))
    assert refused.status_code == 400
    assert refused.json()["message"] == f"URI for web-download does not pass filtering: {uri}"
    assert show(member, image["id"])["status"] == "queued"
    assert member.get(f"/v2/images/{image['id']}/tasks").json()["tasks"] == []


def test_web_download_refuses_malformed_requests(member: httpx.Client, blobs: Blobs) -> None:
    image = new_image(member)
    for method in (
        {"name": "web-download"},
        web(""),
        {"name": "web-download", "uri": ["http://127.0.0.1/"]},
        web("http://127.0.0.1:99999/disk.img"),
        web("no scheme at all"),
    ):
        assert import_(member, image["id"], method=method).status_code == 400, method
    assert show(member, image["id"])["status"] == "queued"
    staged = new_image(member)
    assert stage(member, staged["id"], b"x").status_code == 204
    conflict = import_(member, staged["id"], method=web(blobs.add(b"y")))
    assert conflict.status_code == 409
    assert "queued" in conflict.json()["message"]


def fill_staging(client: httpx.Client, size: int) -> None:
    """Use ``size`` bytes of the project's staging quota."""
    image = new_image(client)
    assert stage(client, image["id"], bytes(size)).status_code == 204


def _fails(
    cloud: cloudfixture.Cloud,
    client: httpx.Client,
    method: dict[str, Any],
    image: dict[str, Any] | None = None,
    failed: str = "fast,file",
) -> str:
    """Import with ``method`` to all stores; check it failed cleanly; return the reason.

    A download that fails fails every store; a store that refuses the data fails alone
    (the import stops there).
    """
    image = image or new_image(client)
    assert import_(client, image["id"], method=method, all_stores=True).status_code == 202
    task = failed_task(client, image["id"])
    after = show(client, image["id"])
    assert after["status"] == "queued"
    assert (after["size"], after["checksum"]) == (None, None)
    assert after["os_glance_failed_import"] == failed
    assert after["os_glance_importing_to_stores"] == ""
    assert "os_glance_import_task" not in after
    assert "stores" not in after
    assert leftovers(cloud.state_dir, image["id"]) == []
    return str(task["message"])


def test_web_download_failures(
    fetching: cloudfixture.ProcessCloud, member: httpx.Client, blobs: Blobs, tmp_path: Path
) -> None:
    assert "404" in _fails(fetching, member, web(f"{blobs.url}/missing"))
    short = f"{blobs.url}/short/{blobs.add(os.urandom(5000)).rsplit('/', 1)[1]}"
    assert "5000" in _fails(fetching, member, web(short))
    # Every redirect is checked against the allow-list too.
    nowhere = f"{blobs.url}/redirect?to=http://127.0.0.2:1/x"
    assert "does not pass filtering: http://127.0.0.2:1/x" in _fails(fetching, member, web(nowhere))
    # The data is inspected on its way into the stores: qcow2 declared raw is refused.
    disguised = blobs.add(qcow2(tmp_path / "d.qcow2", "8M"))
    assert "qcow2" in _fails(fetching, member, web(disguised), failed="file")
    assert "too large" in _fails(fetching, member, web(blobs.add(bytes(CAP + 1))))
    fill_staging(member, STAGE_QUOTA - MIB)
    assert "staging quota" in _fails(fetching, member, web(blobs.add(bytes(MIB + 1))))


def test_failed_glance_download_gives_back_what_it_took(
    fetching: cloudfixture.ProcessCloud, member: httpx.Client
) -> None:
    source = active_source(member, bytes(MIB + 1), **COPIED)
    fill_staging(member, STAGE_QUOTA - MIB)
    image = new_image(member, "iso", container_format="ovf", hw_cpu_cores="1")
    assert "staging quota" in _fails(fetching, member, from_glance(source["id"]), image)
    after = show(member, image["id"])
    assert (after["disk_format"], after["container_format"]) == ("iso", "ovf")
    assert after["hw_cpu_cores"] == "1"
    assert "trait:STORAGE_DISK_SSD" not in after
    assert "os_distro" not in after


def test_glance_download_through_another_endpoint(fetching: cloudfixture.ProcessCloud) -> None:
    # An endpoint that is not this service's own URL is read over HTTP with the
    # caller's token (here it leads back to the same cloud, under another name).
    port = urlsplit(fetching.base_url).port
    data = os.urandom(70_000)
    with extra_endpoint(fetching.sdk(), "RegionTwo", f"http://localhost:{port}/image"):
        user = cloudfixture.ProjectMember(fetching, fetching.sdk())
        with glance(fetching, user.token()) as client:
            source = active_source(client, data, os_distro="debian")
            image = new_image(client)
            method = from_glance(source["id"], region="regiontwo")
            assert import_(client, image["id"], method=method).status_code == 202
            (task,) = tasks_done(client, image["id"])
            assert task["status"] == "success", task
            done = show(client, image["id"])
            assert (done["status"], done["os_distro"]) == ("active", "debian")
            assert client.get(f"/v2/images/{image['id']}/file").content == data
