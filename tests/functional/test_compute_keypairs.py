"""Key pairs (Nova v2.1 os-keypairs): generated and imported, ssh and x509, per user,
admins acting for other users, paging, quotas and errors."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import pkcs12

from tests import cloudfixture


def compute(cloud: cloudfixture.Cloud, token: str, version: str = "2.96") -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/compute/v2.1",
        headers={"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"},
        timeout=30,
    )


@pytest.fixture(scope="module")
def boss(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with compute(cloud, cloud.token()) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with compute(cloud, cloud.token("demo", project="demo")) as client:
        yield client


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with compute(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        yield client


def v(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def fault(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    (name,) = body
    return str(body[name]["message"])


def new_public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line.decode() + " me@host"


def md5_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def user_id(cloud: cloudfixture.Cloud, name: str) -> str:
    return str(cloud.sdk().identity.find_user(name, ignore_missing=False).id)


def name() -> str:
    return f"kp-{uuid.uuid4().hex[:8]}"


def test_sdk_generate_and_import(cloud: cloudfixture.Cloud) -> None:
    conn = cloud.sdk("stackbox")
    made = conn.compute.create_keypair(name="sdk-generated")
    assert made.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(made.private_key.encode(), None)
    public = loaded.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert made.public_key.startswith(public.decode())
    assert made.fingerprint == md5_fingerprint(made.public_key)
    key = new_public_key()
    imported = conn.compute.create_keypair(name="sdk-imported", public_key=key)
    assert imported.public_key == key and imported.fingerprint == md5_fingerprint(key)
    assert {k.name for k in conn.compute.keypairs()} >= {"sdk-generated", "sdk-imported"}
    assert conn.compute.get_keypair("sdk-imported").fingerprint == imported.fingerprint
    conn.compute.delete_keypair("sdk-generated")
    conn.compute.delete_keypair("sdk-imported")
    assert conn.compute.find_keypair("sdk-imported") is None


def test_shapes_per_microversion(demo: httpx.Client) -> None:
    key = new_public_key()
    old_name = name()
    created = demo.post(
        "/os-keypairs", json={"keypair": {"name": old_name, "public_key": key}}, headers=v("2.1")
    )
    assert created.status_code == 200, created.text
    assert set(created.json()["keypair"]) == {"name", "public_key", "fingerprint", "user_id"}
    shown = demo.get(f"/os-keypairs/{old_name}", headers=v("2.1")).json()["keypair"]
    assert set(shown) == {
        "name",
        "public_key",
        "fingerprint",
        "user_id",
        "created_at",
        "deleted",
        "deleted_at",
        "id",
        "updated_at",
    }
    assert shown["deleted"] is False and shown["deleted_at"] is None
    listed = demo.get("/os-keypairs", headers=v("2.1")).json()
    assert set(listed) == {"keypairs"}
    assert all(
        set(k["keypair"]) == {"name", "public_key", "fingerprint"} for k in listed["keypairs"]
    )
    assert demo.delete(f"/os-keypairs/{old_name}", headers=v("2.1")).status_code == 202

    new_name = name()
    created = demo.post("/os-keypairs", json={"keypair": {"name": new_name, "public_key": key}})
    assert created.status_code == 201, created.text
    assert created.json()["keypair"]["type"] == "ssh"
    assert demo.get(f"/os-keypairs/{new_name}").json()["keypair"]["type"] == "ssh"
    assert demo.delete(f"/os-keypairs/{new_name}").status_code == 204


def test_generation_ends_at_292(demo: httpx.Client) -> None:
    fault(demo.post("/os-keypairs", json={"keypair": {"name": name()}}), 400)
    made = demo.post("/os-keypairs", json={"keypair": {"name": name()}}, headers=v("2.91"))
    assert made.status_code == 201 and "private_key" in made.json()["keypair"]
    # 2.92 allows '@' and '.' in names; older versions do not.
    dotted = "me@host.key"
    body = {"keypair": {"name": dotted, "public_key": new_public_key()}}
    fault(demo.post("/os-keypairs", json=body, headers=v("2.91")), 400)
    assert demo.post("/os-keypairs", json=body).status_code == 201


def test_x509(demo: httpx.Client) -> None:
    made = demo.post(
        "/os-keypairs", json={"keypair": {"name": name(), "type": "x509"}}, headers=v("2.2")
    )
    assert made.status_code == 201, made.text
    body = made.json()["keypair"]
    assert body["type"] == "x509"
    cert = x509.load_pem_x509_certificate(body["public_key"].encode())
    digest = cert.fingerprint(hashes.SHA1()).hex()
    assert body["fingerprint"] == ":".join(digest[i : i + 2] for i in range(0, 40, 2))
    key, bundled, _ = pkcs12.load_key_and_certificates(base64.b64decode(body["private_key"]), None)
    assert (
        key is not None
        and bundled is not None
        and bundled.fingerprint(hashes.SHA1()) == cert.fingerprint(hashes.SHA1())
    )
    imported = demo.post(
        "/os-keypairs",
        json={"keypair": {"name": name(), "type": "x509", "public_key": body["public_key"]}},
    )
    assert (
        imported.status_code == 201
        and imported.json()["keypair"]["fingerprint"] == body["fingerprint"]
    )
    bad = {"keypair": {"name": name(), "type": "x509", "public_key": "not a cert"}}
    fault(demo.post("/os-keypairs", json=bad), 400)
    fault(
        demo.post(
            "/os-keypairs", json={"keypair": {"name": name(), "type": "x509"}}, headers=v("2.1")
        ),
        400,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "public_key": "x"},
        {"name": "k" * 256},
        {"name": r"key_/.\@:"},
        {"name": "ok", "public_key": "ssh-rsa JUNK nova@ubuntu"},
        {"name": "ok", "public_key": " "},
        {"name": "ok", "public_key": "ssh-rsa " + "A" * 2048 + " openstack@ubuntu"},
        {"name": "ok", "type": "pgp"},
        {"name": "ok", "extra": 1},
    ],
)
def test_bad_bodies(demo: httpx.Client, body: dict[str, Any]) -> None:
    fault(demo.post("/os-keypairs", json={"keypair": body}, headers=v("2.10")), 400)


def test_duplicate_name_per_user(demo: httpx.Client, alt: httpx.Client) -> None:
    key = new_public_key()
    assert (
        demo.post("/os-keypairs", json={"keypair": {"name": "same", "public_key": key}}).status_code
        == 201
    )
    again = demo.post("/os-keypairs", json={"keypair": {"name": "same", "public_key": key}})
    assert fault(again, 409) == "Key pair 'same' already exists."
    # Another user may use the same name.
    assert (
        alt.post("/os-keypairs", json={"keypair": {"name": "same", "public_key": key}}).status_code
        == 201
    )


def test_other_users_keypair_is_404(
    cloud: cloudfixture.Cloud, demo: httpx.Client, alt: httpx.Client
) -> None:
    demo.post(
        "/os-keypairs", json={"keypair": {"name": "demo-only", "public_key": new_public_key()}}
    )
    message = fault(alt.get("/os-keypairs/demo-only"), 404)
    assert message == f"Keypair demo-only not found for user {user_id(cloud, 'alt_demo')}"
    fault(alt.delete("/os-keypairs/demo-only"), 404)
    assert "demo-only" not in [
        k["keypair"]["name"] for k in alt.get("/os-keypairs").json()["keypairs"]
    ]
    # A non-admin naming another user is refused by policy.
    fault(alt.get("/os-keypairs", params={"user_id": user_id(cloud, "demo")}), 403)
    assert demo.get("/os-keypairs/demo-only").status_code == 200


def test_admin_acts_for_other_user(
    cloud: cloudfixture.Cloud, boss: httpx.Client, demo: httpx.Client
) -> None:
    demo_user = user_id(cloud, "demo")
    body = {"keypair": {"name": "by-admin", "public_key": new_public_key(), "user_id": demo_user}}
    made = boss.post("/os-keypairs", json=body)
    assert made.status_code == 201 and made.json()["keypair"]["user_id"] == demo_user
    assert demo.get("/os-keypairs/by-admin").status_code == 200
    listed = boss.get("/os-keypairs", params={"user_id": demo_user}).json()["keypairs"]
    assert "by-admin" in [k["keypair"]["name"] for k in listed]
    fault(boss.get("/os-keypairs/by-admin"), 404)  # not the admin's own
    assert boss.get("/os-keypairs/by-admin", params={"user_id": demo_user}).status_code == 200
    # Before 2.10 user_id is not part of the body.
    fault(boss.post("/os-keypairs", json=body, headers=v("2.9")), 400)
    assert boss.delete("/os-keypairs/by-admin", params={"user_id": demo_user}).status_code == 204
    fault(demo.get("/os-keypairs/by-admin"), 404)


def test_paging_from_235(cloud: cloudfixture.Cloud) -> None:
    with compute(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        for index in range(3):
            body = {"keypair": {"name": f"page-{index}", "public_key": new_public_key()}}
            assert client.post("/os-keypairs", json=body).status_code == 201
        names = sorted(k["keypair"]["name"] for k in client.get("/os-keypairs").json()["keypairs"])
        first = client.get("/os-keypairs", params={"limit": 2}).json()
        assert [k["keypair"]["name"] for k in first["keypairs"]] == names[:2]
        (link,) = first["keypairs_links"]
        assert link["rel"] == "next" and f"marker={names[1]}" in link["href"]
        rest = client.get("/os-keypairs", params={"marker": names[1]}).json()["keypairs"]
        assert [k["keypair"]["name"] for k in rest] == names[2:]
        fault(client.get("/os-keypairs", params={"marker": "nope"}), 400)
        # Before 2.35 limit is ignored.
        old = client.get("/os-keypairs", params={"limit": 1}, headers=v("2.34")).json()
        assert len(old["keypairs"]) == len(names) and "keypairs_links" not in old


def test_quota_exceeded(cloud: cloudfixture.Cloud, boss: httpx.Client) -> None:
    alt_project = str(cloud.sdk().identity.find_project("alt_demo", ignore_missing=False).id)
    with compute(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        have = len(client.get("/os-keypairs").json()["keypairs"])
        update = boss.put(
            f"/os-quota-sets/{alt_project}", json={"quota_set": {"key_pairs": have + 1}}
        )
        assert update.status_code == 200, update.text
        try:
            body = {"keypair": {"name": name(), "public_key": new_public_key()}}
            assert client.post("/os-keypairs", json=body).status_code == 201
            body = {"keypair": {"name": name(), "public_key": new_public_key()}}
            message = fault(client.post("/os-keypairs", json=body), 403)
            assert message == "Quota exceeded, too many key pairs."
        finally:
            boss.delete(f"/os-quota-sets/{alt_project}")


def test_get_for_boot(cloud: cloudfixture.Cloud, demo: httpx.Client) -> None:
    from stackbox import rest
    from stackbox.compute import keypairs
    from stackbox.db import session as db_session

    demo.post(
        "/os-keypairs", json={"keypair": {"name": "for-boot", "public_key": new_public_key()}}
    )
    database = db_session.Database(f"sqlite:///{cloud.state_dir / 'stackbox.db'}")
    demo_user = user_id(cloud, "demo")
    found = database.run(
        lambda s: keypairs.get_for_boot(s, demo_user, "for-boot").name, write=False
    )
    assert found == "for-boot"
    with pytest.raises(rest.BadRequest, match=r"Invalid key_name provided\."):
        database.run(lambda s: keypairs.get_for_boot(s, demo_user, "missing"), write=False)


def test_cli_keypair_create(cloud: cloudfixture.Cloud, tmp_path: Path) -> None:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    pub = tmp_path / "id.pub"
    pub.write_text(new_public_key() + "\n")
    result = subprocess.run(
        [
            ".venv/bin/openstack",
            "--os-cloud",
            "stackbox",
            "keypair",
            "create",
            "--public-key",
            str(pub),
            "cli-key",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    listed = subprocess.run(
        [
            ".venv/bin/openstack",
            "--os-cloud",
            "stackbox",
            "keypair",
            "list",
            "-f",
            "value",
            "-c",
            "Name",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "cli-key" in listed.stdout.split()
