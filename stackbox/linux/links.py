"""Bridges, veth pairs and the addresses on them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from stackbox.linux import netns, run


def exists(device: str, ns: str | None = None) -> bool:
    if ns is None:
        return os.path.exists(f"/sys/class/net/{device}")
    if not netns.exists(ns):
        return False
    return bool(run.ip("link", "show", "dev", device, ns=ns, check=False).strip())


def ensure_bridge(name: str, mtu: int) -> None:
    """A bridge with no address and no uplink: it only joins the ports plugged into it."""
    if not exists(name):
        try:
            run.ip("link", "add", name, "mtu", str(mtu), "type", "bridge")
        except run.LinuxError:
            if not exists(name):
                raise
    link = _link(name, None)
    lines = []
    if link.get("mtu") != mtu:
        lines.append(f"link set {name} mtu {mtu}")
    if "UP" not in link.get("flags", []):
        lines.append(f"link set {name} up")
    run.ip_batch(lines)


def remove_link(name: str, ns: str | None = None) -> None:
    if exists(name, ns):
        try:
            run.ip("link", "delete", name, ns=ns)
        except run.LinuxError:
            if exists(name, ns):
                raise


def master(device: str) -> str | None:
    """The bridge a host-namespace device is plugged into (None: none, or no such device)."""
    path = f"/sys/class/net/{device}/master"
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else None


def ensure_plugged(device: str, bridge: str, mtu: int, *, up: bool = True) -> None:
    """``device`` in ``bridge``, up (or down: a port an admin turned off passes nothing)."""
    link = _link(device, None)
    lines = []
    if link.get("mtu") != mtu:
        lines.append(f"link set {device} mtu {mtu}")
    if link.get("master") != bridge:
        lines.append(f"link set {device} master {bridge}")
    if ("UP" in link.get("flags", [])) != up:
        lines.append(f"link set {device} {'up' if up else 'down'}")
    run.ip_batch(lines)


def _link(device: str, ns: str | None) -> dict[str, Any]:
    found = json.loads(run.ip("-j", "link", "show", "dev", device, ns=ns) or "[]")
    return found[0] if found else {}


def ensure_veth(outer: str, inner: str, ns: str, mac: str, mtu: int) -> None:
    """``outer`` in the host namespace, ``inner`` in ``ns`` with ``mac``, both up.

    Changes only what differs: dnsmasq 2.90 has been seen to crash (a general protection
    fault in libc) on its next SIGHUP after a link event on its interface, even one that
    set the same MAC again.
    """
    if not exists(outer):
        remove_link(inner, ns)  # a half-made pair from an interrupted run
        run.ip(
            "link", "add", outer, "mtu", str(mtu), "type", "veth",
            "peer", "name", inner, "mtu", str(mtu), "netns", ns,
        )  # fmt: skip
    link = _link(inner, ns)
    lines = []
    if str(link.get("address", "")).lower() != mac.lower():
        lines.append(f"link set {inner} address {mac}")
    if "UP" not in link.get("flags", []):
        lines.append(f"link set {inner} up")
    run.ip_batch(lines, ns=ns)
    if "UP" not in _link(outer, None).get("flags", []):
        run.ip("link", "set", outer, "up")


def names(ns: str | None = None) -> list[str]:
    """Every device in the namespace."""
    return [link["ifname"] for link in json.loads(run.ip("-j", "link", "show", ns=ns) or "[]")]


def addresses(device: str, ns: str | None = None) -> set[str]:
    """The device's global addresses as ``address/prefixlen``."""
    out = run.ip("-j", "addr", "show", "dev", device, ns=ns)
    found = set()
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            if info.get("scope") == "global":
                found.add(f"{info['local']}/{info['prefixlen']}")
    return found


def ensure_addresses(device: str, wanted: Iterable[str], ns: str | None = None) -> None:
    """Exactly ``wanted`` (``address/prefixlen``) on the device."""
    want = set(wanted)
    have = addresses(device, ns)
    lines = [f"addr del {a} dev {device}" for a in sorted(have - want)]
    lines += [f"addr add {a} dev {device}" for a in sorted(want - have)]
    run.ip_batch(lines, ns=ns)
