"""Credentials and EC2 credentials through the front door: openstacksdk and plain HTTP."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from typing import Any

import httpx
import openstack.exceptions
import pytest

from stackbox.identity import keys
from tests.cloudfixture import Cloud


def _auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def _ids(cloud: Cloud) -> dict[str, str]:
    """Ids of the bootstrap users and projects, looked up as the admin."""
    admin = cloud.token()
    found: dict[str, str] = {}
    with cloud.http() as http:
        for name in ("admin", "demo", "alt_demo"):
            users = http.get(f"/v3/users?name={name}", headers=_auth(admin)).json()["users"]
            found[f"user:{name}"] = users[0]["id"]
            projects = http.get(f"/v3/projects?name={name}", headers=_auth(admin)).json()
            found[f"project:{name}"] = projects["projects"][0]["id"]
    return found


@pytest.fixture(scope="module")
def ids(cloud: Cloud) -> dict[str, str]:
    return _ids(cloud)


@pytest.fixture(scope="module")
def tokens(cloud: Cloud) -> dict[str, str]:
    return {
        "admin": cloud.token(),
        "demo": cloud.token("demo", project="demo"),
        "alt_demo": cloud.token("alt_demo", project="alt_demo"),
    }


def _ec2_blob(access: str | None = None, **more: Any) -> str:
    return json.dumps({"access": access or uuid.uuid4().hex, "secret": "s3cret", **more})


def _post(http: httpx.Client, token: str, body: dict[str, Any]) -> httpx.Response:
    return http.post("/v3/credentials", json={"credential": body}, headers=_auth(token))


def _db_row(cloud: Cloud, credential_id: str) -> tuple[bytes, str]:
    with sqlite3.connect(cloud.state_dir / "stackbox.db") as db:
        row = db.execute(
            "SELECT encrypted_blob, key_hash FROM identity_credential WHERE id = ?",
            (credential_id,),
        ).fetchone()
    assert row is not None
    return bytes(row[0]), row[1]


def _primary_hash(cloud: Cloud) -> str:
    repo = cloud.state_dir / "credential-keys"
    primary = max(int(p.name) for p in repo.iterdir() if p.name.isdigit())
    return hashlib.sha1((repo / str(primary)).read_bytes().strip()).hexdigest()


def test_sdk_ec2_credential_id_is_sha256_of_access_and_blob_is_encrypted(
    cloud: Cloud, admin: Any, ids: dict[str, str]
) -> None:
    access = uuid.uuid4().hex
    blob = _ec2_blob(access)
    cred = admin.identity.create_credential(
        type="ec2", user_id=ids["user:admin"], project_id=ids["project:admin"], blob=blob
    )
    assert cred.id == hashlib.sha256(access.encode()).hexdigest()
    assert json.loads(cred.blob)["access"] == access
    shown = admin.identity.get_credential(cred.id)
    assert json.loads(shown.blob) == json.loads(blob)
    assert shown.project_id == ids["project:admin"]
    stored, key_hash = _db_row(cloud, cred.id)
    assert access.encode() not in stored and b"s3cret" not in stored
    assert key_hash == _primary_hash(cloud)
    admin.identity.delete_credential(cred.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.identity.get_credential(cred.id)


def test_blob_survives_credential_key_rotation(
    cloud: Cloud, admin: Any, ids: dict[str, str]
) -> None:
    before = admin.identity.create_credential(
        type="cert", user_id=ids["user:admin"], blob="certificate-before"
    )
    _, old_hash = _db_row(cloud, before.id)
    keys.KeyRepository(cloud.state_dir / "credential-keys").rotate()
    time.sleep(1.2)  # the server rereads a changed key repository at most once a second
    assert admin.identity.get_credential(before.id).blob == "certificate-before"
    after = admin.identity.create_credential(
        type="cert", user_id=ids["user:admin"], blob="certificate-after"
    )
    _, new_hash = _db_row(cloud, after.id)
    assert new_hash != old_hash
    assert new_hash == _primary_hash(cloud)
    for cred in (before, after):
        admin.identity.delete_credential(cred.id)


@pytest.mark.parametrize(
    ("blob", "field"),
    [
        ("not json at all", "Invalid blob"),
        ('["a list"]', "blob"),
        ('{"secret": "no access"}', "access"),
    ],
)
def test_ec2_credential_needs_json_blob_with_access(
    cloud: Cloud, tokens: dict[str, str], ids: dict[str, str], blob: str, field: str
) -> None:
    with cloud.http() as http:
        response = _post(
            http,
            tokens["admin"],
            {
                "type": "ec2",
                "user_id": ids["user:admin"],
                "project_id": ids["project:admin"],
                "blob": blob,
            },
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == 400 and error["title"] == "Bad Request"
        assert field in error["message"]
        listed = http.get("/v3/credentials?type=ec2", headers=_auth(tokens["admin"])).json()
        assert listed["credentials"] == []


def test_ec2_credential_rules_on_project_and_id(
    cloud: Cloud, tokens: dict[str, str], ids: dict[str, str]
) -> None:
    base = {"type": "ec2", "user_id": ids["user:admin"], "blob": _ec2_blob()}
    with cloud.http() as http:
        no_project = _post(http, tokens["admin"], base)
        assert no_project.status_code == 400
        assert "project_id" in no_project.json()["error"]["message"]
        wrong_id = _post(
            http, tokens["admin"], {**base, "project_id": ids["project:admin"], "id": "abc"}
        )
        assert wrong_id.status_code == 400
        unknown_user = _post(
            http,
            tokens["admin"],
            {**base, "project_id": ids["project:admin"], "user_id": uuid.uuid4().hex},
        )
        assert unknown_user.status_code == 404
        assert "Could not find user" in unknown_user.json()["error"]["message"]
        missing_type = _post(http, tokens["admin"], {"user_id": ids["user:admin"], "blob": "x"})
        assert missing_type.status_code == 400
        assert "type" in missing_type.json()["error"]["message"]
        made = _post(http, tokens["admin"], {**base, "project_id": ids["project:admin"]})
        assert made.status_code == 201
        again = _post(http, tokens["admin"], {**base, "project_id": ids["project:admin"]})
        assert again.status_code == 409
        http.delete(
            f"/v3/credentials/{made.json()['credential']['id']}", headers=_auth(tokens["admin"])
        )


def test_members_manage_and_see_only_their_own_credentials(
    cloud: Cloud, tokens: dict[str, str], ids: dict[str, str]
) -> None:
    demo, alt = tokens["demo"], tokens["alt_demo"]
    with cloud.http() as http:
        mine = _post(http, demo, {"type": "cert", "user_id": ids["user:demo"], "blob": "d"})
        assert mine.status_code == 201
        theirs = _post(http, alt, {"type": "cert", "user_id": ids["user:alt_demo"], "blob": "a"})
        assert theirs.status_code == 201
        mine_id = mine.json()["credential"]["id"]
        theirs_id = theirs.json()["credential"]["id"]

        for_other = _post(
            http, demo, {"type": "cert", "user_id": ids["user:alt_demo"], "blob": "x"}
        )
        assert for_other.status_code == 403
        assert for_other.json()["error"]["title"] == "Forbidden"

        seen = http.get("/v3/credentials", headers=_auth(demo)).json()["credentials"]
        assert [c["id"] for c in seen] == [mine_id]
        filtered = http.get(
            "/v3/credentials", params={"user_id": ids["user:alt_demo"]}, headers=_auth(demo)
        ).json()["credentials"]
        assert filtered == []
        assert http.get(f"/v3/credentials/{theirs_id}", headers=_auth(demo)).status_code == 403
        assert (
            http.patch(
                f"/v3/credentials/{theirs_id}",
                json={"credential": {"blob": "stolen"}},
                headers=_auth(demo),
            ).status_code
            == 403
        )
        assert http.delete(f"/v3/credentials/{theirs_id}", headers=_auth(demo)).status_code == 403
        # Nor may a member hand a credential of theirs to someone else.
        give_away = http.patch(
            f"/v3/credentials/{mine_id}",
            json={"credential": {"user_id": ids["user:alt_demo"]}},
            headers=_auth(demo),
        )
        assert give_away.status_code == 403

        admin_view = http.get(
            "/v3/credentials",
            params={"user_id": ids["user:alt_demo"], "type": "cert"},
            headers=_auth(tokens["admin"]),
        ).json()["credentials"]
        assert [c["id"] for c in admin_view] == [theirs_id]
        assert admin_view[0]["blob"] == "a"
        assert http.delete(f"/v3/credentials/{mine_id}", headers=_auth(demo)).status_code == 204
        assert http.delete(f"/v3/credentials/{theirs_id}", headers=_auth(alt)).status_code == 204


def test_update_keeps_id_and_refuses_inconsistent_changes(
    cloud: Cloud, tokens: dict[str, str], ids: dict[str, str]
) -> None:
    admin = tokens["admin"]
    with cloud.http() as http:
        made = _post(
            http,
            admin,
            {
                "type": "ec2",
                "user_id": ids["user:admin"],
                "project_id": ids["project:admin"],
                "blob": _ec2_blob("first-access"),
            },
        ).json()["credential"]
        url = f"/v3/credentials/{made['id']}"

        def patch(body: dict[str, Any]) -> httpx.Response:
            return http.patch(url, json={"credential": body}, headers=_auth(admin))

        changed = patch({"blob": _ec2_blob("second-access")})
        assert changed.status_code == 200
        assert changed.json()["credential"]["id"] == made["id"]
        assert json.loads(changed.json()["credential"]["blob"])["access"] == "second-access"
        assert patch({"id": "other"}).status_code == 400
        assert patch({"type": "cert"}).status_code == 400
        assert patch({"blob": "not json"}).status_code == 400
        assert patch({"blob": _ec2_blob("x", trust_id="a-trust")}).status_code == 400
        assert patch({"project_id": None}).status_code == 400
        assert patch({}).status_code == 400
        shown = http.get(url, headers=_auth(admin)).json()["credential"]
        assert json.loads(shown["blob"])["access"] == "second-access"
        assert shown["type"] == "ec2" and shown["project_id"] == ids["project:admin"]
        assert http.delete(url, headers=_auth(admin)).status_code == 204
        missing = patch({"blob": "x"})
        assert missing.status_code == 404


def test_os_ec2_lifecycle_as_member(
    cloud: Cloud, tokens: dict[str, str], ids: dict[str, str]
) -> None:
    demo = tokens["demo"]
    user = ids["user:demo"]
    path = f"/v3/users/{user}/credentials/OS-EC2"
    with cloud.http() as http:
        made = http.post(path, json={"tenant_id": ids["project:demo"]}, headers=_auth(demo))
        assert made.status_code == 201, made.text
        cred = made.json()["credential"]
        assert set(cred) == {"user_id", "tenant_id", "access", "secret", "trust_id", "links"}
        assert cred["user_id"] == user and cred["tenant_id"] == ids["project:demo"]
        assert cred["trust_id"] is None
        assert len(cred["access"]) == 32 and len(cred["secret"]) == 32
        assert cred["links"]["self"].endswith(f"{path}/{cred['access']}")

        listed = http.get(path, headers=_auth(demo)).json()["credentials"]
        assert [c["access"] for c in listed] == [cred["access"]]
        assert listed[0]["secret"] == cred["secret"]
        shown = http.get(f"{path}/{cred['access']}", headers=_auth(demo)).json()["credential"]
        assert shown["secret"] == cred["secret"]
        # The same credential through /v3/credentials: type ec2, id from the access key.
        v3_id = hashlib.sha256(cred["access"].encode()).hexdigest()
        v3 = http.get(f"/v3/credentials/{v3_id}", headers=_auth(demo)).json()["credential"]
        assert v3["type"] == "ec2" and json.loads(v3["blob"])["secret"] == cred["secret"]

        assert http.delete(f"{path}/{cred['access']}", headers=_auth(demo)).status_code == 204
        assert http.get(f"{path}/{cred['access']}", headers=_auth(demo)).status_code == 404
        assert http.get(path, headers=_auth(demo)).json()["credentials"] == []


def test_os_ec2_errors(cloud: Cloud, tokens: dict[str, str], ids: dict[str, str]) -> None:
    demo, admin = tokens["demo"], tokens["admin"]
    alt_path = f"/v3/users/{ids['user:alt_demo']}/credentials/OS-EC2"
    demo_path = f"/v3/users/{ids['user:demo']}/credentials/OS-EC2"
    with cloud.http() as http:
        other = http.post(alt_path, json={"tenant_id": ids["project:demo"]}, headers=_auth(demo))
        assert other.status_code == 403
        assert http.get(alt_path, headers=_auth(demo)).status_code == 403
        unknown = f"/v3/users/{uuid.uuid4().hex}/credentials/OS-EC2"
        assert http.get(unknown, headers=_auth(admin)).status_code == 404
        assert (
            http.post(unknown, json={"tenant_id": ids["project:admin"]}, headers=_auth(admin))
        ).status_code == 404
        no_project = http.post(demo_path, json={"tenant_id": uuid.uuid4().hex}, headers=_auth(demo))
        assert no_project.status_code == 404
        assert "Could not find project" in no_project.json()["error"]["message"]
        assert http.post(demo_path, json={}, headers=_auth(demo)).status_code == 400

        alt_cred = http.post(
            alt_path, json={"tenant_id": ids["project:alt_demo"]}, headers=_auth(tokens["alt_demo"])
        ).json()["credential"]
        # Another user's key: forbidden to a member, and not found under another user's path.
        assert http.get(f"{alt_path}/{alt_cred['access']}", headers=_auth(demo)).status_code == 403
        assert (
            http.get(f"{demo_path}/{alt_cred['access']}", headers=_auth(admin)).status_code == 404
        )
        assert (
            http.delete(f"{alt_path}/{alt_cred['access']}", headers=_auth(demo)).status_code == 403
        )
        assert http.get(f"{alt_path}/{alt_cred['access']}", headers=_auth(admin)).status_code == 200
        assert http.get(f"{demo_path}/{uuid.uuid4().hex}", headers=_auth(demo)).status_code == 404
        assert (
            http.delete(f"{alt_path}/{alt_cred['access']}", headers=_auth(admin)).status_code == 204
        )


def test_trust_token_reaches_only_its_projects_ec2_credentials(
    cloud: Cloud, tokens: dict[str, str], ids: dict[str, str]
) -> None:
    admin = _auth(tokens["admin"])
    user = ids["user:admin"]
    path = f"/v3/users/{user}/credentials/OS-EC2"
    with cloud.http() as http:
        trust = http.post(
            "/v3/OS-TRUST/trusts",
            json={
                "trust": {
                    "trustor_user_id": user,
                    "trustee_user_id": ids["user:demo"],
                    "project_id": ids["project:admin"],
                    "impersonation": True,
                    "roles": [{"name": "member"}],
                }
            },
            headers=admin,
        )
        assert trust.status_code == 201, trust.text
        trust_id = trust.json()["trust"]["id"]
        issued = http.post(
            "/v3/auth/tokens",
            json={
                "auth": {
                    "identity": {"methods": ["token"], "token": {"id": tokens["demo"]}},
                    "scope": {"OS-TRUST:trust": {"id": trust_id}},
                }
            },
        )
        assert issued.status_code == 201, issued.text
        delegated = _auth(issued.headers["X-Subject-Token"])

        made = http.post(path, json={"tenant_id": ids["project:admin"]}, headers=delegated)
        assert made.status_code == 201
        assert made.json()["credential"]["trust_id"] == trust_id
        outside = http.post(path, json={"tenant_id": ids["project:demo"]}, headers=delegated)
        assert outside.status_code == 403
        elsewhere = http.post(path, json={"tenant_id": ids["project:demo"]}, headers=admin)
        assert elsewhere.status_code == 201
        seen = http.get(path, headers=delegated).json()["credentials"]
        assert [c["access"] for c in seen] == [made.json()["credential"]["access"]]
        other_access = elsewhere.json()["credential"]["access"]
        assert http.get(f"{path}/{other_access}", headers=delegated).status_code == 403
        v3_seen = http.get("/v3/credentials", headers=delegated).json()["credentials"]
        made_id = hashlib.sha256(made.json()["credential"]["access"].encode()).hexdigest()
        assert made_id in [c["id"] for c in v3_seen]
        assert all(c["project_id"] == ids["project:admin"] for c in v3_seen)
        for cred in (made, elsewhere):
            access = cred.json()["credential"]["access"]
            assert http.delete(f"{path}/{access}", headers=admin).status_code == 204
        http.delete(f"/v3/OS-TRUST/trusts/{trust_id}", headers=admin)
