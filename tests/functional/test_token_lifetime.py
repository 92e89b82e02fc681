"""Token expiry, allow_expired, and Fernet key rotation while the cloud runs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cloudfixture

LIFETIME = 2


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("lifetime")),
        token_expiration=LIFETIME,
        allow_expired_window=60,
        max_active_keys=3,
    ) as running:
        yield running


def validate(cloud: cloudfixture.Cloud, subject: str, **params: str) -> int:
    with cloud.http() as http:
        return http.get(
            "/v3/auth/tokens",
            params=params,
            headers={"X-Auth-Token": cloud.token(), "X-Subject-Token": subject},
        ).status_code


def test_expired_tokens_fail_unless_allow_expired(cloud: cloudfixture.Cloud) -> None:
    subject = cloud.token("demo", project="demo")
    assert validate(cloud, subject) == 200
    time.sleep(LIFETIME + 1.1)
    assert validate(cloud, subject) == 404
    assert validate(cloud, subject, allow_expired="1") == 200
    with cloud.http() as http:
        used = http.get("/v3/auth/projects", headers={"X-Auth-Token": subject})
    assert used.status_code == 401


def rotate(cloud: cloudfixture.Cloud) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackbox",
            "identity",
            "rotate-keys",
            "--state-dir",
            str(cloud.state_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def test_rotation_keeps_recent_tokens_and_drops_old_ones(cloud: cloudfixture.Cloud) -> None:
    keys = cloud.state_dir / "fernet-keys"
    oldest = cloud.token("demo", project="demo")
    assert "primary key is now" in rotate(cloud)
    # The running server notices the new keys (it re-reads them within a second).
    time.sleep(1.2)
    newer = cloud.token("demo", project="demo")
    # allow_expired: these tokens outlive their 2 s lifetime during the test; what is
    # checked here is whether the keys can still read them.
    assert validate(cloud, oldest, allow_expired="1") == 200
    assert validate(cloud, newer, allow_expired="1") == 200
    rotate(cloud)
    time.sleep(1.2)
    # max_active_keys=3: staged, primary and one secondary; the key that signed
    # `oldest` two rotations ago is gone, the one that signed `newer` is kept.
    assert len([p for p in keys.iterdir() if p.name.isdigit()]) == 3
    assert validate(cloud, oldest, allow_expired="1") == 404
    assert validate(cloud, newer, allow_expired="1") == 200
    assert validate(cloud, cloud.token("demo", project="demo")) == 200
