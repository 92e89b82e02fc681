"""Image data for image tests: a loopback HTTP server of blobs, and active images made from it.

Images are filled through the tasks API's ``import`` (the server downloads the
blob from the loopback server), so a test gets an active image with real data,
size and hashes through the front door.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests import cloudfixture


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class BlobServer:
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url

    def add(self, data: bytes) -> str:
        """Serve ``data``; return its URL."""
        name = f"{uuid.uuid4().hex}.bin"
        (self.root / name).write_bytes(data)
        return f"{self.url}/{name}"


@contextlib.contextmanager
def blob_server(root: Path) -> Iterator[BlobServer]:
    root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield BlobServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def image_client(cloud: cloudfixture.Cloud, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=f"{cloud.base_url}/image",
        headers={"X-Auth-Token": token or cloud.token()},
        timeout=30,
    )


def wait_task(client: httpx.Client, task_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = client.get(f"/v2/tasks/{task_id}").json()
        if task["status"] in ("success", "failure") or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


def import_task(url: str, **properties: Any) -> dict[str, Any]:
    props = {"disk_format": "raw", "container_format": "bare", **properties}
    return {
        "type": "import",
        "input": {"import_from": url, "import_from_format": "raw", "image_properties": props},
    }


def active_image(
    client: httpx.Client, blobs: BlobServer, data: bytes, **properties: Any
) -> dict[str, Any]:
    """A new active image holding ``data`` (made by an import task)."""
    properties.setdefault("name", "cached")
    created = client.post("/v2/tasks", json=import_task(blobs.add(data), **properties))
    assert created.status_code == 201, created.text
    task = wait_task(client, created.json()["id"])
    assert task["status"] == "success", task
    image = client.get(f"/v2/images/{task['result']['image_id']}").json()
    assert image["status"] == "active"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    return dict(image)


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


# Settings that let a cloud fetch from this module's loopback servers (the default
# allow-list refuses loopback and every port but 80 and 443).
LOOPBACK_FETCH = {"import_allowed_hosts": "127.0.0.1", "import_allowed_ports": ""}
