"""Tokens through the front door: issue, validate, check, revoke, scopes."""

from __future__ import annotations

from tests.cloudfixture import Cloud


def test_sdk_issues_project_scoped_token(cloud: Cloud) -> None:
    conn = cloud.sdk("stackbox")
    token = conn.identity.get_endpoint  # touch the catalog through the SDK
    assert token is not None
    access = conn.session.auth.get_access(conn.session)
    assert access.project_name == "demo"
    assert "member" in access.role_names and "reader" in access.role_names


def test_validate_check_and_revoke(cloud: Cloud) -> None:
    admin = cloud.token()
    subject = cloud.token("demo", project="demo")
    with cloud.http() as http:
        shown = http.get(
            "/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": subject}
        )
        assert shown.status_code == 200
        assert shown.json()["token"]["project"]["name"] == "demo"
        assert shown.headers["X-Subject-Token"] == subject
        head = http.head(
            "/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": subject}
        )
        assert head.status_code == 200
        gone = http.delete(
            "/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": subject}
        )
        assert gone.status_code == 204
        after = http.get(
            "/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": subject}
        )
        assert after.status_code == 404
        assert after.json()["error"]["code"] == 404
        used = http.get("/v3/auth/projects", headers={"X-Auth-Token": subject})
        assert used.status_code == 401
        assert used.headers["WWW-Authenticate"].startswith("Keystone uri=")
