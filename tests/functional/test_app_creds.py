"""Application credentials and access rules through openstacksdk, keystoneauth and HTTP."""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any

import httpx
import openstack.connection
import openstack.exceptions
import pytest

from stackbox.identity import token_service
from tests import cloudfixture
from tests.cloudfixture import Cloud


class Owner(cloudfixture.ProjectMember):
    """A user who makes application credentials."""

    def __init__(self, cloud: Cloud, admin: Any) -> None:
        super().__init__(cloud, admin)
        self.creds = f"/v3/users/{self.id}/application_credentials"
        self.rules = f"/v3/users/{self.id}/access_rules"

    def sdk(self) -> Any:
        return self.cloud.connect(
            username=self.name, password=self.password, project_name=self.project.name
        )

    def create(self, http: httpx.Client, token: str | None = None, **ref: Any) -> httpx.Response:
        ref.setdefault("name", f"ac-{uuid.uuid4().hex[:8]}")
        return http.post(
            self.creds,
            json={"application_credential": ref},
            headers={"X-Auth-Token": token or self.token()},
        )


def _h(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def _auth(http: httpx.Client, cred_id: str, secret: str) -> httpx.Response:
    body = {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": cred_id, "secret": secret},
            }
        }
    }
    return http.post("/v3/auth/tokens", json=body)


