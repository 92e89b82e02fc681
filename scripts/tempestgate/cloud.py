"""A throwaway ``stackbox up`` for one Tempest run: started fresh, always stopped."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tempestgate import paths

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class CloudError(Exception):
    """The cloud could not be started or asked about itself."""


@dataclass
class Cloud:
    base_url: str
    admin_password: str
    log: Path
    # From the admin token: catalog type -> [{"interface", "region_id", "url"}, ...]
    catalog: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # The admin's project-scoped token, for the runner's own setup calls.
    admin_token: str = ""

    @property
    def identity_v3(self) -> str:
        return f"{self.base_url}/identity/v3"

    def region(self) -> str:
        for endpoint in self.catalog.get("identity", []):
            if endpoint.get("interface") == "public" and endpoint.get("region_id"):
                return str(endpoint["region_id"])
        raise CloudError("the catalog has no public identity endpoint with a region")

    def endpoint(self, catalog_type: str) -> str:
        """The public URL of a catalog service, without a trailing slash."""
        for endpoint in self.catalog.get(catalog_type, []):
            if endpoint.get("interface") == "public":
                return str(endpoint["url"]).rstrip("/")
        raise CloudError(f"the catalog has no public {catalog_type} endpoint")


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the runner dies, even by SIGKILL (Linux prctl)."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CloudError(
                f"stackbox up exited with status {proc.returncode} before answering; "
                f"its output is in {log}:\n{_tail(log)}"
            )
        if _status(url) == 200:
            return
        time.sleep(0.2)
    raise CloudError(f"{url} did not answer 200 within {START_TIMEOUT:.0f}s; see {log}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"tempest: stackbox (pid {proc.pid}) ignored SIGTERM; killing it", flush=True)
        proc.kill()
        proc.wait()


def _authenticate(cloud: Cloud) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """Authenticate as admin: the token, and its catalog indexed by service type."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"id": "default"},
                        "password": cloud.admin_password,
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    request = urllib.request.Request(
        f"{cloud.identity_v3}/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            token_id = str(response.headers["X-Subject-Token"])
            token = json.load(response)["token"]
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise CloudError(f"admin cannot authenticate: {exc.code} {detail}") from None
    catalog: dict[str, list[dict[str, Any]]] = {}
    for service in token.get("catalog", []):
        catalog.setdefault(service["type"], []).extend(service.get("endpoints", []))
    return token_id, catalog


@contextlib.contextmanager
def running(
    log: Path,
    fetch_port: int | None = None,
    host: str = "127.0.0.1",
    settings: dict[str, str] | None = None,
) -> Iterator[Cloud]:
    """Start stackbox on a free port with a temporary state dir; stop and clean up after.

    ``fetch_port``: the port of the runner's file server, which the cloud's fetch
    allow-list (127.0.0.1 only, cloud.toml) then opens instead of 80 and 443.
    ``host``: the address the API listens on; ``settings``: ``STACKBOX_*`` environment
    settings over cloud.toml's.
    """
    if not paths.STACKBOX.exists():
        raise CloudError(f"{paths.STACKBOX} is missing; run `make install` first")
    tmp = Path(tempfile.mkdtemp(prefix="stackbox-tempest-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        port = free_port()
        password = secrets.token_urlsafe(16)
        log.parent.mkdir(parents=True, exist_ok=True)
        # HOME points into the temp dir so `up` merges its clouds.yaml there, not into ~.
        env = {**os.environ, "HOME": str(tmp)}
        env = {k: v for k, v in env.items() if not k.startswith("STACKBOX_")}
        if fetch_port is not None:
            env["STACKBOX_IMAGE_IMPORT_ALLOWED_PORTS"] = str(fetch_port)
        env.update(settings or {})
        command = [
            str(paths.STACKBOX),
            "up",
            "--state-dir",
            str(tmp / "state"),
            "--config",
            str(paths.CLOUD_CONFIG),
            "--host",
            host,
            "--port",
            str(port),
            "--admin-password",
            password,
        ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
                preexec_fn=_die_with_parent,
            )
        cloud = Cloud(base_url=f"http://{host}:{port}", admin_password=password, log=log)
        print(f"tempest: starting stackbox (pid {proc.pid}) at {cloud.base_url}", flush=True)
        started = time.monotonic()
        _wait_ready(proc, cloud.identity_v3, log)
        cloud.admin_token, cloud.catalog = _authenticate(cloud)
        print(f"tempest: stackbox ready in {time.monotonic() - started:.1f}s", flush=True)
        yield cloud
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
