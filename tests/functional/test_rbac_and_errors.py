"""Policy (reader / member / admin, other projects) and bad input, by plain HTTP.

Every refused request must leave the database as it was: each test compares
the listing before and after.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cloudfixture import Cloud


@pytest.fixture(scope="module")
def http(cloud: Cloud) -> Iterator[httpx.Client]:
    with cloud.http() as client:
        yield client


@pytest.fixture(scope="module")
def admin_headers(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": cloud.token()}


@pytest.fixture(scope="module")
def reader_token(cloud: Cloud, http: httpx.Client, admin_headers: dict[str, str]) -> str:
    """A user with only `reader` on project demo."""
    user = http.post(
        "/v3/users", headers=admin_headers, json={"user": {"name": "rita", "password": "rita-pw"}}
    ).json()["user"]
    demo = http.get("/v3/projects", params={"name": "demo"}, headers=admin_headers).json()[
        "projects"
    ][0]
    reader = http.get("/v3/roles", params={"name": "reader"}, headers=admin_headers).json()[
        "roles"
    ][0]
    granted = http.put(
        f"/v3/projects/{demo['id']}/users/{user['id']}/roles/{reader['id']}", headers=admin_headers
    )
    assert granted.status_code == 204
    return cloud.token("rita", "rita-pw", project="demo")


def snapshot(http: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    return {
        kind: sorted(
            (item["id"], item.get("name"), item.get("enabled"), item.get("description"))
            for item in http.get(f"/v3/{kind}", headers=headers).json()[kind]
        )
        for kind in ("users", "projects", "domains", "groups", "roles")
    }


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["title"], str) and error["title"]
    assert "Traceback" not in response.text
    return error


def test_reader_cannot_create_or_delete(
    http: httpx.Client, admin_headers: dict[str, str], reader_token: str
) -> None:
    before = snapshot(http, admin_headers)
    headers = {"X-Auth-Token": reader_token}
    attempts = [
        http.post("/v3/projects", headers=headers, json={"project": {"name": "nope"}}),
        http.post("/v3/users", headers=headers, json={"user": {"name": "nope"}}),
        http.post("/v3/groups", headers=headers, json={"group": {"name": "nope"}}),
        http.post("/v3/roles", headers=headers, json={"role": {"name": "nope"}}),
        http.post("/v3/domains", headers=headers, json={"domain": {"name": "nope"}}),
    ]
    demo = http.get("/v3/projects", params={"name": "demo"}, headers=admin_headers).json()[
        "projects"
    ][0]
    attempts.append(http.delete(f"/v3/projects/{demo['id']}", headers=headers))
    attempts.append(
        http.patch(
            f"/v3/projects/{demo['id']}",
            headers=headers,
            json={"project": {"description": "changed"}},
        )
    )
    for response in attempts:
        assert_error(response, 403)
    # A reader may still read its own project.
    assert http.get(f"/v3/projects/{demo['id']}", headers=headers).status_code == 200
    assert snapshot(http, admin_headers) == before


def test_member_of_one_project_cannot_touch_another(
    cloud: Cloud, http: httpx.Client, admin_headers: dict[str, str]
) -> None:
    before = snapshot(http, admin_headers)
    demo = {"X-Auth-Token": cloud.token("demo", project="demo")}
    alt = http.get("/v3/projects", params={"name": "alt_demo"}, headers=admin_headers).json()[
        "projects"
    ][0]
    alt_user = http.get("/v3/users", params={"name": "alt_demo"}, headers=admin_headers).json()[
        "users"
    ][0]
    # Keystone answers 403 for another project's or user's resources.
    assert_error(http.get(f"/v3/projects/{alt['id']}", headers=demo), 403)
    assert_error(http.get(f"/v3/users/{alt_user['id']}", headers=demo), 403)
    assert_error(http.get(f"/v3/users/{alt_user['id']}/projects", headers=demo), 403)
    assert_error(http.get("/v3/users", headers=demo), 403)
    assert_error(http.get("/v3/projects", headers=demo), 403)
    assert_error(http.delete(f"/v3/projects/{alt['id']}", headers=demo), 403)
    assert_error(
        http.patch(f"/v3/users/{alt_user['id']}", headers=demo, json={"user": {"enabled": False}}),
        403,
    )
    assert snapshot(http, admin_headers) == before


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "field"),
    [
        ("POST", "/v3/projects", b"{not json", 400, None),
        ("POST", "/v3/projects", {"project": {"name": 12}}, 400, "name"),
        ("POST", "/v3/projects", {"project": {}}, 400, "name"),
        ("POST", "/v3/projects", {"project": {"name": ""}}, 400, "name"),
        ("POST", "/v3/projects", {"project": {"name": "x" * 65}}, 400, "name"),
        ("POST", "/v3/projects", {"project": {"name": "p", "enabled": "yes"}}, 400, "enabled"),
        ("POST", "/v3/projects", {"projects": {"name": "p"}}, 400, "project"),
        ("POST", "/v3/projects", {"project": {"name": "p", "domain_id": "nope"}}, 404, None),
        ("POST", "/v3/projects", {"project": {"name": "p", "parent_id": "nope"}}, 404, None),
        ("POST", "/v3/users", {"user": {"name": "u", "enabled": 1}}, 400, "enabled"),
        ("POST", "/v3/users", {"user": {"password": "p"}}, 400, "name"),
        ("POST", "/v3/users", {"user": {"name": "u", "options": {"bogus": True}}}, 400, "bogus"),
        ("POST", "/v3/users", {"user": {"name": "u", "default_project_id": "nope"}}, 404, None),
        ("POST", "/v3/roles", {"role": {"name": None}}, 400, "name"),
        ("POST", "/v3/groups", {"group": {"name": ["g"]}}, 400, "name"),
        ("POST", "/v3/domains", {"domain": {"name": "d", "enabled": "no"}}, 400, "enabled"),
        ("PATCH", "/v3/users/0123", {"user": {"name": "x"}}, 404, None),
        ("GET", "/v3/projects/does-not-exist", None, 404, None),
        ("DELETE", "/v3/roles/does-not-exist", None, 404, None),
        ("DELETE", "/v3/groups/does-not-exist", None, 404, None),
        ("PUT", "/v3/projects/nope/users/nope/roles/nope", None, 404, None),
        ("PATCH", "/v3/auth/tokens", None, 405, None),
        ("GET", "/v3/no-such-collection", None, 404, None),
    ],
)
def test_bad_input_changes_nothing(
    http: httpx.Client,
    admin_headers: dict[str, str],
    method: str,
    path: str,
    payload: Any,
    status: int,
    field: str | None,
) -> None:
    before = snapshot(http, admin_headers)
    if isinstance(payload, bytes):
        response = http.request(
            method,
            path,
            content=payload,
            headers={**admin_headers, "Content-Type": "application/json"},
        )
    else:
        response = http.request(method, path, json=payload, headers=admin_headers)
    error = assert_error(response, status)
    if field:
        assert field in error["message"], error["message"]
    assert snapshot(http, admin_headers) == before


def test_duplicates_conflict(http: httpx.Client, admin_headers: dict[str, str]) -> None:
    for kind, body in (
        ("projects", {"project": {"name": "dup-p"}}),
        ("users", {"user": {"name": "dup-u"}}),
        ("groups", {"group": {"name": "dup-g"}}),
        ("roles", {"role": {"name": "dup-r"}}),
        ("domains", {"domain": {"name": "dup-d"}}),
    ):
        assert http.post(f"/v3/{kind}", json=body, headers=admin_headers).status_code == 201
        before = snapshot(http, admin_headers)
        error = assert_error(http.post(f"/v3/{kind}", json=body, headers=admin_headers), 409)
        assert "Duplicate" in error["message"]
        assert snapshot(http, admin_headers) == before


def test_wrong_password_on_password_change(
    cloud: Cloud, http: httpx.Client, admin_headers: dict[str, str]
) -> None:
    user = http.post(
        "/v3/users", headers=admin_headers, json={"user": {"name": "pat", "password": "pat-pw"}}
    ).json()["user"]
    wrong = http.post(
        f"/v3/users/{user['id']}/password",
        json={"user": {"original_password": "nope", "password": "new-pw"}},
    )
    assert_error(wrong, 401)
    missing = http.post(f"/v3/users/{user['id']}/password", json={"user": {"password": "x"}})
    assert_error(missing, 400)
    ok = http.post(
        f"/v3/users/{user['id']}/password",
        json={"user": {"original_password": "pat-pw", "password": "new-pw"}},
    )
    assert ok.status_code == 204
    demo = http.get("/v3/projects", params={"name": "demo"}, headers=admin_headers).json()[
        "projects"
    ][0]
    reader = http.get("/v3/roles", params={"name": "reader"}, headers=admin_headers).json()[
        "roles"
    ][0]
    http.put(
        f"/v3/projects/{demo['id']}/users/{user['id']}/roles/{reader['id']}", headers=admin_headers
    )
    assert cloud.token("pat", "new-pw", project="demo")
