"""OS-POLICY blobs, OS-OAUTH1 consumers and domain-specific configuration, over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.cloudfixture import Cloud

PASSWORD_REGEX = "^.{12,}$"
PASSWORD_RULE = "Passwords have at least twelve characters."


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """This module's cloud has password rules, which the security_compliance group shows."""
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("cloud")),
        password_regex=PASSWORD_REGEX,
        password_regex_description=PASSWORD_RULE,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def admin_token(cloud: Cloud) -> str:
    return cloud.token()


@pytest.fixture(scope="module")
def demo_token(cloud: Cloud) -> str:
    return cloud.token("demo", project="demo")


@pytest.fixture()
def http(cloud: Cloud) -> Iterator[httpx.Client]:
    with cloud.http() as client:
        yield client


def _auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


# OS-POLICY ------------------------------------------------------------------


def test_sdk_policy_lifecycle(admin: Any) -> None:
    made = admin.identity.create_policy(blob='{"rule": "role:admin"}', type="application/json")
    assert made.blob == '{"rule": "role:admin"}' and made.type == "application/json"
    assert made.id in [p.id for p in admin.identity.policies()]
    updated = admin.identity.update_policy(made, type="text/plain")
    assert updated.type == "text/plain" and updated.blob == made.blob
    assert admin.identity.get_policy(made.id).type == "text/plain"
    admin.identity.delete_policy(made.id)
    assert admin.identity.find_policy(made.id) is None


def test_policy_filters_errors_and_rbac(
    http: httpx.Client, admin_token: str, demo_token: str
) -> None:
    admin = _auth(admin_token)
    kind = f"type-{uuid.uuid4().hex}"
    made = http.post(
        "/v3/policies", json={"policy": {"blob": "b", "type": kind, "team": "x"}}, headers=admin
    )
    assert made.status_code == 201
    policy = made.json()["policy"]
    assert policy["team"] == "x" and policy["links"]["self"].endswith(
        f"/v3/policies/{policy['id']}"
    )
    listed = http.get("/v3/policies", params={"type": kind}, headers=admin).json()
    assert [p["id"] for p in listed["policies"]] == [policy["id"]]
    assert http.get("/v3/policies", params={"type": "nope"}, headers=admin).json()["policies"] == []

    missing_blob = http.post("/v3/policies", json={"policy": {"type": "t"}}, headers=admin)
    assert missing_blob.status_code == 400 and "blob" in missing_blob.json()["error"]["message"]
    url = f"/v3/policies/{policy['id']}"
    assert http.patch(url, json={"policy": {"id": "x"}}, headers=admin).status_code == 400
    assert http.patch(url, json={"policy": {}}, headers=admin).status_code == 400
    assert http.patch(url, json={"policy": {"blob": 5}}, headers=admin).status_code == 400

    member = _auth(demo_token)
    assert http.get("/v3/policies", headers=member).status_code == 403
    assert http.get(url, headers=member).status_code == 403
    assert (
        http.post("/v3/policies", json={"policy": {"blob": "b", "type": "t"}}, headers=member)
    ).status_code == 403
    assert http.delete(url, headers=member).status_code == 403

    assert http.delete(url, headers=admin).status_code == 204
    gone = http.get(url, headers=admin)
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == f"Could not find policy: {policy['id']}."


# OS-OAUTH1 consumers --------------------------------------------------------


def test_consumer_secret_only_at_creation(http: httpx.Client, admin_token: str) -> None:
    admin = _auth(admin_token)
    base = "/v3/OS-OAUTH1/consumers"
    made = http.post(base, json={"consumer": {"description": "app"}}, headers=admin)
    assert made.status_code == 201
    consumer = made.json()["consumer"]
    assert len(consumer["secret"]) == 32 and consumer["description"] == "app"
    url = f"{base}/{consumer['id']}"
    shown = http.get(url, headers=admin).json()["consumer"]
    assert "secret" not in shown and shown["description"] == "app"
    listed = http.get(base, headers=admin).json()["consumers"]
    assert [c for c in listed if c["id"] == consumer["id"]] == [shown]
    assert all("secret" not in c for c in listed)

    updated = http.patch(url, json={"consumer": {"description": "renamed"}}, headers=admin)
    assert updated.status_code == 200
    assert updated.json()["consumer"]["description"] == "renamed"
    assert "secret" not in updated.json()["consumer"]
    no_secret_change = http.patch(url, json={"consumer": {"secret": "mine"}}, headers=admin)
    assert no_secret_change.status_code == 400
    assert http.patch(url, json={"consumer": {"id": "other"}}, headers=admin).status_code == 400
    assert http.patch(url, json={"consumer": {}}, headers=admin).status_code == 400

    # A consumer made with no body at all still gets a generated secret.
    bare = http.post(base, headers=admin)
    assert bare.status_code == 201 and bare.json()["consumer"]["description"] is None
    assert bare.json()["consumer"]["secret"] != consumer["secret"]

    assert http.delete(url, headers=admin).status_code == 204
    assert http.get(url, headers=admin).status_code == 404
    assert http.delete(url, headers=admin).status_code == 404
    http.delete(f"{base}/{bare.json()['consumer']['id']}", headers=admin)