def test_lifecycle_through_openstacksdk(cloud: Cloud, admin: Any) -> None:
    owner = Owner(cloud, admin)
    conn = owner.sdk()
    made = conn.identity.create_application_credential(
        owner.id, name="backup", description="nightly", roles=[{"name": "reader"}]
    )
    assert made.secret and made.project_id == owner.project.id
    assert [r["name"] for r in made.roles] == ["reader"]
    assert made.unrestricted is False
    shown = conn.identity.get_application_credential(owner.id, made.id)
    assert shown.name == "backup" and shown.description == "nightly"
    assert shown.secret is None
    conn.identity.create_application_credential(owner.id, name="other")
    names = sorted(c.name for c in conn.identity.application_credentials(owner.id))
    assert names == ["backup", "other"]
    found = list(conn.identity.application_credentials(owner.id, name="backup"))
    assert [c.id for c in found] == [made.id]
    # Without roles the credential gets every role of the token.
    other = conn.identity.find_application_credential(owner.id, "other")
    assert sorted(r["name"] for r in other.roles) == ["member", "reader"]
    conn.identity.delete_application_credential(owner.id, made.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.identity.get_application_credential(owner.id, made.id)


def test_token_carries_only_the_chosen_roles_and_dies_with_the_credential(
    cloud: Cloud, admin: Any
) -> None:
    owner = Owner(cloud, admin)
    with cloud.http() as http:
        cred = owner.create(http, roles=[{"name": "reader"}]).json()["application_credential"]
    conn: Any = openstack.connection.Connection(
        auth_url=cloud.identity_url,
        auth_type="v3applicationcredential",
        application_credential_id=cred["id"],
        application_credential_secret=cred["secret"],
        region_name="RegionOne",
    )
    access = conn.session.auth.get_access(conn.session)
    assert access.role_names == ["reader"]
    assert access.project_id == owner.project.id and access.user_id == owner.id
    token = access.auth_token
    with cloud.http() as http:
        body = http.get(
            "/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
        ).json()["token"]
        assert body["methods"] == ["application_credential"]
        assert body["application_credential"] == {
            "id": cred["id"],
            "name": cred["name"],
            "restricted": True,
        }
        gone = http.delete(f"{owner.creds}/{cred['id']}", headers=_h(owner.token()))
        assert gone.status_code == 204
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 401
        assert _auth(http, cred["id"], cred["secret"]).status_code == 401


def test_wrong_secret_and_expired_credentials_are_refused(cloud: Cloud, admin: Any) -> None:
    owner = Owner(cloud, admin)
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    with cloud.http() as http:
        made = owner.create(http, expires_at=soon.replace(tzinfo=None).isoformat())
        assert made.status_code == 201
        cred = made.json()["application_credential"]
        assert cred["expires_at"] == soon.replace(tzinfo=None).isoformat()
        assert _auth(http, cred["id"], cred["secret"] + "x").status_code == 401
        issued = _auth(http, cred["id"], cred["secret"])
        assert issued.status_code == 201
        # A token lives no longer than its credential.
        assert issued.json()["token"]["expires_at"] <= cred["expires_at"] + "Z"
        time.sleep(2.2)
        assert _auth(http, cred["id"], cred["secret"]).status_code == 401
        token = issued.headers["X-Subject-Token"]
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 401


def test_authenticate_by_name_and_user(cloud: Cloud, admin: Any) -> None:
    owner = Owner(cloud, admin)
    with cloud.http() as http:
        owner.create(http, name="by-name", secret="chosen-secret")
    conn: Any = openstack.connection.Connection(
        auth_url=cloud.identity_url,
        auth_type="v3applicationcredential",
        application_credential_name="by-name",
        application_credential_secret="chosen-secret",
        username=owner.name,
        user_domain_id="default",
        region_name="RegionOne",
    )
    assert conn.session.auth.get_access(conn.session).project_id == owner.project.id


@pytest.mark.parametrize(
    ("ref", "status"),
    [
        ({"expires_at": "not-a-time"}, 400),
        ({"expires_at": "2010-06-04T08:44:31"}, 400),
        ({"roles": [{"name": "admin"}]}, 400),
        ({"roles": [{"name": "no-such-role"}]}, 404),
        ({"roles": [{"id": "a", "name": "b"}]}, 400),
        ({"name": ""}, 400),
        ({"bogus": 1}, 400),
        ({"access_rules": [{"service": "compute", "path": "no-slash", "method": "GET"}]}, 400),
        ({"access_rules": [{"service": "compute", "path": "/x", "method": "BREW"}]}, 400),
        ({"access_rules": [{"service": "compute", "method": "GET"}]}, 400),
        ({"access_rules": [{"id": uuid.uuid4().hex}]}, 404),
    ],
)
def test_bad_credentials_are_refused(
    cloud: Cloud, admin: Any, ref: dict[str, Any], status: int
) -> None:
    owner = Owner(cloud, admin)
    with cloud.http() as http:
        refused = owner.create(http, **ref)
        assert refused.status_code == status, refused.text
        assert refused.json()["error"]["code"] == status
        listed = http.get(owner.creds, headers=_h(owner.token())).json()
        assert listed["application_credentials"] == []
        assert http.get(owner.rules, headers=_h(owner.token())).json()["access_rules"] == []


def test_names_are_unique_per_user(cloud: Cloud, admin: Any) -> None:
    owner, other = Owner(cloud, admin), Owner(cloud, admin)
    with cloud.http() as http:
        assert owner.create(http, name="same").status_code == 201
        duplicate = owner.create(http, name="same")
        assert duplicate.status_code == 409
        assert duplicate.json()["error"]["title"] == "Conflict"
        assert other.create(http, name="same").status_code == 201


def test_other_users_credentials_are_out_of_reach(cloud: Cloud, admin: Any) -> None:
    owner, other = Owner(cloud, admin), Owner(cloud, admin)
    with cloud.http() as http:
        cred = owner.create(http).json()["application_credential"]
        theirs = _h(other.token())
        # Another user's collection, another user's credential through one's own path,
        # and making one for someone else are all refused.
        assert http.get(owner.creds, headers=theirs).status_code == 403
        assert http.get(f"{owner.creds}/{cred['id']}", headers=theirs).status_code == 403
        assert http.get(f"{other.creds}/{cred['id']}", headers=theirs).status_code == 403
        assert http.delete(f"{other.creds}/{cred['id']}", headers=theirs).status_code == 403
        for_owner = http.post(
            owner.creds, json={"application_credential": {"name": "x"}}, headers=theirs
        )
        assert for_owner.status_code == 403
        assert (
            http.get(f"{owner.creds}/{uuid.uuid4().hex}", headers=_h(owner.token())).status_code
            == 404
        )
        # A system-scoped token cannot make one (there is no project to bind it to).
        system = cloud.token(project=None, system={"all": True})
        admin_id = admin.session.auth.get_access(admin.session).user_id
        made = http.post(
            f"/v3/users/{admin_id}/application_credentials",
            json={"application_credential": {"name": "sys"}},
            headers=_h(system),
        )
        assert made.status_code == 403
        # Administrators may read and delete anyone's.
        admin_token = _h(cloud.token())
        assert http.get(owner.creds, headers=admin_token).status_code == 200
        assert http.delete(f"{owner.creds}/{cred['id']}", headers=admin_token).status_code == 204


def test_restricted_credentials_cannot_manage_credentials(cloud: Cloud, admin: Any) -> None:
    owner = Owner(cloud, admin)
    with cloud.http() as http:
        restricted = owner.create(http).json()["application_credential"]
        free = owner.create(http, unrestricted=True).json()["application_credential"]
        r_token = _auth(http, restricted["id"], restricted["secret"]).headers["X-Subject-Token"]
        u_token = _auth(http, free["id"], free["secret"]).headers["X-Subject-Token"]
        assert owner.create(http, token=r_token).status_code == 403
        target = f"{owner.creds}/{free['id']}"
        assert http.delete(target, headers=_h(r_token)).status_code == 403
        # Reading is allowed; an unrestricted credential may make and delete others.
        assert http.get(owner.creds, headers=_h(r_token)).status_code == 200
        child = owner.create(http, token=u_token)
        assert child.status_code == 201
        child_url = f"{owner.creds}/{child.json()['application_credential']['id']}"
        assert http.delete(child_url, headers=_h(u_token)).status_code == 204


def test_trust_tokens_cannot_manage_credentials(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Owner(cloud, admin), Owner(cloud, admin)
    with cloud.http() as http:
        trust = http.post(
            "/v3/OS-TRUST/trusts",
            json={
                "trust": {
                    "trustor_user_id": trustor.id,
                    "trustee_user_id": trustee.id,
                    "project_id": trustor.project.id,
                    "impersonation": True,
                    "roles": [{"name": "member"}],
                }
            },
            headers=_h(trustor.token()),
        ).json()["trust"]
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": trustee.id, "password": trustee.password}},
                },
                "scope": {"OS-TRUST:trust": {"id": trust["id"]}},
            }
        }
        token = http.post("/v3/auth/tokens", json=body).headers["X-Subject-Token"]
        # The impersonated trustor is the token user, yet delegation may not mint credentials.
        refused = trustor.create(http, token=token)
        assert refused.status_code == 403
        assert http.get(trustor.creds, headers=_h(token)).status_code == 403
        assert http.get(trustor.rules, headers=_h(token)).status_code == 403


