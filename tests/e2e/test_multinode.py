"""A controller and an agent host as two processes over RabbitMQ (DESIGN §1):
`stackbox controller` serves the API with no agents of its own, `stackbox agent` runs
a host's network and compute agents, and a server boots on that host. Needs a broker:
STACKBOX_TEST_RABBIT (`make test` starts one through scripts/with-rabbitmq)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture

RABBIT_URL = os.environ.get("STACKBOX_TEST_RABBIT", "")
pytestmark = pytest.mark.skipif(
    not RABBIT_URL,
    reason="STACKBOX_TEST_RABBIT is not set: no RabbitMQ broker (`make test` starts one; "
    "or run under scripts/with-rabbitmq)",
)
MICROVERSION = {"OpenStack-API-Version": "compute 2.96"}


def wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_server_boots_on_an_agent_host(tmp_path: Path) -> None:
    host = f"node-{uuid.uuid4().hex[:8]}"
    env = {"STACKBOX_BUS_URL": RABBIT_URL}
    (tmp_path / "controller").mkdir()
    with cloudfixture.as_process(tmp_path / "controller", env=env, command="controller") as cloud:
        log = open(tmp_path / "agent.log", "wb")  # noqa: SIM115
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stackbox",
                "agent",
                "--hostname",
                host,
                "--state-dir",
                str(tmp_path / "agent"),
                "--role",
                "compute,network",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env, "HOME": str(tmp_path)},
        )
        try:
            compute = httpx.Client(
                base_url=cloud.base_url + "/compute/v2.1",
                headers={"X-Auth-Token": cloud.token(), **MICROVERSION},
                timeout=30,
            )
            # The controller runs no agent: the only hypervisor is the agent host's.
            nodes = wait_for(
                lambda: compute.get("/os-hypervisors").json()["hypervisors"],
                "the agent host to register",
            )
            assert [n["hypervisor_hostname"] for n in nodes] == [host]
            images = httpx.get(
                cloud.base_url + "/image/v2/images?name=stackbox-tiny",
                headers={"X-Auth-Token": cloud.token()},
            ).json()["images"]
            demo = httpx.Client(
                base_url=cloud.base_url + "/compute/v2.1",
                headers={"X-Auth-Token": cloud.token("demo", project="demo"), **MICROVERSION},
                timeout=30,
            )
            created = demo.post(
                "/servers",
                json={
                    "server": {
                        "name": "over-amqp",
                        "imageRef": images[0]["id"],
                        "flavorRef": "42",
                        "networks": "auto",
                    }
                },
            )
            assert created.status_code == 202, created.text
            server_id = created.json()["server"]["id"]

            def active() -> dict[str, Any] | None:
                server = dict(compute.get(f"/servers/{server_id}").json()["server"])
                assert server["status"] != "ERROR", server.get("fault")
                return server if server["status"] == "ACTIVE" else None

            server = wait_for(active, "the server to go ACTIVE")
            assert server["OS-EXT-SRV-ATTR:host"] == host
            assert server["addresses"]["private"]
            # The API asks the agent for the console over the bus.
            console = demo.post(
                f"/servers/{server_id}/action", json={"os-getConsoleOutput": {"length": 5}}
            )
            assert console.status_code == 200, console.text
            assert console.json()["output"]
            assert demo.delete(f"/servers/{server_id}").status_code == 204
            wait_for(
                lambda: compute.get(f"/servers/{server_id}").status_code == 404,
                "the server to go",
            )
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                assert agent.wait(timeout=20) == 0, (tmp_path / "agent.log").read_text()
            finally:
                if agent.poll() is None:
                    agent.kill()
                log.close()
