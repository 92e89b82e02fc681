"""`stackbox up` as a user runs it, driven by the unmodified `openstack` CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests import cloudfixture

OPENSTACK = str(Path(sys.executable).parent / "openstack")


def cli(
    cloud: cloudfixture.Cloud,
    name: str,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    run_env = dict(os.environ)
    run_env["OS_CLIENT_CONFIG_FILE"] = str(cloud.clouds_yaml)
    run_env.update(env or {})
    result = subprocess.run(
        [OPENSTACK, "--os-cloud", name, *args],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"openstack {' '.join(args)} failed: {result.stderr}")
    return result


def cli_json(cloud: cloudfixture.Cloud, name: str, *args: str) -> object:
    return json.loads(cli(cloud, name, *args, "-f", "json").stdout)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.ProcessCloud]:
    with cloudfixture.as_process(Path(tmp_path_factory.mktemp("up"))) as cloud:
        yield cloud


def test_acceptance_flow_with_the_cli(running: cloudfixture.ProcessCloud) -> None:
    admin = "stackbox-admin"
    token = cli_json(running, admin, "token", "issue")
    assert isinstance(token, dict) and token["project_id"]
    catalog = cli_json(running, admin, "catalog", "list")
    assert isinstance(catalog, list)
    assert any(entry["Type"] == "identity" for entry in catalog)
    cli(running, admin, "project", "create", "p1")
    cli(running, admin, "user", "create", "--password", "x", "u1")
    cli(running, admin, "role", "add", "--user", "u1", "--project", "p1", "member")
    scoped = cli_json(
        running,
        admin,
        "--os-username",
        "u1",
        "--os-password",
        "x",
        "--os-project-name",
        "p1",
        "token",
        "issue",
    )
    projects = cli_json(running, admin, "project", "show", "p1")
    assert isinstance(scoped, dict) and isinstance(projects, dict)
    assert scoped["project_id"] == projects["id"]
    demo = cli_json(running, "stackbox", "token", "issue")
    assert isinstance(demo, dict) and demo["project_id"]
    system = cli_json(running, "stackbox-system-admin", "token", "issue")
    assert isinstance(system, dict) and system.get("system") == "all"


def test_clouds_yaml_and_openrc(running: cloudfixture.ProcessCloud) -> None:
    clouds = yaml.safe_load(running.clouds_yaml.read_text())["clouds"]
    assert set(clouds) == {"stackbox", "stackbox-alt", "stackbox-admin", "stackbox-system-admin"}
    assert clouds["stackbox"]["auth"]["username"] == "demo"
    assert clouds["stackbox-system-admin"]["auth"]["system_scope"] == "all"
    merged = Path(running.state_dir).parent / ".config" / "openstack" / "clouds.yaml"
    assert set(yaml.safe_load(merged.read_text())["clouds"]) >= set(clouds)
    openrc = (running.state_dir / "openrc").read_text()
    assert "OS_AUTH_URL=" + running.identity_url in openrc
    assert (running.state_dir / "clouds.yaml").stat().st_mode & 0o077 == 0


def test_second_up_on_locked_state_dir_fails_clearly(running: cloudfixture.ProcessCloud) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackbox",
            "up",
            "--state-dir",
            str(running.state_dir),
            "--port",
            str(cloudfixture.free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(running.state_dir.parent)},
    )
    assert result.returncode == 1
    assert "is in use by another stackbox" in result.stderr


def test_second_up_on_busy_port_fails_clearly(
    running: cloudfixture.ProcessCloud, tmp_path: Path
) -> None:
    port = running.base_url.rsplit(":", 1)[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackbox",
            "up",
            "--state-dir",
            str(tmp_path / "other"),
            "--port",
            port,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_restart_keeps_everything(tmp_path: Path) -> None:
    with cloudfixture.as_process(tmp_path) as first:
        cli(first, "stackbox-admin", "project", "create", "kept")
        cli(first, "stackbox-admin", "user", "create", "--password", "pw-kept", "keeper")
        cli(
            first,
            "stackbox-admin",
            "role",
            "add",
            "--user",
            "keeper",
            "--project",
            "kept",
            "member",
        )
        valid = first.token("keeper", "pw-kept", project="kept")
        revoked = first.token("keeper", "pw-kept", project="kept")
        admin = first.token()
        with first.http() as http:
            gone = http.delete(
                "/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": revoked}
            )
            assert gone.status_code == 204
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=20) == 0
    with cloudfixture.as_process(tmp_path) as second:
        admin = second.token()
        with second.http() as http:
            headers = {"X-Auth-Token": admin}
            ok = http.get("/v3/auth/tokens", headers={**headers, "X-Subject-Token": valid})
            assert ok.status_code == 200, ok.text
            assert ok.json()["token"]["project"]["name"] == "kept"
            bad = http.get("/v3/auth/tokens", headers={**headers, "X-Subject-Token": revoked})
            assert bad.status_code == 404
            users = http.get("/v3/users", params={"name": "keeper"}, headers=headers).json()
            assert [u["name"] for u in users["users"]] == ["keeper"]
        assert second.token("keeper", "pw-kept", project="kept")


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    with cloudfixture.as_process(tmp_path) as cloud:
        cloud.process.send_signal(signal.SIGTERM)
        assert cloud.process.wait(timeout=20) == 0
        with pytest.raises(httpx.HTTPError):
            httpx.get(cloud.identity_url, timeout=1)
    log = (tmp_path / "stackbox.log").read_text()
    assert "stackbox: stopped" in log


def test_first_start_creates_devstack_networks_once(tmp_path: Path) -> None:
    with cloudfixture.as_process(tmp_path) as cloud:
        networks = cli_json(cloud, "stackbox-admin", "network", "list", "--long")
        assert isinstance(networks, list)
        by_name = {n["Name"]: n for n in networks}
        assert by_name["public"]["Router Type"] in (True, "External")
        subnet = cli_json(cloud, "stackbox-admin", "subnet", "show", "public-subnet")
        assert isinstance(subnet, dict)
        assert subnet["cidr"] == "172.24.4.0/24" and subnet["gateway_ip"] == "172.24.4.1"
        assert subnet["allocation_pools"] == [{"start": "172.24.4.2", "end": "172.24.4.254"}]
        private = cli_json(cloud, "stackbox", "subnet", "show", "private-subnet")
        assert isinstance(private, dict) and private["cidr"] == "10.0.0.0/26"
        router = cli_json(cloud, "stackbox", "router", "show", "router1")
        assert isinstance(router, dict)
        assert router["external_gateway_info"]["network_id"] == by_name["public"]["ID"]
        pools = cli_json(cloud, "stackbox-admin", "subnet", "pool", "list")
        assert {"shared-default-subnetpool-v4", "shared-default-subnetpool-v6"} <= {
            p["Name"]
            for p in pools  # type: ignore[union-attr]
        }
        # Deleted by the user, they stay deleted: "once" means once.
        cli(cloud, "stackbox", "router", "remove", "subnet", "router1", "private-subnet")
        cli(cloud, "stackbox", "router", "delete", "router1")
        cloud.process.send_signal(signal.SIGTERM)
        assert cloud.process.wait(timeout=20) == 0
    with cloudfixture.as_process(tmp_path) as again:
        routers = cli_json(again, "stackbox", "router", "list")
        assert routers == []


def test_no_defaults_flag(tmp_path: Path) -> None:
    with cloudfixture.as_process(tmp_path, "--no-defaults") as cloud:
        assert cli_json(cloud, "stackbox-admin", "network", "list") == []
