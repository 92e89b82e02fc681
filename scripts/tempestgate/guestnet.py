"""Where Tempest runs for ``scripts/tempest guests``: a network namespace of its own.

Tempest logs in to real guests over their floating IPs. Rather than give the host an
address on the cloud's external network (a host that forwards would then be the
routers' way out), Tempest runs in ``stackbox-tempest-<hex>``, which holds

- ``api0`` (169.254.77.2/30), a veth to the host's ``sbx-api-<hex>`` (169.254.77.1),
  the one address the cloud's API listens on for this run, and
- ``ext0`` with the public subnet's gateway address (172.24.4.1/24), a veth whose
  other end ``sbx-ext-<hex>`` is plugged into the public network's bridge (which has
  no uplink). Routers send what leaves the cloud to that gateway: into this namespace,
  which does not forward, so nothing gets further.

Everything is removed on the way out; the ``ext`` veth before the cloud stops, so
that its agent finds the public bridge empty and removes it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tempestgate.cloud import CloudError

API_HOST = "169.254.77.1"
API_PEER = "169.254.77.2/30"
BRIDGE_WAIT = 60.0


def _sh(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CloudError(f"{' '.join(argv)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class TempestNamespace:
    name: str
    suffix: str

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


@contextlib.contextmanager
def namespace() -> Iterator[TempestNamespace]:
    """The namespace with its link to the API's address (made before the cloud starts)."""
    if os.geteuid() != 0:
        raise CloudError("`scripts/tempest guests` needs root (namespaces, bridges, QEMU)")
    suffix = secrets.token_hex(3)
    ns = TempestNamespace(f"stackbox-tempest-{suffix}", suffix)
    host_end = f"sbx-api-{suffix}"
    try:
        _sh("ip", "netns", "add", ns.name)
        _sh("ip", "-n", ns.name, "link", "set", "lo", "up")
        _sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "api0", "netns", ns.name)
        _sh("ip", "addr", "add", f"{API_HOST}/30", "dev", host_end)
        _sh("ip", "link", "set", host_end, "up")
        _sh("ip", "-n", ns.name, "addr", "add", API_PEER, "dev", "api0")
        _sh("ip", "-n", ns.name, "link", "set", "api0", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "delete", host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True, check=False)


@contextlib.contextmanager
def outside(ns: TempestNamespace, public_network_id: str, gateway_cidr: str) -> Iterator[None]:
    """``ext0`` on the public network's bridge, once the cloud's agent has made it."""
    bridge = f"brq{public_network_id[:11]}"
    deadline = time.monotonic() + BRIDGE_WAIT
    while not os.path.exists(f"/sys/class/net/{bridge}"):
        if time.monotonic() > deadline:
            raise CloudError(f"the public network's bridge {bridge} did not appear")
        time.sleep(0.5)
    host_end = f"sbx-ext-{ns.suffix}"
    try:
        _sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "ext0", "netns", ns.name)
        _sh("ip", "link", "set", host_end, "master", bridge, "up")
        _sh("ip", "-n", ns.name, "addr", "add", gateway_cidr, "dev", "ext0")
        _sh("ip", "-n", ns.name, "link", "set", "ext0", "up")
        yield
    finally:
        subprocess.run(["ip", "link", "delete", host_end], capture_output=True, check=False)
