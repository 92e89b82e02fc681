"""Compute through the unmodified `openstack` CLI against `stackbox up` as a process,
right after its first start (DevStack's flavors, the default image, demo's network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cloudfixture
from tests.e2e.test_up import cli, cli_json


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.ProcessCloud]:
    with cloudfixture.as_process(Path(tmp_path_factory.mktemp("compute"))) as cloud:
        yield cloud


def test_server_life_cycle_with_the_cli(running: cloudfixture.ProcessCloud, tmp_path: Path) -> None:
    demo, admin = "stackbox", "stackbox-admin"
    private = tmp_path / "k1.pem"
    key = cli_json(running, demo, "keypair", "create", "--private-key", str(private), "k1")
    assert isinstance(key, dict) and key["name"] == "k1"
    assert "PRIVATE KEY" in private.read_text()
    server = cli_json(
        running, demo, "server", "create", "--wait", "--image", "stackbox-tiny",
        "--flavor", "m1.nano", "--network", "private", "--key-name", "k1", "vm1",
    )  # fmt: skip
    assert isinstance(server, dict) and server["status"] == "ACTIVE"
    assert "private" in str(server["addresses"])
    listed = cli_json(running, demo, "server", "list", "--long")
    assert isinstance(listed, list)
    assert [(s["Name"], s["Status"]) for s in listed] == [("vm1", "ACTIVE")]
    cli(running, demo, "server", "reboot", "--wait", "vm1")
    image = cli_json(running, demo, "server", "image", "create", "--wait", "--name", "snap", "vm1")
    assert isinstance(image, dict)
    shown = cli_json(running, demo, "image", "show", "snap")
    assert isinstance(shown, dict) and shown["status"] == "active"
    # The snapshot boots another server.
    second = cli_json(
        running, demo, "server", "create", "--wait", "--image", "snap",
        "--flavor", "m1.nano", "--network", "private", "vm2",
    )  # fmt: skip
    assert isinstance(second, dict) and second["status"] == "ACTIVE"
    cli(running, demo, "server", "delete", "--wait", "vm1", "vm2")
    assert cli_json(running, demo, "server", "list") == []
    assert cli_json(running, admin, "server", "list", "--all-projects") == []


def test_admin_compute_commands(running: cloudfixture.ProcessCloud) -> None:
    admin = "stackbox-admin"
    flavor = cli_json(
        running, admin, "flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1",
        "--property", "hw:cpu_policy=shared", "f1",
    )  # fmt: skip
    assert isinstance(flavor, dict) and "hw:cpu_policy" in str(flavor["properties"])
    group = cli_json(running, admin, "server", "group", "create", "--policy", "anti-affinity", "g")
    assert isinstance(group, dict) and group["policy"] == "anti-affinity"
    aggregate = cli_json(running, admin, "aggregate", "create", "--zone", "az1", "agg1")
    assert isinstance(aggregate, dict) and aggregate["availability_zone"] == "az1"
    services = cli_json(running, admin, "compute", "service", "list", "--service", "nova-compute")
    assert isinstance(services, list) and len(services) == 1
    host = services[0]["Host"]
    cli(running, admin, "compute", "service", "set", "--disable", host, "nova-compute")
    disabled = cli_json(running, admin, "compute", "service", "list", "--service", "nova-compute")
    assert isinstance(disabled, list) and disabled[0]["Status"] == "disabled"
    # No enabled host: a new server ends in ERROR with the scheduler's reason
    # (`--wait` exits non-zero when the server goes to ERROR).
    result = cli(
        running, admin, "server", "create", "--wait", "--image", "stackbox-tiny",
        "--flavor", "m1.nano", "--nic", "none", "nowhere", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    fault = cli_json(running, admin, "server", "show", "nowhere")
    assert isinstance(fault, dict) and fault["status"] == "ERROR"
    assert "ComputeFilter" in str(fault["fault"])
    cli(running, admin, "compute", "service", "set", "--enable", host, "nova-compute")
    cli(running, admin, "server", "delete", "--wait", "nowhere")