def test_consumers_are_admin_only(http: httpx.Client, demo_token: str) -> None:
    member = _auth(demo_token)
    assert http.get("/v3/OS-OAUTH1/consumers", headers=member).status_code == 403
    made = http.post("/v3/OS-OAUTH1/consumers", json={"consumer": {}}, headers=member)
    assert made.status_code == 403


# Domain configuration -------------------------------------------------------


def _new_domain(http: httpx.Client, admin: dict[str, str]) -> str:
    made = http.post(
        "/v3/domains", json={"domain": {"name": f"cfg-{uuid.uuid4().hex[:8]}"}}, headers=admin
    )
    assert made.status_code == 201
    return str(made.json()["domain"]["id"])


def test_domain_config_lifecycle_hides_sensitive_options(
    http: httpx.Client, admin_token: str
) -> None:
    admin = _auth(admin_token)
    domain = _new_domain(http, admin)
    url = f"/v3/domains/{domain}/config"
    assert http.get(url, headers=admin).status_code == 404
    config = {
        "identity": {"driver": "ldap"},
        "ldap": {"url": "ldap://one", "user_tree_dn": "ou=Users", "password": "hunter2"},
    }
    created = http.put(url, json={"config": config}, headers=admin)
    assert created.status_code == 201
    visible = {
        "identity": {"driver": "ldap"},
        "ldap": {"url": "ldap://one", "user_tree_dn": "ou=Users"},
    }
    assert created.json()["config"] == visible
    assert http.get(url, headers=admin).json()["config"] == visible
    assert "hunter2" not in http.get(url, headers=admin).text
    assert http.get(f"{url}/ldap/password", headers=admin).status_code == 404
    assert http.get(f"{url}/ldap", headers=admin).json()["config"] == {"ldap": visible["ldap"]}
    assert http.get(f"{url}/ldap/url", headers=admin).json()["config"] == {"url": "ldap://one"}

    # PUT again replaces everything and answers 200.
    replaced = http.put(url, json={"config": {"ldap": {"url": "ldap://two"}}}, headers=admin)
    assert replaced.status_code == 200
    assert replaced.json()["config"] == {"ldap": {"url": "ldap://two"}}
    assert http.get(f"{url}/identity", headers=admin).status_code == 404

    merged = http.patch(url, json={"config": {"identity": {"list_limit": 5}}}, headers=admin)
    assert merged.json()["config"] == {"ldap": {"url": "ldap://two"}, "identity": {"list_limit": 5}}
    by_group = http.patch(
        f"{url}/ldap", json={"config": {"ldap": {"suffix": "dc=x"}}}, headers=admin
    )
    assert by_group.json()["config"]["ldap"] == {"url": "ldap://two", "suffix": "dc=x"}
    by_option = http.patch(f"{url}/ldap/url", json={"config": {"url": "ldap://3"}}, headers=admin)
    assert by_option.status_code == 200
    assert by_option.json()["config"]["ldap"]["url"] == "ldap://3"

    assert http.delete(f"{url}/ldap/url", headers=admin).status_code == 204
    assert http.get(f"{url}/ldap/url", headers=admin).status_code == 404
    assert http.delete(f"{url}/ldap/url", headers=admin).status_code == 404
    assert http.delete(f"{url}/identity", headers=admin).status_code == 204
    assert http.get(url, headers=admin).json()["config"] == {"ldap": {"suffix": "dc=x"}}
    assert http.delete(url, headers=admin).status_code == 204
    assert http.get(url, headers=admin).status_code == 404


