"""Helpers for the server tests: a cloud with DevStack's defaults, HTTP clients per
user and microversion, booting and waiting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests import cloudfixture

FLAVOR = "42"  # m1.nano
FLAVOR_ALT = "84"  # m1.micro
IMAGE_NAME = "stackbox-tiny"
LATEST = "2.96"


@contextmanager
def devstack_cloud(tmp: Path) -> Iterator[cloudfixture.Cloud]:
    """A cloud with DevStack's flavors, image and networks (demo's ``private``)."""
    with cloudfixture.in_process(
        tmp, compute={"create_defaults": True}, network={"create_defaults": True}
    ) as cloud:
        yield cloud


def compute(
    cloud: cloudfixture.Cloud, version: str = LATEST, token: str | None = None
) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/compute/v2.1",
        headers={
            "X-Auth-Token": token or cloud.token(),
            "OpenStack-API-Version": f"compute {version}",
        },
        timeout=30,
    )


def networking(cloud: cloudfixture.Cloud, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/networking/v2.0",
        headers={"X-Auth-Token": token or cloud.token()},
        timeout=30,
    )


def version(value: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {value}"}


def image_id(cloud: cloudfixture.Cloud) -> str:
    response = httpx.get(
        cloud.base_url + "/image/v2/images",
        params={"name": IMAGE_NAME},
        headers={"X-Auth-Token": cloud.token()},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["images"][0]["id"])


def network_id(cloud: cloudfixture.Cloud, name: str = "private") -> str:
    with networking(cloud) as net:
        found = net.get("/networks", params={"name": name}).json()["networks"]
    assert found, f"no network {name}"
    return str(found[0]["id"])


def boot(
    client: httpx.Client,
    image: str,
    *,
    name: str = "server",
    flavor: str = FLAVOR,
    networks: Any = "auto",
    status: int = 202,
    headers: dict[str, str] | None = None,
    hints: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """POST /servers; returns the response body (asserting ``status``)."""
    server: dict[str, Any] = {"name": name, "imageRef": image, "flavorRef": flavor, **extra}
    if networks is not None:
        server["networks"] = networks
    body: dict[str, Any] = {"server": server}
    if hints is not None:
        body["os:scheduler_hints"] = hints
    response = client.post("/servers", json=body, headers=headers)
    assert response.status_code == status, response.text
    return dict(response.json()) if response.content else {}


def show(client: httpx.Client, server_id: str, **kwargs: Any) -> dict[str, Any]:
    response = client.get(f"/servers/{server_id}", **kwargs)
    assert response.status_code == 200, response.text
    return dict(response.json()["server"])


def wait_status(
    client: httpx.Client, server_id: str, wanted: str = "ACTIVE", timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    server = show(client, server_id)
    while server["status"] != wanted:
        assert server["status"] in ("BUILD", wanted) or wanted == "ERROR", server
        if time.monotonic() > deadline:
            raise AssertionError(f"server {server_id} is {server['status']}, not {wanted}")
        time.sleep(0.05)
        server = show(client, server_id)
    return server


def wait_gone(client: httpx.Client, server_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/servers/{server_id}").status_code != 404:
        if time.monotonic() > deadline:
            raise AssertionError(f"server {server_id} is still there")
        time.sleep(0.05)


def delete(client: httpx.Client, server_id: str) -> None:
    response = client.delete(f"/servers/{server_id}")
    assert response.status_code == 204, response.text
    wait_gone(client, server_id)


def ports_of(cloud: cloudfixture.Cloud, server_id: str) -> list[dict[str, Any]]:
    with networking(cloud) as net:
        response = net.get("/ports", params={"device_id": server_id})
    assert response.status_code == 200, response.text
    return list(response.json()["ports"])


def error(response: httpx.Response, status: int) -> str:
    """The message of a Nova error body with ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert len(body) == 1, body
    (inner,) = body.values()
    assert inner["code"] == status, body
    return str(inner["message"])
