"""An operator's policy.yaml in the state dir overrides the defaults; `policy dump` prints them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from stackbox.web import assembly
from tests import cloudfixture


def test_policy_file_overrides_defaults(tmp_path: Path) -> None:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "identity.yaml").write_text(
        yaml.safe_dump(
            {
                # Let any reader list projects (the default wants an admin or a system reader)...
                "identity:list_projects": "role:reader",
                # ...and take reading regions away from everybody but admins.
                "identity:list_regions": "role:admin",
            }
        )
    )
    with cloudfixture.in_process(tmp_path) as cloud, cloud.http() as http:
        demo = {"X-Auth-Token": cloud.token("demo", project="demo")}
        assert http.get("/v3/projects", headers=demo).status_code == 200
        assert http.get("/v3/regions", headers=demo).status_code == 403
        # Rules the file does not name keep their defaults.
        assert http.get("/v3/users", headers=demo).status_code == 403
        admin = {"X-Auth-Token": cloud.token()}
        assert http.get("/v3/regions", headers=admin).status_code == 200


def test_policy_dump_prints_every_default_rule() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stackbox", "policy", "dump"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert '#"identity:create_project": ' in result.stdout
    assert '#"identity:validate_token": ' in result.stdout
    # Uncommenting the dump gives a policy file oslo.policy can read.
    uncommented = "\n".join(
        line[1:] for line in result.stdout.splitlines() if line.startswith('#"')
    )
    rules = yaml.safe_load(uncommented)
    assert rules["admin_required"] == "role:admin or is_admin:1"
    assert set(rules) == {rule.name for rule in assembly.policy_rules()["identity"]}