def test_domain_config_refuses_what_keystone_refuses(
    http: httpx.Client, admin_token: str, demo_token: str
) -> None:
    admin = _auth(admin_token)
    domain = _new_domain(http, admin)
    url = f"/v3/domains/{domain}/config"

    def put(config: Any) -> httpx.Response:
        return http.put(url, json={"config": config}, headers=admin)

    bad_configs: list[dict[str, Any]] = [
        {},
        {"ldap": {}},
        {"ldap": "ldap://x"},
        {"nova": {"x": 1}},
        {"ldap": {"bogus": 1}},
    ]
    for bad in bad_configs:
        response = put(bad)
        assert response.status_code == 403, bad
        assert response.json()["error"]["message"].startswith(
            "Invalid domain specific configuration"
        )
    assert http.get(url, headers=admin).status_code == 404  # nothing was stored
    assert put({"ldap": {"url": "ldap://x"}}).status_code == 201

    # Updating a named group or option: it must exist, and be all the body holds.
    assert (
        http.patch(
            f"{url}/identity", json={"config": {"identity": {"driver": "sql"}}}, headers=admin
        )
    ).status_code == 404
    assert (
        http.patch(f"{url}/ldap/suffix", json={"config": {"suffix": "x"}}, headers=admin)
    ).status_code == 404
    two_groups = {"ldap": {"url": "a"}, "identity": {"driver": "sql"}}
    assert http.patch(f"{url}/ldap", json={"config": two_groups}, headers=admin).status_code == 403
    other_option = {"suffix": "x"}
    assert (
        http.patch(f"{url}/ldap/url", json={"config": other_option}, headers=admin)
    ).status_code == 403
    assert http.get(f"{url}/nova", headers=admin).status_code == 403
    assert http.get(f"{url}/ldap/bogus", headers=admin).status_code == 403

    unknown = f"/v3/domains/{uuid.uuid4().hex}/config"
    assert (
        http.put(unknown, json={"config": {"ldap": {"url": "x"}}}, headers=admin).status_code == 404
    )
    assert http.get(unknown, headers=admin).status_code == 404

    member = _auth(demo_token)
    assert http.get(url, headers=member).status_code == 403
    assert http.put(url, json={"config": {"ldap": {"url": "y"}}}, headers=member).status_code == 403
    assert http.delete(url, headers=member).status_code == 403
    assert http.get(url, headers=admin).json()["config"] == {"ldap": {"url": "ldap://x"}}


def test_default_config(http: httpx.Client, admin_token: str, demo_token: str) -> None:
    admin = _auth(admin_token)
    everything = http.get("/v3/domains/config/default", headers=admin).json()["config"]
    assert set(everything) == {"identity", "ldap"}
    assert everything["identity"] == {"driver": "sql", "list_limit": None}
    assert everything["ldap"]["url"] == "ldap://localhost"
    assert "password" not in everything["ldap"]
    ldap = http.get("/v3/domains/config/ldap/default", headers=admin).json()["config"]
    assert ldap == {"ldap": everything["ldap"]}
    one = http.get("/v3/domains/config/ldap/user_tree_dn/default", headers=admin).json()
    assert one == {"config": {"user_tree_dn": None}}
    assert http.get("/v3/domains/config/ldap/password/default", headers=admin).status_code == 403
    assert http.get("/v3/domains/config/nova/default", headers=admin).status_code == 403
    assert http.get("/v3/domains/config/default", headers=_auth(demo_token)).status_code == 403


def test_security_compliance_shows_this_clouds_password_rules(
    http: httpx.Client, admin_token: str, demo_token: str
) -> None:
    url = "/v3/domains/default/config/security_compliance"
    # Any user may read the rules, so that clients can explain them.
    shown = http.get(url, headers=_auth(demo_token))
    assert shown.status_code == 200
    assert shown.json() == {
        "config": {
            "security_compliance": {
                "password_regex": PASSWORD_REGEX,
                "password_regex_description": PASSWORD_RULE,
            }
        }
    }
    one = http.get(f"{url}/password_regex", headers=_auth(demo_token)).json()
    assert one == {"config": {"password_regex": PASSWORD_REGEX}}
    hidden = http.get(f"{url}/lockout_duration", headers=_auth(demo_token))
    assert hidden.status_code == 403
    domain = _new_domain(http, _auth(admin_token))
    other = http.get(f"/v3/domains/{domain}/config/security_compliance", headers=_auth(admin_token))
    assert other.status_code == 403
