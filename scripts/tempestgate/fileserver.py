"""A loopback HTTP file server for one Tempest run: the images Tempest fetches by URL.

Tempest's ``[image] http_image`` (any bytes: locations, the http store, legacy
import tasks) and ``http_qcow2_image`` (a real qcow2: web-download) must be
URLs the cloud can fetch. Nothing may come from the internet, so the runner
serves both itself, from 127.0.0.1 on a free port, and tells the cloud that
port is the one its fetch allow-list opens.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RAW_NAME = "image.raw"
QCOW2_NAME = "image.qcow2"
RAW_SIZE = 1 << 20


@dataclass(frozen=True)
class Files:
    port: int
    http_image: str
    # Empty when qemu-img is missing (the reason says so).
    http_qcow2_image: str
    qcow2_missing_reason: str = ""


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _make_qcow2(path: Path) -> str:
    """Create a small qcow2 with qemu-img; return why not, or "" when it worked."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        return "qemu-img is not installed, so the runner cannot make a qcow2 image to serve"
    done = subprocess.run(
        [qemu_img, "create", "-f", "qcow2", str(path), "64M"], capture_output=True, text=True
    )
    if done.returncode != 0:
        return f"qemu-img create failed: {done.stderr.strip()}"
    return ""


@contextlib.contextmanager
def serving() -> Iterator[Files]:
    """Generate the images in a temporary directory and serve them until the block ends."""
    root = Path(tempfile.mkdtemp(prefix="stackbox-tempest-files-"))
    server: http.server.ThreadingHTTPServer | None = None
    try:
        (root / RAW_NAME).write_bytes(os.urandom(RAW_SIZE))
        missing = _make_qcow2(root / QCOW2_NAME)
        handler = functools.partial(_QuietFiles, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, name="tempest-files", daemon=True)
        thread.start()
        port = int(server.server_address[1])
        base = f"http://127.0.0.1:{port}"
        print(f"tempest: serving test images at {base}/", flush=True)
        yield Files(
            port=port,
            http_image=f"{base}/{RAW_NAME}",
            http_qcow2_image="" if missing else f"{base}/{QCOW2_NAME}",
            qcow2_missing_reason=missing,
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(root, ignore_errors=True)
