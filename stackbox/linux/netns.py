"""Network namespaces: ``qdhcp-<network>`` and the like, made and removed by name."""

from __future__ import annotations

import os

from stackbox.linux import run

NETNS_DIR = "/run/netns"


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def ensure_namespace(name: str) -> None:
    """The namespace, with its loopback up (new namespaces have ip_forward 0: left so)."""
    if not exists(name):
        try:
            run.ip("netns", "add", name)
        except run.LinuxError:
            if not exists(name):
                raise
    run.ip("link", "set", "lo", "up", ns=name)


def remove_namespace(name: str) -> None:
    if exists(name):
        try:
            run.ip("netns", "delete", name)
        except run.LinuxError:
            if exists(name):
                raise
