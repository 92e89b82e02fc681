"""The API server's own image cache, filled from the local stores.

Queued images are fetched every ``cache_prefetch_interval`` seconds, and at once
when the cache API queues one (as Glance's cache worker does). After each run,
copies of deleted images are dropped and the cache is pruned to
``cache_max_size``. The data is read from the store file the image's active
location names and verified against the image's hashes like any other fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.db import session as db_session
from stackbox.image import cache, models, runtime, stores

LOG = logging.getLogger(__name__)

_nudge: Callable[[], None] | None = None


def server_cache() -> cache.ImageCache:
    rt = runtime.get()
    return cache.ImageCache(rt.cache_dir, rt.settings.cache_max_size)


class LocalSource:
    """Images as the database and the local stores have them (a cache.Source)."""

    def __init__(self, database: db_session.Database) -> None:
        self.database = database

    def describe(self, image_id: str) -> Mapping[str, Any] | None:
        return self.database.run(lambda s: _describe(s, image_id), write=False)

    def read(self, image_id: str, image: Mapping[str, Any]) -> Iterator[bytes]:
        if image.get("path") is None:
            raise cache.CacheError(f"image {image_id} has no data in a local store")
        with open(image["path"], "rb") as handle:
            yield from cache.chunks_of(handle)


def _describe(session: Session, image_id: str) -> dict[str, Any] | None:
    image = session.get(models.Image, image_id)
    if image is None:
        return None
    location = session.scalars(
        select(models.ImageLocation)
        .where(
            models.ImageLocation.image_id == image_id,
            models.ImageLocation.status == "active",
            models.ImageLocation.store != stores.STAGING,
        )
        .order_by(models.ImageLocation.id)
    ).first()
    path = None
    if location is not None:
        with contextlib.suppress(KeyError, ValueError):
            path = str(runtime.get().store(location.store).path(location.path))
    return {
        "status": image.status,
        "size": image.size,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "path": path,
    }


def _existing(session: Session, image_ids: list[str]) -> set[str]:
    found = session.scalars(select(models.Image.id).where(models.Image.id.in_(image_ids)))
    return set(found)


def forget_deleted(database: db_session.Database, node_cache: cache.ImageCache) -> list[str]:
    """Drop cached copies of images that were deleted (their data must not linger)."""
    cached = [e.image_id for e in node_cache.cached()]
    if not cached:
        return []
    existing = database.run(lambda s: _existing(s, cached), write=False)
    gone = [i for i in cached if i not in existing]
    for image_id in gone:
        node_cache.delete(image_id)
    return gone


def run_once(database: db_session.Database, node_cache: cache.ImageCache) -> list[cache.Fetched]:
    fetched = cache.prefetch(node_cache, LocalSource(database))
    gone = forget_deleted(database, node_cache)
    if gone:
        LOG.info("image cache: dropped deleted images %s", ", ".join(gone))
    pruned = node_cache.prune()
    if pruned:
        LOG.info("image cache pruned: %s", ", ".join(e.image_id for e in pruned))
    return fetched


def nudge() -> None:
    """Fetch queued images now rather than at the next interval (no-op when not running)."""
    if _nudge is not None:
        # The loop may be closing as a request finishes; then the nudge has no one to wake.
        with contextlib.suppress(RuntimeError):
            _nudge()


async def run_every(database: db_session.Database, interval: float) -> None:
    """The server's prefetch loop: at start, every ``interval`` seconds, and when nudged."""
    global _nudge
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def wake_up() -> None:
        loop.call_soon_threadsafe(wake.set)

    _nudge = wake_up
    node_cache = server_cache()
    try:
        while True:
            wake.clear()
            try:
                await asyncio.to_thread(run_once, database, node_cache)
            except Exception:
                LOG.exception("image cache prefetch failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=interval)
    finally:
        _nudge = None
