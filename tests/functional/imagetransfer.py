"""Helpers for the image data tests: clients, images, qcow2 files, store contents, waiting."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests import cloudfixture

MIB = 1 << 20
OCTET = {"Content-Type": "application/octet-stream"}


def glance(cloud: cloudfixture.Cloud, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=f"{cloud.base_url}/image",
        headers={"X-Auth-Token": token or cloud.token()},
        timeout=60,
    )


def new_image(client: httpx.Client, disk_format: str = "raw", **extra: Any) -> dict[str, Any]:
    body = {"name": "data-test", "disk_format": disk_format, "container_format": "bare", **extra}
    made = client.post("/v2/images", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def show(client: httpx.Client, image_id: str) -> dict[str, Any]:
    found = client.get(f"/v2/images/{image_id}")
    assert found.status_code == 200, found.text
    return dict(found.json())


def upload(client: httpx.Client, image_id: str, data: Any, **headers: str) -> httpx.Response:
    return client.put(f"/v2/images/{image_id}/file", content=data, headers={**OCTET, **headers})


def qemu_img(*args: str) -> None:
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"qemu-img {' '.join(args)}: {done.stderr}"


def qcow2(path: Path, size: str = "64M", *options: str) -> bytes:
    qemu_img("create", "-f", "qcow2", *options, str(path), size)
    return path.read_bytes()


def store_files(state_dir: Path, store: str = "file") -> list[str]:
    """Every file in a store: data files by name, temporary ones as .incoming/<name>."""
    root = state_dir / "images" / store
    names = [p.name for p in root.iterdir() if p.is_file()]
    incoming = root / ".incoming"
    if incoming.is_dir():
        names += [f".incoming/{p.name}" for p in incoming.iterdir()]
    return sorted(names)


def wait_for(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def wait_status(client: httpx.Client, image_id: str, *statuses: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (i := show(client, image_id))["status"] in statuses and i))


@contextlib.contextmanager
def partial_put(
    cloud: cloudfixture.Cloud, image_id: str, length: int, first: bytes
) -> Iterator[socket.socket]:
    """An upload announcing ``length`` bytes that sends only ``first`` (the socket is yours)."""
    host, port = cloud.base_url.removeprefix("http://").split(":")
    head = (
        f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: {host}\r\n"
        f"X-Auth-Token: {cloud.token()}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + first)
        yield sock


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(call())
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def member_token(cloud: cloudfixture.Cloud) -> str:
    return cloud.token("demo", project="demo")


def stage(client: httpx.Client, image_id: str, data: bytes) -> httpx.Response:
    return client.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)


def import_(client: httpx.Client, image_id: str, **body: Any) -> httpx.Response:
    body.setdefault("method", {"name": "glance-direct"})
    return client.post(f"/v2/images/{image_id}/import", json=body)
