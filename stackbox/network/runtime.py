"""Process-wide networking state: settings and the server's base URL."""

from __future__ import annotations

import dataclasses

from stackbox.config import NetworkSettings


@dataclasses.dataclass
class NetworkRuntime:
    settings: NetworkSettings
    base_url: str


_runtime: NetworkRuntime | None = None


def init(settings: NetworkSettings, base_url: str) -> NetworkRuntime:
    global _runtime
    _runtime = NetworkRuntime(settings, base_url.rstrip("/"))
    return _runtime


def get() -> NetworkRuntime:
    if _runtime is None:
        raise RuntimeError("network runtime is not initialised")
    return _runtime
