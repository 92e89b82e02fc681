"""Which bus a process uses, from one setting: ``memory://`` (or nothing) keeps the
controller and agents on one asyncio loop; ``amqp://user:pass@host:port/vhost`` puts them
on a RabbitMQ broker, across hosts."""

from __future__ import annotations

from stackbox.bus import amqp, interface, memory

MEMORY_URLS = ("", "memory", "memory://")
AMQP_SCHEMES = ("amqp://", "amqps://")


async def open_bus(url: str = "") -> interface.Bus:
    """A connected bus for ``url``; ``amqp.Unreachable`` when its broker cannot be reached."""
    if url.strip() in MEMORY_URLS:
        return memory.Bus()
    if url.startswith(AMQP_SCHEMES):
        return await amqp.Bus.open(url)
    raise ValueError(
        f"unknown bus URL {amqp.redacted(url)!r}: use memory:// or amqp://user:pass@host:port/vhost"
    )
