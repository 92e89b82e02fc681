"""OS-TRUST through the front door: creating, listing, consuming and losing trusts."""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any

import httpx
import openstack.connection
import pytest

from tests import cloudfixture
from tests.cloudfixture import Cloud

TRUSTS = "/v3/OS-TRUST/trusts"


class Party(cloudfixture.ProjectMember):
    """A trustor or trustee."""

    def trust_token(self, trust_id: str) -> httpx.Response:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": self.id, "password": self.password}},
                },
                "scope": {"OS-TRUST:trust": {"id": trust_id}},
            }
        }
        with self.cloud.http() as http:
            return http.post("/v3/auth/tokens", json=body)


def _h(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def _trust(trustor: Party, trustee: Party, **extra: Any) -> dict[str, Any]:
    return {
        "trust": {
            "trustor_user_id": trustor.id,
            "trustee_user_id": trustee.id,
            "project_id": trustor.project.id,
            "impersonation": False,
            "roles": [{"name": "member"}],
            **extra,
        }
    }


def _create(cloud: Cloud, trustor: Party, trustee: Party, **extra: Any) -> dict[str, Any]:
    with cloud.http() as http:
        made = http.post(
            TRUSTS, json=_trust(trustor, trustee, **extra), headers=_h(trustor.token())
        )
    assert made.status_code == 201, made.text
    return made.json()["trust"]  # type: ignore[no-any-return]


def test_trust_token_works_until_the_trust_is_deleted(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    trust = _create(cloud, trustor, trustee)
    assert trust["roles"][0]["name"] == "member" and trust["remaining_uses"] is None
    assert trust["links"]["self"].endswith(f"{TRUSTS}/{trust['id']}")

    issued = trustee.trust_token(trust["id"])
    assert issued.status_code == 201, issued.text
    body = issued.json()["token"]
    assert body["OS-TRUST:trust"] == {
        "id": trust["id"],
        "impersonation": False,
        "trustee_user": {"id": trustee.id},
        "trustor_user": {"id": trustor.id},
    }
    assert body["user"]["id"] == trustee.id
    assert body["project"]["id"] == trustor.project.id
    assert {r["name"] for r in body["roles"]} == {"member", "reader"}
    token = issued.headers["X-Subject-Token"]

    with cloud.http() as http:
        # The trustee may read the trust with its trust token.
        assert http.get(f"{TRUSTS}/{trust['id']}", headers=_h(token)).status_code == 200
        gone = http.delete(f"{TRUSTS}/{trust['id']}", headers=_h(trustor.token()))
        assert gone.status_code == 204
        assert http.get(f"{TRUSTS}/{trust['id']}", headers=_h(trustor.token())).status_code == 404
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 401
        check = http.get(
            "/v3/auth/tokens", headers={"X-Auth-Token": cloud.token(), "X-Subject-Token": token}
        )
        assert check.status_code == 404
        listed = http.get(
            TRUSTS, params={"trustor_user_id": trustor.id}, headers=_h(trustor.token())
        )
        assert listed.json()["trusts"] == []
        again = http.delete(f"{TRUSTS}/{trust['id']}", headers=_h(trustor.token()))
        assert again.status_code == 404
    refused = trustee.trust_token(trust["id"])
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == f"Could not find trust: {trust['id']}."


def test_impersonation_makes_the_trustor_the_token_user(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    trust = _create(cloud, trustor, trustee, impersonation=True)
    conn: Any = openstack.connection.Connection(
        auth_url=cloud.identity_url,
        username=trustee.name,
        password=trustee.password,
        user_domain_id="default",
        trust_id=trust["id"],
        region_name="RegionOne",
    )
    access = conn.session.auth.get_access(conn.session)
    assert access.user_id == trustor.id
    assert access.trust_scoped and access.trust_id == trust["id"]
    assert access.trustor_user_id == trustor.id and access.trustee_user_id == trustee.id
    assert access.project_id == trustor.project.id
    # The session works against the API as the trustor.
    assert conn.identity.get_project(trustor.project.id).id == trustor.project.id


def test_remaining_uses_count_down_to_refusal(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    trust = _create(cloud, trustor, trustee, remaining_uses=2)
    outsider = Party(cloud, admin)
    # Someone who is not the trustee is refused and spends nothing.
    assert outsider.trust_token(trust["id"]).status_code == 403
    url = f"{TRUSTS}/{trust['id']}"
    first = trustee.trust_token(trust["id"])
    assert first.status_code == 201
    with cloud.http() as http:
        assert http.get(url, headers=_h(trustor.token())).json()["trust"]["remaining_uses"] == 1
    last = trustee.trust_token(trust["id"])
    assert last.status_code == 201
    assert trustee.trust_token(trust["id"]).status_code == 401
    with cloud.http() as http:
        # A used-up trust is not found, but the token of its last use still works.
        assert http.get(url, headers=_h(trustor.token())).status_code == 404
        token = last.headers["X-Subject-Token"]
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 200


def test_trustor_losing_the_role_invalidates_trust_tokens(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    extra_role = admin.identity.create_role(name=f"r-{uuid.uuid4().hex[:8]}")
    admin.identity.assign_project_role_to_user(trustor.project, trustor.id, extra_role)
    trust = _create(cloud, trustor, trustee, roles=[{"id": extra_role.id}])
    issued = trustee.trust_token(trust["id"])
    assert issued.status_code == 201
    assert [r["id"] for r in issued.json()["token"]["roles"]] == [extra_role.id]
    token = issued.headers["X-Subject-Token"]
    with cloud.http() as http:
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 200
        admin.identity.unassign_project_role_from_user(trustor.project, trustor.id, extra_role)
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 401
    refused = trustee.trust_token(trust["id"])
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "Trustee has no delegated roles."


def test_expired_trust_is_not_found(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    trust = _create(cloud, trustor, trustee, expires_at=soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    issued = trustee.trust_token(trust["id"])
    assert issued.status_code == 201
    # The token lives no longer than the trust.
    assert issued.json()["token"]["expires_at"] <= trust["expires_at"]
    time.sleep(2.2)
    with cloud.http() as http:
        shown = http.get(f"{TRUSTS}/{trust['id']}", headers=_h(trustor.token()))
        assert shown.status_code == 404
        token = issued.headers["X-Subject-Token"]
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 401
    assert trustee.trust_token(trust["id"]).status_code == 401


def test_trust_roles_can_be_listed_and_checked(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    trust = _create(cloud, trustor, trustee)
    member = admin.identity.find_role("member")
    reader = admin.identity.find_role("reader")
    base = f"{TRUSTS}/{trust['id']}/roles"
    with cloud.http() as http:
        for who in (trustor.token(), trustee.token()):
            listed = http.get(base, headers=_h(who))
            assert listed.status_code == 200
            assert [r["id"] for r in listed.json()["roles"]] == [member.id]
            one = http.get(f"{base}/{member.id}", headers=_h(who))
            assert one.json()["role"]["links"]["self"].endswith(f"/v3/roles/{member.id}")
            assert http.head(f"{base}/{member.id}", headers=_h(who)).status_code == 200
            # reader is implied by member but was not delegated by name.
            assert http.get(f"{base}/{reader.id}", headers=_h(who)).status_code == 404
            assert http.head(f"{base}/{reader.id}", headers=_h(who)).status_code == 404


def test_who_may_see_list_and_delete_a_trust(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    outsider = Party(cloud, admin)
    trust = _create(cloud, trustor, trustee)
    url = f"{TRUSTS}/{trust['id']}"
    with cloud.http() as http:
        mine = http.get(TRUSTS, params={"trustor_user_id": trustor.id}, headers=_h(trustor.token()))
        assert [t["id"] for t in mine.json()["trusts"]] == [trust["id"]]
        assert "roles" not in mine.json()["trusts"][0]
        theirs = http.get(
            TRUSTS, params={"trustee_user_id": trustee.id}, headers=_h(trustee.token())
        )
        assert [t["id"] for t in theirs.json()["trusts"]] == [trust["id"]]
        spying = http.get(
            TRUSTS, params={"trustor_user_id": trustor.id}, headers=_h(outsider.token())
        )
        assert spying.status_code == 403
        # Unfiltered listing is for administrators.
        assert http.get(TRUSTS, headers=_h(trustor.token())).status_code == 403
        everything = http.get(TRUSTS, headers=_h(cloud.token()))
        assert trust["id"] in [t["id"] for t in everything.json()["trusts"]]
        assert http.get(url, headers=_h(outsider.token())).status_code == 403
        assert http.get(url, headers=_h(trustee.token())).status_code == 200
        assert http.delete(url, headers=_h(trustee.token())).status_code == 403
        assert http.delete(url, headers=_h(outsider.token())).status_code == 403
        assert (
            http.patch(url, json=_trust(trustor, trustee), headers=_h(trustor.token())).status_code
            == 405
        )
        assert http.get(url, headers=_h(trustor.token())).status_code == 200


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"trustor_user_id": "someone-else"}, 403),
        ({"roles": [{"name": "admin"}]}, 404),
        ({"roles": [{"name": "no-such-role"}]}, 404),
        ({"roles": []}, 403),
        ({"trustee_user_id": uuid.uuid4().hex}, 404),
        ({"project_id": uuid.uuid4().hex}, 404),
        ({"expires_at": "bad.123Z"}, 400),
        ({"expires_at": ""}, 400),
        ({"expires_at": "2010-06-04T08:44:31.999999Z"}, 400),
        ({"remaining_uses": 0}, 400),
        ({"remaining_uses": 7.2}, 400),
        ({"impersonation": None}, 400),
        ({"roles": [{"id": "x", "name": "y"}]}, 400),
        ({"allow_redelegation": True, "redelegation_count": 4}, 403),
        ({"allow_redelegation": True, "remaining_uses": 3}, 400),
    ],
)
def test_bad_trusts_are_refused(
    cloud: Cloud, admin: Any, change: dict[str, Any], status: int
) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    body = _trust(trustor, trustee)
    body["trust"].update(change)
    body["trust"] = {k: v for k, v in body["trust"].items() if v is not None}
    with cloud.http() as http:
        refused = http.post(TRUSTS, json=body, headers=_h(trustor.token()))
        assert refused.status_code == status, refused.text
        assert refused.json()["error"]["code"] == status
        listed = http.get(
            TRUSTS, params={"trustor_user_id": trustor.id}, headers=_h(trustor.token())
        )
        assert listed.json()["trusts"] == []


def test_redelegation_follows_the_chain(cloud: Cloud, admin: Any) -> None:
    trustor, middle, last = (Party(cloud, admin) for _ in range(3))
    extra = admin.identity.create_role(name=f"r-{uuid.uuid4().hex[:8]}")
    admin.identity.assign_project_role_to_user(trustor.project, trustor.id, extra)
    first = _create(cloud, trustor, middle, impersonation=True, allow_redelegation=True)
    assert first["redelegation_count"] == 3
    middle_token = middle.trust_token(first["id"]).headers["X-Subject-Token"]
    with cloud.http() as http:
        second = http.post(TRUSTS, json=_trust(trustor, last), headers=_h(middle_token))
        assert second.status_code == 201, second.text
        child = second.json()["trust"]
        assert child["redelegated_trust_id"] == first["id"]
        assert child["redelegation_count"] == 0
        # The child may not grant more than its parent, even what the trustor holds.
        wider = _trust(trustor, last, roles=[{"id": extra.id}])
        refused = http.post(TRUSTS, json=wider, headers=_h(middle_token))
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == (
            "Some of requested roles are not in redelegated trust"
        )
        last_token = last.trust_token(child["id"])
        assert last_token.status_code == 201
        token = last_token.headers["X-Subject-Token"]
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 200
        # Deleting the first trust takes the redelegated one and its tokens with it.
        assert (
            http.delete(f"{TRUSTS}/{first['id']}", headers=_h(trustor.token())).status_code == 204
        )
        assert http.get(f"{TRUSTS}/{child['id']}", headers=_h(trustor.token())).status_code == 404
        assert http.get("/v3/auth/projects", headers=_h(token)).status_code == 401


def test_trust_without_redelegation_cannot_be_redelegated(cloud: Cloud, admin: Any) -> None:
    trustor, middle, last = (Party(cloud, admin) for _ in range(3))
    first = _create(cloud, trustor, middle, impersonation=True)
    assert first["redelegation_count"] == 0
    middle_token = middle.trust_token(first["id"]).headers["X-Subject-Token"]
    with cloud.http() as http:
        refused = http.post(TRUSTS, json=_trust(trustor, last), headers=_h(middle_token))
        assert refused.status_code == 403
    # A trust-scoped token cannot be exchanged for another token either.
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": middle_token}}}}
    with cloud.http() as http:
        assert http.post("/v3/auth/tokens", json=body).status_code == 403


def test_application_credential_tokens_cannot_touch_trusts(cloud: Cloud, admin: Any) -> None:
    trustor, trustee = Party(cloud, admin), Party(cloud, admin)
    trust = _create(cloud, trustor, trustee)
    with cloud.http() as http:
        made = http.post(
            f"/v3/users/{trustor.id}/application_credentials",
            json={"application_credential": {"name": "free", "unrestricted": True}},
            headers=_h(trustor.token()),
        )
        cred = made.json()["application_credential"]
        auth = {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"id": cred["id"], "secret": cred["secret"]},
                }
            }
        }
        token = http.post("/v3/auth/tokens", json=auth).headers["X-Subject-Token"]
        url = f"{TRUSTS}/{trust['id']}"
        assert (
            http.post(TRUSTS, json=_trust(trustor, trustee), headers=_h(token)).status_code == 403
        )
        assert (
            http.get(TRUSTS, params={"trustor_user_id": trustor.id}, headers=_h(token)).status_code
            == 403
        )
        assert http.get(url, headers=_h(token)).status_code == 403
        assert http.get(f"{url}/roles", headers=_h(token)).status_code == 403
        assert http.delete(url, headers=_h(token)).status_code == 403
        assert http.get(url, headers=_h(trustor.token())).status_code == 200