def test_access_rules_are_shared_listed_and_deleted_when_unused(cloud: Cloud, admin: Any) -> None:
    owner, other = Owner(cloud, admin), Owner(cloud, admin)
    rule = {"service": "compute", "path": "/v2.1/servers/*/ips", "method": "GET"}
    with cloud.http() as http:
        first = owner.create(http, access_rules=[rule]).json()["application_credential"]
        made_rule = first["access_rules"][0]
        assert {k: made_rule[k] for k in rule} == rule
        # The same rule again, or by id, is the same rule.
        second = owner.create(http, access_rules=[dict(rule)]).json()["application_credential"]
        third = owner.create(http, access_rules=[{"id": made_rule["id"]}]).json()[
            "application_credential"
        ]
        assert second["access_rules"][0]["id"] == third["access_rules"][0]["id"] == made_rule["id"]
        shown = http.get(f"{owner.creds}/{third['id']}", headers=_h(owner.token())).json()
        assert shown["application_credential"]["access_rules"] == [made_rule]

        listed = http.get(owner.rules, headers=_h(owner.token())).json()["access_rules"]
        assert [r["id"] for r in listed] == [made_rule["id"]]
        one = http.get(f"{owner.rules}/{made_rule['id']}", headers=_h(owner.token()))
        assert one.json()["access_rule"]["path"] == rule["path"]
        filtered = http.get(owner.rules, params={"service": "image"}, headers=_h(owner.token()))
        assert filtered.json()["access_rules"] == []
        # Someone else's rules are neither listed nor shown to them, nor reusable.
        assert http.get(owner.rules, headers=_h(other.token())).status_code == 403
        mine = f"{other.rules}/{made_rule['id']}"
        assert http.get(mine, headers=_h(other.token())).status_code == 404
        stolen = other.create(http, access_rules=[{"id": made_rule["id"]}])
        assert stolen.status_code == 404

        url = f"{owner.rules}/{made_rule['id']}"
        in_use = http.delete(url, headers=_h(owner.token()))
        assert in_use.status_code == 403
        for cred in (first, second, third):
            gone = http.delete(f"{owner.creds}/{cred['id']}", headers=_h(owner.token()))
            assert gone.status_code == 204
        assert http.delete(url, headers=_h(owner.token())).status_code == 204
        assert http.get(owner.rules, headers=_h(owner.token())).json()["access_rules"] == []
        assert http.get(url, headers=_h(owner.token())).status_code == 404


