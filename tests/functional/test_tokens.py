"""Tokens through the front door: issue, validate, check, revoke, scopes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cloudfixture import ADMIN_PASSWORD, Cloud


def auth_body(
    user: dict[str, Any], password: str, scope: Any = None, methods: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": methods or ["password"],
                "password": {"user": {**user, "password": password}},
            }
        }
    }
    if scope is not None:
        body["auth"]["scope"] = scope
    return body


ADMIN_USER = {"name": "admin", "domain": {"name": "Default"}}


def issue(http: httpx.Client, body: dict[str, Any], **params: str) -> httpx.Response:
    return http.post("/v3/auth/tokens", json=body, params=params)


def test_sdk_issues_project_scoped_token(cloud: Cloud) -> None:
    conn = cloud.sdk("stackbox")
    access = conn.session.auth.get_access(conn.session)
    assert access.project_name == "demo"
    assert {"member", "reader"} <= set(access.role_names)
    assert "admin" not in access.role_names


def test_scopes(cloud: Cloud) -> None:
    with cloud.http() as http:
        project = issue(
            http,
            auth_body(
                ADMIN_USER,
                ADMIN_PASSWORD,
                {"project": {"name": "admin", "domain": {"id": "default"}}},
            ),
        )
        assert project.status_code == 201
        token = project.json()["token"]
        assert token["project"]["name"] == "admin"
        assert token["project"]["domain"] == {"id": "default", "name": "Default"}
        assert token["is_domain"] is False
        assert token["methods"] == ["password"]
        assert "identity" in {entry["type"] for entry in token["catalog"]}
        assert {r["name"] for r in token["roles"]} == {"admin", "manager", "member", "reader"}
        assert len(token["audit_ids"]) == 1
        assert token["expires_at"].endswith("Z") and token["issued_at"].endswith("Z")

        system = issue(http, auth_body(ADMIN_USER, ADMIN_PASSWORD, {"system": {"all": True}}))
        assert system.status_code == 201
        assert system.json()["token"]["system"] == {"all": True}

        # admin has no role on the Default domain: refused, as Keystone does.
        domain = issue(http, auth_body(ADMIN_USER, ADMIN_PASSWORD, {"domain": {"id": "default"}}))
        assert domain.status_code == 401

        unscoped = issue(http, auth_body(ADMIN_USER, ADMIN_PASSWORD, "unscoped"))
        assert unscoped.status_code == 201
        body = unscoped.json()["token"]
        assert "project" not in body and "catalog" not in body and "roles" not in body

        # No scope: the user's default project.
        default = issue(http, auth_body(ADMIN_USER, ADMIN_PASSWORD))
        assert default.json()["token"]["project"]["name"] == "admin"

        nocatalog = issue(http, auth_body(ADMIN_USER, ADMIN_PASSWORD), nocatalog="1")
        assert "catalog" not in nocatalog.json()["token"]


def test_rescope_with_token_method_keeps_audit_chain_and_expiry(cloud: Cloud) -> None:
    with cloud.http() as http:
        first = issue(http, auth_body(ADMIN_USER, ADMIN_PASSWORD, "unscoped"))
        unscoped = first.headers["X-Subject-Token"]
        parent = first.json()["token"]
        rescoped = http.post(
            "/v3/auth/tokens",
            json={
                "auth": {
                    "identity": {"methods": ["token"], "token": {"id": unscoped}},
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
                }
            },
        )
        assert rescoped.status_code == 201, rescoped.text
        token = rescoped.json()["token"]
        assert token["methods"] == ["token", "password"]
        assert token["audit_ids"][1] == parent["audit_ids"][0]
        assert token["expires_at"] == parent["expires_at"]


def test_validate_check_and_revoke(cloud: Cloud) -> None:
    admin = cloud.token()
    subject = cloud.token("demo", project="demo")
    with cloud.http() as http:
        both = {"X-Auth-Token": admin, "X-Subject-Token": subject}
        shown = http.get("/v3/auth/tokens", headers=both)
        assert shown.status_code == 200
        assert shown.json()["token"]["project"]["name"] == "demo"
        assert shown.headers["X-Subject-Token"] == subject
        assert http.head("/v3/auth/tokens", headers=both).status_code == 200
        assert http.delete("/v3/auth/tokens", headers=both).status_code == 204
        after = http.get("/v3/auth/tokens", headers=both)
        assert after.status_code == 404
        assert after.json()["error"]["code"] == 404
        assert http.head("/v3/auth/tokens", headers=both).status_code == 404
        used = http.get("/v3/auth/projects", headers={"X-Auth-Token": subject})
        assert used.status_code == 401
        assert used.headers["WWW-Authenticate"].startswith("Keystone uri=")
        # The admin token is untouched by revoking another token.
        assert http.get("/v3/auth/projects", headers={"X-Auth-Token": admin}).status_code == 200


def test_a_user_validates_own_token_but_not_others(cloud: Cloud) -> None:
    demo = cloud.token("demo", project="demo")
    alt = cloud.token("alt_demo", project="alt_demo")
    with cloud.http() as http:
        own = http.get("/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo})
        assert own.status_code == 200
        other = http.get("/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": alt})
        assert other.status_code == 403
        assert other.json()["error"]["title"] == "Forbidden"


def test_auth_helpers(cloud: Cloud) -> None:
    demo = cloud.token("demo", project="demo")
    with cloud.http() as http:
        headers = {"X-Auth-Token": demo}
        projects = http.get("/v3/auth/projects", headers=headers).json()["projects"]
        assert [p["name"] for p in projects] == ["demo"]
        assert http.get("/v3/auth/domains", headers=headers).json()["domains"] == []
        assert http.get("/v3/auth/system", headers=headers).json()["system"] == []
        catalog = http.get("/v3/auth/catalog", headers=headers).json()["catalog"]
        identity = [entry for entry in catalog if entry["type"] == "identity"]
        assert identity[0]["endpoints"][0]["url"] == cloud.identity_url
        admin_system = http.get("/v3/auth/system", headers={"X-Auth-Token": cloud.token()})
        assert admin_system.json()["system"] == [{"all": True}]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (auth_body(ADMIN_USER, "wrong-password"), 401),
        (auth_body({"name": "nobody", "domain": {"id": "default"}}, "x"), 401),
        (auth_body({"id": "0" * 32}, "x"), 401),
        (auth_body({"name": "admin"}, ADMIN_PASSWORD), 400),
        (auth_body(ADMIN_USER, ADMIN_PASSWORD, {"project": {"id": "0" * 32}}), 401),
        (
            auth_body(
                ADMIN_USER,
                ADMIN_PASSWORD,
                {"project": {"name": "alt_demo", "domain": {"id": "default"}}},
            ),
            401,
        ),
        (auth_body(ADMIN_USER, ADMIN_PASSWORD, methods=["totp"]), 401),
        ({"auth": {"identity": {"methods": "password"}}}, 400),
        ({"auth": {}}, 400),
        ({"nothing": 1}, 400),
    ],
)
def test_bad_authentication(cloud: Cloud, body: dict[str, Any], status: int) -> None:
    with cloud.http() as http:
        response = issue(http, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["message"] and error["title"]
    assert "X-Subject-Token" not in response.headers
    if status == 401:
        assert "WWW-Authenticate" in response.headers


def test_garbage_tokens_are_401_not_500(cloud: Cloud) -> None:
    with cloud.http() as http:
        for token in ("", "x", "gAAAAA" + "A" * 200, "%%%", "a" * 5000):
            response = http.get("/v3/users", headers={"X-Auth-Token": token})
            assert response.status_code == 401, (token, response.text)
        missing = http.get("/v3/users")
        assert missing.status_code == 401
        assert missing.json()["error"]["title"] == "Unauthorized"


def test_token_method_with_a_revoked_token_is_404(cloud: Cloud) -> None:
    subject = cloud.token("demo", project="demo")
    with cloud.http() as http:
        http.delete(
            "/v3/auth/tokens", headers={"X-Auth-Token": subject, "X-Subject-Token": subject}
        )
        rescope = http.post(
            "/v3/auth/tokens",
            json={"auth": {"identity": {"methods": ["token"], "token": {"id": subject}}}},
        )
    assert rescope.status_code == 404
    assert rescope.json()["error"]["title"] == "Not Found"


def test_revocation_events_are_listed_for_admins(cloud: Cloud) -> None:
    subject = cloud.token("alt_demo", project="alt_demo")
    admin = cloud.token()
    with cloud.http() as http:
        shown = http.get(
            "/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": subject}
        )
        audit_id = shown.json()["token"]["audit_ids"][0]
        http.delete("/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": subject})
        events = http.get("/v3/OS-REVOKE/events", headers={"X-Auth-Token": admin})
        assert events.status_code == 200
        assert audit_id in {e.get("audit_id") for e in events.json()["events"]}
        demo = cloud.token("demo", project="demo")
        denied = http.get("/v3/OS-REVOKE/events", headers={"X-Auth-Token": demo})
        assert denied.status_code == 403
