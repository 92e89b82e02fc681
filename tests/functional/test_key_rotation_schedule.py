"""identity.key_rotation_interval rotates the Fernet keys while the cloud runs."""

from __future__ import annotations

import time
from pathlib import Path

from tests import cloudfixture


def primary(keys: Path) -> int:
    return max(int(p.name) for p in keys.iterdir() if p.name.isdigit())


def test_keys_rotate_on_schedule_and_older_tokens_still_validate(tmp_path: Path) -> None:
    with cloudfixture.in_process(tmp_path, key_rotation_interval=1, max_active_keys=10) as cloud:
        keys = cloud.state_dir / "fernet-keys"
        before = primary(keys)
        token = cloud.token("demo", project="demo")
        deadline = time.monotonic() + 10
        while primary(keys) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert primary(keys) >= before + 2
        time.sleep(1.1)  # the server re-reads the key directory at most once a second
        with cloud.http() as http:
            shown = http.get(
                "/v3/auth/tokens",
                headers={"X-Auth-Token": cloud.token(), "X-Subject-Token": token},
            )
        assert shown.status_code == 200