def test_access_rule_paths_match_as_keystonemiddleware_does() -> None:
    rules = (
        {"service": "compute", "path": "/v2.1/servers/*/ips", "method": "GET"},
        {"service": "identity", "path": "/v3/users/{user_id}/**", "method": "GET"},
    )
    allow = token_service.access_rules_allow
    assert allow(rules, "compute", "GET", "/v2.1/servers/abc/ips")
    assert not allow(rules, "compute", "GET", "/v2.1/servers/abc/def/ips")
    assert not allow(rules, "compute", "POST", "/v2.1/servers/abc/ips")
    assert not allow(rules, "network", "GET", "/v2.1/servers/abc/ips")
    assert not allow(rules, "compute", "GET", "/v2x1/servers/abc/ips")
    assert allow(rules, "identity", "GET", "/v3/users/u1/application_credentials/x")
    assert not allow(rules, "identity", "GET", "/v3/projects")
    # Validating a token is always allowed; no rules at all means no limit.
    assert allow(rules, "identity", "GET", "/v3/auth/tokens")
    assert allow(None, "identity", "DELETE", "/v3/projects/p")
    assert not allow((), "identity", "GET", "/v3/projects")


def test_access_rules_limit_what_a_token_may_do_on_the_identity_api(
    cloud: Cloud, admin: Any
) -> None:
    owner = Owner(cloud, admin)
    rule = {"service": "identity", "path": f"/v3/users/{owner.id}", "method": "GET"}
    with cloud.http() as http:
        cred = owner.create(http, access_rules=[rule]).json()["application_credential"]
        token = _auth(http, cred["id"], cred["secret"]).headers["X-Subject-Token"]
        assert http.get(f"/v3/users/{owner.id}", headers=_h(token)).status_code == 200
        check = http.get(
            "/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
        )
        assert check.status_code == 200
        assert http.get(f"/v3/projects/{owner.project.id}", headers=_h(token)).status_code == 401


def test_credentials_go_with_the_role_the_user_or_the_project(cloud: Cloud, admin: Any) -> None:
    """Keystone deletes application credentials when their basis disappears."""
    member = admin.identity.find_role("member")
    admin_headers = _h(cloud.token())
    with cloud.http() as http:
        # Losing the role on the project.
        owner = Owner(cloud, admin)
        cred = owner.create(http).json()["application_credential"]
        admin.identity.unassign_project_role_from_user(owner.project, owner.id, member)
        assert http.get(f"{owner.creds}/{cred['id']}", headers=admin_headers).status_code == 404
        assert _auth(http, cred["id"], cred["secret"]).status_code == 401
        # The user being disabled.
        owner = Owner(cloud, admin)
        cred = owner.create(http).json()["application_credential"]
        admin.identity.update_user(owner.id, is_enabled=False)
        assert http.get(f"{owner.creds}/{cred['id']}", headers=admin_headers).status_code == 404
        # The project being deleted takes its credentials and trusts.
        owner = Owner(cloud, admin)
        cred = owner.create(http).json()["application_credential"]
        trustee = admin.identity.create_user(name=f"t-{uuid.uuid4().hex[:8]}", password="pw")
        trust = http.post(
            "/v3/OS-TRUST/trusts",
            headers=_h(owner.token()),
            json={
                "trust": {
                    "trustor_user_id": owner.id,
                    "trustee_user_id": trustee.id,
                    "project_id": owner.project.id,
                    "impersonation": False,
                    "roles": [{"name": "member"}],
                }
            },
        )
        assert trust.status_code == 201, trust.text
        admin.identity.delete_project(owner.project)
        assert http.get(f"{owner.creds}/{cred['id']}", headers=admin_headers).status_code == 404
        gone = http.get(f"/v3/OS-TRUST/trusts/{trust.json()['trust']['id']}", headers=admin_headers)
        assert gone.status_code == 404
