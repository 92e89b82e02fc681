"""Process-wide compute state: settings and the server's base URL, and the bus (with
the event loop it runs on) through which the API calls compute agents."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from stackbox.config import ComputeSettings


@dataclasses.dataclass
class ComputeRuntime:
    settings: ComputeSettings
    base_url: str
    # This node's host name (the all-in-one's compute agent reports under it).
    hostname: str = ""
    # The bus (a ``stackbox.bus.interface.Bus``) and its loop, once the process runs
    # them: ``agent_calls`` uses them from the API's worker threads.
    bus: Any = None
    loop: asyncio.AbstractEventLoop | None = None


_runtime: ComputeRuntime | None = None


def init(settings: ComputeSettings, base_url: str, hostname: str = "") -> ComputeRuntime:
    global _runtime
    _runtime = ComputeRuntime(settings, base_url.rstrip("/"), hostname)
    return _runtime


def attach_bus(bus: Any, loop: asyncio.AbstractEventLoop | None) -> None:
    """Give the API the bus it calls agents on (a no-op before ``init``)."""
    if _runtime is not None:
        _runtime.bus = bus
        _runtime.loop = loop


def detach_bus(bus: Any) -> None:
    """Forget ``bus`` if it is still the one attached (a newer one may have replaced it)."""
    if _runtime is not None and _runtime.bus is bus:
        _runtime.bus = None
        _runtime.loop = None


def get() -> ComputeRuntime:
    if _runtime is None:
        raise RuntimeError("compute runtime is not initialised")
    return _runtime
