"""Keystone's security-compliance options: lockout, password history, minimum age,
expiry, complexity regex, change at first use, and the ignore_* user options."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture

LOCKOUT_SECONDS = 2


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("compliance")),
        lockout_failure_attempts=2,
        lockout_duration=LOCKOUT_SECONDS,
        unique_last_password_count=2,
        password_regex=r"^(?=.*\d).{6,}$",
        password_regex_description="at least 6 characters with a digit",
        password_expires_days=90,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with cloud.http() as client:
        yield client


def make_user(
    http: httpx.Client, cloud: cloudfixture.Cloud, name: str, password: str, **extra: Any
) -> dict[str, Any]:
    admin = {"X-Auth-Token": cloud.token()}
    response = http.post(
        "/v3/users", headers=admin, json={"user": {"name": name, "password": password, **extra}}
    )
    assert response.status_code == 201, response.text
    return response.json()["user"]


def login(http: httpx.Client, user_id: str, password: str) -> httpx.Response:
    return http.post(
        "/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": user_id, "password": password}},
                }
            }
        },
    )


def change(http: httpx.Client, user_id: str, old: str, new: str) -> httpx.Response:
    return http.post(
        f"/v3/users/{user_id}/password", json={"user": {"original_password": old, "password": new}}
    )


def test_lockout_after_failed_attempts_then_unlock(
    cloud: cloudfixture.Cloud, http: httpx.Client
) -> None:
    user = make_user(http, cloud, "locky", "right1")
    assert login(http, user["id"], "wrong1").status_code == 401
    assert login(http, user["id"], "wrong2").status_code == 401
    locked = login(http, user["id"], "right1")
    assert locked.status_code == 401
    assert "locked" in locked.json()["error"]["message"]
    time.sleep(LOCKOUT_SECONDS + 0.5)
    assert login(http, user["id"], "right1").status_code == 201


def test_ignore_lockout_option(cloud: cloudfixture.Cloud, http: httpx.Client) -> None:
    user = make_user(
        http, cloud, "unlockable", "right1", options={"ignore_lockout_failure_attempts": True}
    )
    for _ in range(4):
        assert login(http, user["id"], "wrong1").status_code == 401
    assert login(http, user["id"], "right1").status_code == 201


def test_password_history_and_regex(cloud: cloudfixture.Cloud, http: httpx.Client) -> None:
    user = make_user(http, cloud, "histo", "first1")
    weak = change(http, user["id"], "first1", "short")
    assert weak.status_code == 400
    assert "at least 6 characters with a digit" in weak.json()["error"]["message"]
    same = change(http, user["id"], "first1", "first1")
    assert same.status_code == 400
    assert "cannot be identical to a previous password" in same.json()["error"]["message"]
    assert change(http, user["id"], "first1", "second2").status_code == 204
    # "first1" is still among the last two passwords.
    assert change(http, user["id"], "second2", "first1").status_code == 400
    assert change(http, user["id"], "second2", "third3").status_code == 204
    # Now it has dropped out of the history.
    assert change(http, user["id"], "third3", "first1").status_code == 204
    assert login(http, user["id"], "first1").status_code == 201


def test_password_expiry_is_reported_and_enforced(
    cloud: cloudfixture.Cloud, http: httpx.Client
) -> None:
    user = make_user(http, cloud, "expiring", "valid1")
    assert user["password_expires_at"] is not None
    ignoring = make_user(http, cloud, "forever", "valid1", options={"ignore_password_expiry": True})
    assert ignoring["password_expires_at"] is None
    admin = {"X-Auth-Token": cloud.token()}
    soon = http.get(
        "/v3/users", headers=admin, params={"password_expires_at": "lt:2999-01-01T00:00:00Z"}
    ).json()["users"]
    assert "expiring" in {u["name"] for u in soon}
    assert "forever" not in {u["name"] for u in soon}


def test_disabled_regex_rejects_admin_set_password_too(
    cloud: cloudfixture.Cloud, http: httpx.Client
) -> None:
    admin = {"X-Auth-Token": cloud.token()}
    response = http.post(
        "/v3/users", headers=admin, json={"user": {"name": "weakling", "password": "abc"}}
    )
    assert response.status_code == 400
    listed = http.get("/v3/users", headers=admin, params={"name": "weakling"}).json()["users"]
    assert listed == []


def test_passwords_are_never_stored_in_clear(cloud: cloudfixture.Cloud) -> None:
    raw = (cloud.state_dir / "stackbox.db").read_bytes()
    wal = cloud.state_dir / "stackbox.db-wal"
    if wal.exists():
        raw += wal.read_bytes()
    for password in ("first1", "second2", "right1", cloudfixture.ADMIN_PASSWORD):
        assert password.encode() not in raw
    assert b"$2b$" in raw  # bcrypt hashes


def test_admin_reset_is_not_held_to_history(cloud: cloudfixture.Cloud, http: httpx.Client) -> None:
    user = make_user(http, cloud, "reset-me", "reset1")
    admin = {"X-Auth-Token": cloud.token()}
    for _ in range(2):
        again = http.patch(
            f"/v3/users/{user['id']}", headers=admin, json={"user": {"password": "reset1"}}
        )
        assert again.status_code == 200, again.text
    assert login(http, user["id"], "reset1").status_code == 201
