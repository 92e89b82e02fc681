"""Image import: staging, glance-direct and copy-image, store discovery; and, on a
`stackbox up` process started with two stores, quotas and a size cap: choosing
stores, copies, a store that fails, quotas and caps.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import cloudfixture
from tests.functional.imagetransfer import (
    MIB,
    OCTET,
    glance,
    import_,
    member_token,
    new_image,
    qcow2,
    show,
    stage,
    store_files,
    upload,
    wait_for,
    wait_status,
)


@pytest.fixture(scope="module")
def admin_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with glance(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def demo_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with glance(cloud, member_token(cloud)) as client:
        yield client


# --- staging and import ---


def test_import_info(admin_http: httpx.Client) -> None:
    info = admin_http.get("/v2/info/import").json()
    assert info["import-methods"]["value"] == ["glance-direct", "copy-image", "glance-download"]
    assert info["import-methods"]["type"] == "array"


def test_glance_direct_import(cloud: cloudfixture.Cloud, admin_http: httpx.Client) -> None:
    data = os.urandom(2 * MIB + 5)
    image = new_image(admin_http)
    assert stage(admin_http, image["id"], data).status_code == 204
    staged = show(admin_http, image["id"])
    assert staged["status"] == "uploading"
    assert staged["size"] == len(data)
    assert (cloud.state_dir / "images" / "_staging" / image["id"]).read_bytes() == data
    assert admin_http.get(f"/v2/images/{image['id']}/file").status_code == 204

    accepted = import_(admin_http, image["id"])
    assert accepted.status_code == 202
    done = wait_status(admin_http, image["id"], "active")
    assert done["checksum"] == hashlib.md5(data).hexdigest()
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert done["stores"] == "file"
    assert done["os_glance_importing_to_stores"] == ""
    assert done["os_glance_failed_import"] == ""
    assert "os_glance_import_task" not in done
    assert admin_http.get(f"/v2/images/{image['id']}/file").content == data
    # The staged file goes right after the commit that made the image active.
    staged_file = cloud.state_dir / "images" / "_staging" / image["id"]
    wait_for(lambda: not staged_file.exists())


def test_import_refusals(admin_http: httpx.Client) -> None:
    image = new_image(admin_http)
    not_staged = import_(admin_http, image["id"])
    assert not_staged.status_code == 409
    assert "staged" in not_staged.json()["message"]
    assert import_(admin_http, image["id"], method={"name": "web-magic"}).status_code == 400
    assert admin_http.post(f"/v2/images/{image['id']}/import", json={}).status_code == 400
    bad_flag = import_(admin_http, image["id"], all_stores="yes")
    assert bad_flag.status_code == 400
    copy_queued = import_(admin_http, image["id"], method={"name": "copy-image"})
    assert copy_queued.status_code == 409
    assert show(admin_http, image["id"])["status"] == "queued"


def test_import_of_mismatched_data_fails_back_to_queued(
    cloud: cloudfixture.Cloud, admin_http: httpx.Client, tmp_path: Path
) -> None:
    image = new_image(admin_http, "raw")
    assert stage(admin_http, image["id"], qcow2(tmp_path / "d.qcow2")).status_code == 204
    assert import_(admin_http, image["id"]).status_code == 202
    failed = wait_for(
        lambda: (i := show(admin_http, image["id"])).get("os_glance_failed_import") and i
    )
    assert failed["status"] == "queued"
    assert failed["os_glance_failed_import"] == "file"
    assert failed["size"] is None
    assert "stores" not in failed
    assert not (cloud.state_dir / "images" / "_staging" / image["id"]).exists()
    assert image["id"] not in " ".join(store_files(cloud.state_dir))


def test_staging_is_owner_only(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    image = new_image(admin_http, visibility="private")
    assert stage(demo_http, image["id"], b"x").status_code == 404
    assert show(admin_http, image["id"])["status"] == "queued"


def test_copy_image_with_one_store_has_nothing_to_do(admin_http: httpx.Client) -> None:
    image = new_image(admin_http)
    assert upload(admin_http, image["id"], b"only copy").status_code == 204
    answer = import_(admin_http, image["id"], method={"name": "copy-image"}, all_stores=True)
    assert answer.status_code == 202
    shown = show(admin_http, image["id"])
    assert shown["os_glance_importing_to_stores"] == ""
    assert shown["stores"] == "file"


def test_stores_info(admin_http: httpx.Client, demo_http: httpx.Client) -> None:
    listed = demo_http.get("/v2/info/stores").json()["stores"]
    assert [(s["id"], s.get("default")) for s in listed] == [("file", "true")]
    assert demo_http.get("/v2/info/stores/detail").status_code == 403
    detail = admin_http.get("/v2/info/stores/detail").json()["stores"]
    assert detail[0]["type"] == "file"
    assert detail[0]["properties"]["data_dir"].endswith("images/file")


# --- stores, quotas and size caps (a `stackbox up` process with those settings) ---


QUOTA = 8 * MIB
STAGE_QUOTA = 4 * MIB
CAP = 3 * MIB


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.ProcessCloud]:
    env = {
        "STACKBOX_IMAGE_STORES": "file,fast",
        "STACKBOX_IMAGE_QUOTA_IMAGE_SIZE_TOTAL": str(QUOTA),
        "STACKBOX_IMAGE_QUOTA_IMAGE_STAGE_TOTAL": str(STAGE_QUOTA),
        "STACKBOX_IMAGE_IMAGE_SIZE_CAP": str(CAP),
    }
    with cloudfixture.as_process(tmp_path_factory.mktemp("configured"), env=env) as running:
        yield running


@pytest.fixture
def project_member(configured: cloudfixture.ProcessCloud) -> Iterator[httpx.Client]:
    """A member of a fresh project (so each test has the whole quota)."""
    member = cloudfixture.ProjectMember(configured, configured.sdk())
    with glance(configured, member.token()) as client:
        yield client


def test_stores_are_listed_with_the_default(configured: cloudfixture.ProcessCloud) -> None:
    with glance(configured) as client:
        listed = client.get("/v2/info/stores").json()["stores"]
    assert [(s["id"], s.get("default")) for s in listed] == [("file", "true"), ("fast", None)]


def test_upload_to_a_chosen_store(
    configured: cloudfixture.ProcessCloud, project_member: httpx.Client
) -> None:
    image = new_image(project_member)
    sent = upload(project_member, image["id"], b"fast bytes", **{"X-Image-Meta-Store": "fast"})
    assert sent.status_code == 204
    assert show(project_member, image["id"])["stores"] == "fast"
    assert (configured.state_dir / "images" / "fast" / image["id"]).read_bytes() == b"fast bytes"
    assert not (configured.state_dir / "images" / "file" / image["id"]).exists()


def test_copy_image_to_all_stores(
    configured: cloudfixture.ProcessCloud, project_member: httpx.Client
) -> None:
    image = new_image(project_member)
    assert upload(project_member, image["id"], b"copy me").status_code == 204
    # copy-image is for admins.
    assert import_(project_member, image["id"], method={"name": "copy-image"}).status_code == 403
    with glance(configured) as admin:
        answer = import_(admin, image["id"], method={"name": "copy-image"}, all_stores=True)
        assert answer.status_code == 202
        done = wait_for(
            lambda: (
                (i := show(admin, image["id"])).get("os_glance_importing_to_stores") == ""
                and "os_glance_import_task" not in i
                and i
            )
        )
    assert sorted(done["stores"].split(",")) == ["fast", "file"]
    assert done["os_glance_failed_import"] == ""
    assert done["status"] == "active"
    for store in ("file", "fast"):
        assert (configured.state_dir / "images" / store / image["id"]).read_bytes() == b"copy me"
    # An admin may drop one store's copy, but never the last one.
    with glance(configured) as admin:
        assert admin.delete(f"/v2/stores/fast/{image['id']}").status_code == 204
        assert show(admin, image["id"])["stores"] == "file"
        assert not (configured.state_dir / "images" / "fast" / image["id"]).exists()
        assert admin.delete(f"/v2/stores/fast/{image['id']}").status_code == 404
        assert admin.delete(f"/v2/stores/file/{image['id']}").status_code == 403
        assert admin.delete(f"/v2/stores/nowhere/{image['id']}").status_code == 409
    assert project_member.delete(f"/v2/stores/file/{image['id']}").status_code == 403


def test_glance_direct_to_chosen_stores(project_member: httpx.Client) -> None:
    image = new_image(project_member)
    assert stage(project_member, image["id"], b"to both").status_code == 204
    assert import_(project_member, image["id"], stores=["fast", "file"]).status_code == 202
    done = wait_status(project_member, image["id"], "active")
    wait_for(lambda: show(project_member, image["id"])["os_glance_importing_to_stores"] == "")
    assert sorted(show(project_member, image["id"])["stores"].split(",")) == ["fast", "file"]
    assert done["size"] == len(b"to both")
    unknown = new_image(project_member)
    assert stage(project_member, unknown["id"], b"x").status_code == 204
    assert import_(project_member, unknown["id"], stores=["nowhere"]).status_code == 409


@contextlib.contextmanager
def broken_store(cloud: cloudfixture.Cloud, store: str) -> Iterator[None]:
    """Make a store unable to take data: its incoming directory becomes a plain file."""
    incoming = cloud.state_dir / "images" / store / ".incoming"
    shutil.rmtree(incoming)
    incoming.write_bytes(b"")
    try:
        yield
    finally:
        incoming.unlink()
        incoming.mkdir(mode=0o700)


def test_import_where_one_store_fails(
    configured: cloudfixture.ProcessCloud, project_member: httpx.Client
) -> None:
    lenient = new_image(project_member)
    strict = new_image(project_member)
    for image in (lenient, strict):
        assert stage(project_member, image["id"], b"half lucky").status_code == 204
    with broken_store(configured, "fast"):
        assert (
            import_(
                project_member, lenient["id"], all_stores=True, all_stores_must_succeed=False
            ).status_code
            == 202
        )
        done = wait_for(
            lambda: (
                (i := show(project_member, lenient["id"]))["os_glance_importing_to_stores"] == ""
                and "os_glance_import_task" not in i
                and i
            )
        )
        assert done["status"] == "active"
        assert done["stores"] == "file"
        assert done["os_glance_failed_import"] == "fast"

        assert import_(project_member, strict["id"], all_stores=True).status_code == 202
        failed = wait_for(
            lambda: (i := show(project_member, strict["id"]))["os_glance_failed_import"] and i
        )
        assert failed["status"] == "queued"
        assert failed["os_glance_failed_import"] == "fast"
        assert "stores" not in failed
    assert not (configured.state_dir / "images" / "file" / strict["id"]).exists()


def test_quota_stops_uploads(
    configured: cloudfixture.ProcessCloud, project_member: httpx.Client
) -> None:
    for _ in range(3):
        image = new_image(project_member)
        assert upload(project_member, image["id"], os.urandom(QUOTA // 3 - 1000)).status_code == 204
    announced = new_image(project_member)
    refused = upload(project_member, announced["id"], os.urandom(MIB))
    assert refused.status_code == 413
    assert "image_size_total" in refused.json()["message"]
    assert show(project_member, announced["id"])["status"] == "queued"
    # Without a Content-Length the quota is checked while the data streams.
    streamed = new_image(project_member)
    before = store_files(configured.state_dir)
    refused = upload(project_member, streamed["id"], iter([bytes(256 * 1024)] * 8))
    assert refused.status_code == 413
    assert "quota" in refused.json()["message"]
    shown = show(project_member, streamed["id"])
    assert (shown["status"], shown["size"]) == ("queued", None)
    assert store_files(configured.state_dir) == before


def test_size_cap(configured: cloudfixture.ProcessCloud, project_member: httpx.Client) -> None:
    image = new_image(project_member)
    refused = upload(project_member, image["id"], iter([bytes(MIB)] * (CAP // MIB + 1)))
    assert refused.status_code == 413
    assert "too large" in refused.json()["message"]
    assert show(project_member, image["id"])["status"] == "queued"
    staged = new_image(project_member)
    refused = stage(project_member, staged["id"], bytes(CAP + 1))
    assert refused.status_code == 413
    assert show(project_member, staged["id"])["status"] == "queued"


def test_stage_quota(project_member: httpx.Client) -> None:
    first = new_image(project_member)
    assert stage(project_member, first["id"], bytes(CAP - 1000)).status_code == 204
    second = new_image(project_member)
    refused = stage(project_member, second["id"], bytes(CAP - 1000))
    assert refused.status_code == 413
    assert "image_stage_total" in refused.json()["message"]
    assert show(project_member, second["id"])["status"] == "queued"
    # Without a Content-Length the staging quota is checked while the data streams.
    streamed = new_image(project_member)
    refused = project_member.put(
        f"/v2/images/{streamed['id']}/stage", content=iter([bytes(MIB)] * 3), headers=OCTET
    )
    assert refused.status_code == 413
    assert "staging quota" in refused.json()["message"]
    assert show(project_member, streamed["id"])["status"] == "queued"
