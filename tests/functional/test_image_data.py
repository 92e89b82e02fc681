"""Image data: upload and download, format inspection, access, failures while data
flows, and a crash mid-upload (a `stackbox up` process killed with SIGKILL and started
again on the same state dir).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openstack.connection
import pytest

from tests import cloudfixture
from tests.functional.imagetransfer import (
    MIB,
    glance,
    in_background,
    member_token,
    new_image,
    partial_put,
    qcow2,
    show,
    store_files,
    upload,
    wait_for,
    wait_status,
)

OPENSTACK = str(Path(sys.executable).parent / "openstack")


@pytest.fixture(scope="module")
def admin_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with glance(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def demo_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with glance(cloud, member_token(cloud)) as client:
        yield client


# --- upload and download ---


def test_qcow2_upload_by_sdk_reports_format_virtual_size_and_hashes(
    admin: openstack.connection.Connection, tmp_path: Path
) -> None:
    data = qcow2(tmp_path / "disk.qcow2", "96M")
    image = admin.image.create_image(
        name="sdk-qcow2",
        filename=str(tmp_path / "disk.qcow2"),
        disk_format="qcow2",
        container_format="bare",
        allow_duplicates=True,
        wait=True,
    )
    image = admin.image.get_image(image.id)
    assert image.status == "active"
    assert image.virtual_size == 96 * MIB
    assert image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.hash_algo == "sha512"
    assert image.hash_value == hashlib.sha512(data).hexdigest()
    got = admin.image.download_image(image)
    assert got.content == data


def test_upload_and_download_by_http(cloud: cloudfixture.Cloud, admin_http: httpx.Client) -> None:
    data = os.urandom(3 * MIB + 17)
    image = new_image(admin_http)
    assert upload(admin_http, image["id"], data).status_code == 204
    shown = show(admin_http, image["id"])
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["virtual_size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["stores"] == "file"
    got = admin_http.get(f"/v2/images/{image['id']}/file")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-md5"] == hashlib.md5(data).hexdigest()
    assert got.headers["content-length"] == str(len(data))
    assert (cloud.state_dir / "images" / "file" / image["id"]).read_bytes() == data
    head = admin_http.head(f"/v2/images/{image['id']}/file")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))


def test_chunked_upload_streams(admin_http: httpx.Client) -> None:
    blocks = [os.urandom(256 * 1024) for _ in range(12)]
    image = new_image(admin_http)
    assert upload(admin_http, image["id"], iter(blocks)).status_code == 204
    shown = show(admin_http, image["id"])
    assert shown["size"] == sum(map(len, blocks))
    assert shown["os_hash_value"] == hashlib.sha512(b"".join(blocks)).hexdigest()


def test_range_downloads(admin_http: httpx.Client) -> None:
    data = os.urandom(100_000)
    image = new_image(admin_http)
    assert upload(admin_http, image["id"], data).status_code == 204
    url = f"/v2/images/{image['id']}/file"

    part = admin_http.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert part.headers["content-length"] == "1000"

    tail = admin_http.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == data[-10:]

    rest_of_it = admin_http.get(url, headers={"Range": "bytes=99990-"})
    assert rest_of_it.content == data[99990:]
    assert rest_of_it.headers["content-range"] == f"bytes 99990-99999/{len(data)}"

    outside = admin_http.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(data)}"


def test_no_data_is_204(admin_http: httpx.Client) -> None:
    image = new_image(admin_http)
    got = admin_http.get(f"/v2/images/{image['id']}/file")
    assert got.status_code == 204
    assert got.content == b""


def test_upload_needs_octet_stream(admin_http: httpx.Client) -> None:
    image = new_image(admin_http)
    sent = admin_http.put(
        f"/v2/images/{image['id']}/file",
        content=b"abc",
        headers={"Content-Type": "application/json"},
    )
    assert sent.status_code == 415
    assert "application/octet-stream" in sent.json()["message"]
    assert show(admin_http, image["id"])["status"] == "queued"


def test_upload_to_an_active_image_conflicts(admin_http: httpx.Client) -> None:
    image = new_image(admin_http)
    assert upload(admin_http, image["id"], b"first").status_code == 204
    again = upload(admin_http, image["id"], b"second")
    assert again.status_code == 409
    assert admin_http.get(f"/v2/images/{image['id']}/file").content == b"first"


def test_upload_needs_formats(admin_http: httpx.Client) -> None:
    made = admin_http.post("/v2/images", json={"name": "no formats"})
    sent = upload(admin_http, made.json()["id"], b"data")
    assert sent.status_code == 400
    assert "disk_format, container_format must be set" in sent.json()["message"]
    assert show(admin_http, made.json()["id"])["status"] == "queued"


def test_unknown_store_header_is_refused(admin_http: httpx.Client) -> None:
    image = new_image(admin_http)
    sent = upload(admin_http, image["id"], b"data", **{"X-Image-Meta-Store": "nowhere"})
    assert sent.status_code == 400
    assert show(admin_http, image["id"])["status"] == "queued"


# --- format inspection ---


def test_qcow2_declared_raw_is_refused_and_nothing_stays(
    cloud: cloudfixture.Cloud, admin_http: httpx.Client, tmp_path: Path
) -> None:
    data = qcow2(tmp_path / "disk.qcow2")
    image = new_image(admin_http, "raw")
    before = store_files(cloud.state_dir)
    sent = upload(admin_http, image["id"], data)
    assert sent.status_code == 400
    message = sent.json()["message"]
    assert "raw" in message and "qcow2" in message
    shown = show(admin_http, image["id"])
    assert shown["status"] == "queued"
    assert shown["size"] is None
    assert shown["checksum"] is None
    assert admin_http.get(f"/v2/images/{image['id']}/file").status_code == 204
    assert store_files(cloud.state_dir) == before


def test_raw_data_declared_qcow2_is_refused(admin_http: httpx.Client) -> None:
    image = new_image(admin_http, "qcow2")
    sent = upload(admin_http, image["id"], os.urandom(2 * MIB))
    assert sent.status_code == 400
    assert "qcow2" in sent.json()["message"]
    assert show(admin_http, image["id"])["status"] == "queued"


def test_mismatch_stops_the_upload_early(cloud: cloudfixture.Cloud, tmp_path: Path) -> None:
    """The refusal comes from the first megabyte, before the client sends the rest."""
    header = qcow2(tmp_path / "disk.qcow2")[:512]
    with glance(cloud) as client:
        image = new_image(client, "raw")
        with partial_put(cloud, image["id"], 8 * MIB, header + bytes(MIB - 512)) as sock:
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"qcow2" in answer
        assert show(client, image["id"])["status"] == "queued"


def test_qcow2_with_backing_file_is_refused(admin_http: httpx.Client, tmp_path: Path) -> None:
    qcow2(tmp_path / "base.qcow2", "16M")
    data = qcow2(tmp_path / "top.qcow2", "16M", "-b", str(tmp_path / "base.qcow2"), "-F", "qcow2")
    image = new_image(admin_http, "qcow2")
    sent = upload(admin_http, image["id"], data)
    assert sent.status_code == 400
    assert "backing_file" in sent.json()["message"]
    assert show(admin_http, image["id"])["status"] == "queued"


def test_qcow2_with_external_data_file_is_refused(admin_http: httpx.Client, tmp_path: Path) -> None:
    data = qcow2(tmp_path / "top.qcow2", "16M", "-o", f"data_file={tmp_path / 'data.raw'}")
    image = new_image(admin_http, "qcow2")
    sent = upload(admin_http, image["id"], data)
    assert sent.status_code == 400
    assert "data_file" in sent.json()["message"]
    assert show(admin_http, image["id"])["status"] == "queued"


def test_raw_disks_with_structure_stay_raw(admin_http: httpx.Client, tmp_path: Path) -> None:
    """A LUKS container is a raw block device (Cinder uploads encrypted volumes so)."""
    luks = tmp_path / "volume.luks"
    command = ["qemu-img", "create", "-f", "luks", "--object", "secret,id=s0,data=pass"]
    command += ["-o", "key-secret=s0,iter-time=100", str(luks), "8M"]
    # qemu-img times its key derivation and gives up now and then on a busy machine.
    for _ in range(5):
        if subprocess.run(command, capture_output=True, check=False).returncode == 0:
            break
    else:
        pytest.fail("qemu-img could not make a LUKS image")
    image = new_image(admin_http, "raw")
    assert upload(admin_http, image["id"], luks.read_bytes()).status_code == 204
    assert show(admin_http, image["id"])["virtual_size"] == luks.stat().st_size


def test_formats_without_inspection_pass(admin_http: httpx.Client, tmp_path: Path) -> None:
    """Glance inspects only bare containers; and AMI data is not a recognisable format."""
    ovf = new_image(admin_http, "qcow2", container_format="ovf")
    assert upload(admin_http, ovf["id"], b"not a qcow2 at all").status_code == 204
    ami = new_image(admin_http, "ami", container_format="ami")
    assert upload(admin_http, ami["id"], os.urandom(4096)).status_code == 204
    lying_ami = new_image(admin_http, "ami")
    assert upload(admin_http, lying_ami["id"], qcow2(tmp_path / "d.qcow2")).status_code == 400


# --- access ---


def test_other_projects_cannot_upload_or_download(
    admin_http: httpx.Client, demo_http: httpx.Client
) -> None:
    private = new_image(admin_http, visibility="private")
    assert upload(demo_http, private["id"], b"mine now").status_code == 404
    assert show(admin_http, private["id"])["status"] == "queued"
    assert upload(admin_http, private["id"], b"secret").status_code == 204
    assert demo_http.get(f"/v2/images/{private['id']}/file").status_code == 404


def test_members_may_download_but_not_upload(
    cloud: cloudfixture.Cloud, admin_http: httpx.Client, demo_http: httpx.Client
) -> None:
    demo_project = cloud.sdk().identity.find_project("demo").id
    shared = new_image(admin_http, visibility="shared")
    added = admin_http.post(f"/v2/images/{shared['id']}/members", json={"member": demo_project})
    assert added.status_code == 200, added.text
    assert upload(demo_http, shared["id"], b"not yours").status_code == 403
    assert upload(admin_http, shared["id"], b"shared bytes").status_code == 204
    got = demo_http.get(f"/v2/images/{shared['id']}/file")
    assert got.status_code == 200
    assert got.content == b"shared bytes"


def test_deactivated_images_download_for_admins_only(
    admin_http: httpx.Client, demo_http: httpx.Client
) -> None:
    image = new_image(admin_http, visibility="public")
    assert upload(admin_http, image["id"], b"public bytes").status_code == 204
    assert demo_http.get(f"/v2/images/{image['id']}/file").content == b"public bytes"
    assert admin_http.post(f"/v2/images/{image['id']}/actions/deactivate").status_code == 204
    refused = demo_http.get(f"/v2/images/{image['id']}/file")
    assert refused.status_code == 403
    assert "deactivated" in refused.json()["message"]
    assert admin_http.get(f"/v2/images/{image['id']}/file").content == b"public bytes"


# --- failures while data flows ---


def test_image_deleted_during_upload_leaves_no_data(
    cloud: cloudfixture.Cloud, admin_http: httpx.Client
) -> None:
    image = new_image(admin_http)
    before = store_files(cloud.state_dir)
    proceed = threading.Event()

    def body() -> Iterator[bytes]:
        yield os.urandom(MIB)
        proceed.wait(20)
        yield os.urandom(MIB)

    with glance(cloud) as client:
        sender, answers = in_background(lambda: upload(client, image["id"], body()))
        wait_status(admin_http, image["id"], "saving")
        assert admin_http.delete(f"/v2/images/{image['id']}").status_code == 204
        proceed.set()
        sender.join(30)
    assert answers[0].status_code == 410
    assert admin_http.get(f"/v2/images/{image['id']}").status_code == 404
    assert store_files(cloud.state_dir) == before


def test_client_gone_mid_upload_puts_the_image_back(
    cloud: cloudfixture.Cloud, admin_http: httpx.Client
) -> None:
    image = new_image(admin_http)
    before = store_files(cloud.state_dir)
    with partial_put(cloud, image["id"], 16 * MIB, os.urandom(2 * MIB)):
        wait_status(admin_http, image["id"], "saving")
    shown = wait_status(admin_http, image["id"], "queued")
    assert shown["size"] is None
    wait_for(lambda: store_files(cloud.state_dir) == before)
    # The image takes a new upload.
    assert upload(admin_http, image["id"], b"second try").status_code == 204


# --- the openstack CLI ---


def cli(cloud: cloudfixture.Cloud, *args: str) -> str:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    done = subprocess.run(
        [OPENSTACK, "--os-cloud", "stackbox-admin", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_openstack_cli_create_and_save(cloud: cloudfixture.Cloud, tmp_path: Path) -> None:
    data = qcow2(tmp_path / "cli.qcow2", "32M")
    out = cli(
        cloud, "image", "create", "--file", str(tmp_path / "cli.qcow2"),
        "--disk-format", "qcow2", "--container-format", "bare", "-f", "value", "-c", "id",
        "cli-image",
    )  # fmt: skip
    image_id = out.strip()
    shown = cli(
        cloud, "image", "show", image_id, "-f", "value", "-c", "status", "-c", "virtual_size"
    )
    assert shown.split() == ["active", str(32 * MIB)]
    cli(cloud, "image", "save", "--file", str(tmp_path / "saved"), image_id)
    assert (tmp_path / "saved").read_bytes() == data


# --- a crash mid-upload ---


def test_killed_mid_upload_comes_back_queued_without_orphans(tmp_path: Path) -> None:
    # --no-defaults: the store must hold only this test's images.
    with cloudfixture.as_process(tmp_path, "--no-defaults") as first, glance(first) as client:
        kept = new_image(client)
        assert upload(client, kept["id"], b"survivor").status_code == 204
        image = new_image(client)
        incoming = first.state_dir / "images" / "file" / ".incoming"
        stray = first.state_dir / "images" / "file" / "no-location-names-me"
        stray.write_bytes(b"orphan")
        hold = threading.Event()

        def body() -> Iterator[bytes]:
            yield os.urandom(4 * MIB)
            hold.wait(30)
            yield os.urandom(MIB)

        sender, _ = in_background(lambda: upload(client, image["id"], body()))
        wait_status(client, image["id"], "saving")
        wait_for(lambda: any(incoming.iterdir()))
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        hold.set()
        sender.join(30)
    # The crash left a temporary file and an image marked saving.
    assert any(incoming.iterdir())
    with cloudfixture.as_process(tmp_path, "--no-defaults") as second, glance(second) as client:
        shown = show(client, image["id"])
        assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
        assert store_files(second.state_dir) == [kept["id"]]
        assert show(client, kept["id"])["status"] == "active"
        assert client.get(f"/v2/images/{kept['id']}/file").content == b"survivor"
        assert upload(client, image["id"], b"after the crash").status_code == 204
        assert show(client, image["id"])["status"] == "active"
