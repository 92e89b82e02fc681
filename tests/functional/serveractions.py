"""Helpers for the server action tests: a cloud with DevStack's defaults, plain-HTTP
compute clients per user, and waiting for a server's status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture

LATEST = "compute 2.96"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    """A cloud with DevStack's flavors, default image and networks (private for demo)."""
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("cloud")),
        compute={"create_defaults": True},
        network={"create_defaults": True},
    ) as running:
        yield running


class Compute:
    """A compute API client for one user (plain HTTP, a chosen microversion)."""

    def __init__(self, cloud: cloudfixture.Cloud, token: str, version: str = LATEST) -> None:
        self.cloud = cloud
        self.token = token
        self.http = httpx.Client(
            base_url=cloud.base_url + "/compute/v2.1",
            headers={"X-Auth-Token": token, "OpenStack-API-Version": version},
            timeout=60,
        )

    def at(self, version: str) -> Compute:
        return Compute(self.cloud, self.token, f"compute {version}")

    def action(self, server_id: str, body: Any) -> httpx.Response:
        return self.http.post(f"/servers/{server_id}/action", json=body)

    def server(self, server_id: str) -> dict[str, Any]:
        response = self.http.get(f"/servers/{server_id}")
        assert response.status_code == 200, response.text
        server: dict[str, Any] = response.json()["server"]
        return server

    def wait(
        self, server_id: str, status: str, *, task_done: bool = True, timeout: float = 30
    ) -> dict[str, Any]:
        """The server once it has ``status`` (and no task running); fails on ERROR."""
        deadline = time.monotonic() + timeout
        while True:
            server = self.server(server_id)
            idle = not task_done or server.get("OS-EXT-STS:task_state") is None
            if server["status"] == status and idle:
                return server
            assert server["status"] != "ERROR" or status == "ERROR", server.get("fault")
            assert time.monotonic() < deadline, f"{server['status']} / {server}"
            time.sleep(0.1)

    def wait_gone(self, server_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.http.get(f"/servers/{server_id}").status_code != 404:
            assert time.monotonic() < deadline, "the server was not deleted"
            time.sleep(0.1)

    def boot(self, name: str, flavor: str = "42", **extra: Any) -> dict[str, Any]:
        body = {
            "server": {
                "name": name,
                "imageRef": default_image(self.cloud, self.token),
                "flavorRef": flavor,
                "networks": "auto",
                **extra,
            }
        }
        response = self.http.post("/servers", json=body)
        assert response.status_code == 202, response.text
        return self.wait(response.json()["server"]["id"], "ACTIVE")

    def image(self, image_id: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.cloud.base_url}/image/v2/images/{image_id}",
            headers={"X-Auth-Token": self.token},
        )
        assert response.status_code == 200, response.text
        image: dict[str, Any] = response.json()
        return image

    def wait_image(self, image_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            image = self.image(image_id)
            if image["status"] == status:
                return image
            assert time.monotonic() < deadline, image
            time.sleep(0.1)


def default_image(cloud: cloudfixture.Cloud, token: str) -> str:
    response = httpx.get(
        f"{cloud.base_url}/image/v2/images",
        headers={"X-Auth-Token": token},
        params={"visibility": "public"},
    )
    assert response.status_code == 200, response.text
    images = response.json()["images"]
    assert images, "the cloud has no default image"
    return str(images[0]["id"])


def error(response: httpx.Response, status: int) -> str:
    """The message of Nova's error body, after checking the status and the body's name."""
    names = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == [names[status]], body
    assert body[names[status]]["code"] == status
    message: str = body[names[status]]["message"]
    return message
