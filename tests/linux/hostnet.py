"""What Linux tests make on the host, removed again whatever happens."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

TOOLS = ("ip", "dnsmasq", "busybox")


def skip_unless_root() -> pytest.MarkDecorator:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    reason = (
        "needs root (namespaces, bridges, dnsmasq)"
        if os.geteuid() != 0
        else f"missing host tools: {', '.join(missing)} (`make test` installs them)"
    )
    return pytest.mark.skipif(os.geteuid() != 0 or bool(missing), reason=reason)


def sh(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def namespaces() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.strip()}


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


@contextmanager
def cleanup() -> Iterator[Callable[[Callable[[], object]], None]]:
    """Register undo steps; they run last-first at the end, each even if others fail."""
    steps: list[Callable[[], object]] = []
    try:
        yield steps.append
    finally:
        for step in reversed(steps):
            try:
                step()
            except Exception:  # every step must get its turn
                pass


@contextmanager
def guest(tap: str, mac: str) -> Iterator[str]:
    """A stand-in for an instance: a namespace whose eth0 (with ``mac``) is the peer of
    ``tap`` in the host namespace, as a compute driver would make it."""
    name = f"stackbox-test-{uuid.uuid4().hex[:8]}"
    with cleanup() as undo:
        sh("ip", "netns", "add", name)
        undo(lambda: sh("ip", "netns", "delete", name, check=False))
        sh("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", name)
        undo(lambda: sh("ip", "link", "delete", tap, check=False))
        sh("ip", "-n", name, "link", "set", "eth0", "address", mac)
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "link", "set", tap, "up")
        yield name


LEASE_SCRIPT = """#!/bin/sh
# udhcpc's hook: print what the server offered instead of changing the namespace.
[ "$1" = bound ] || exit 0
echo "ip=$ip"
echo "subnet=$subnet"
echo "router=$router"
echo "dns=$dns"
echo "mtu=$mtu"
echo "hostname=$hostname"
"""


def dhcp_lease(namespace: str, script_dir: str) -> dict[str, str]:
    """Ask for a lease on eth0 of ``namespace`` with busybox udhcpc; what was offered
    ({} when nothing was)."""
    script = os.path.join(script_dir, "lease.sh")
    with open(script, "w") as f:
        f.write(LEASE_SCRIPT)
    os.chmod(script, 0o755)
    out = sh(
        "ip", "netns", "exec", namespace,
        "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "10", "-T", "1",
        "-O", "mtu", "-O", "hostname", "-s", script, check=False,
    )  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
