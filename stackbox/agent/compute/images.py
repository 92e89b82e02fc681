"""Image data on a compute host: downloaded through the Image API (``GetImageSource``)
once per image and checksum, kept in a cache directory, as Nova's image cache does.

Only the standard library, in a worker thread, like ``uploads``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from stackbox.agent.compute import driver
from stackbox.bus import compute_messages

TIMEOUT = 300.0
CHUNK = 1 << 20

Call = Callable[[Any], Awaitable[Any]]


# One download per cached file at a time: spawns that need the same image wait for it.
_downloads: dict[Path, asyncio.Lock] = {}


def _download(source: compute_messages.ImageSource, target: Path) -> None:
    # A name of its own: another process may be fetching the same image into this cache.
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    partial = Path(name)
    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(source.url, headers={"X-Auth-Token": source.token})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response, partial.open("wb") as f:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                f.write(chunk)
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise driver.DriverError(
            f"Image {source.image_id} could not be downloaded: HTTP {exc.code}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise driver.DriverError(
            f"Image {source.image_id} could not be downloaded: {exc}"
        ) from None
    if source.checksum and digest.hexdigest() != source.checksum:
        partial.unlink(missing_ok=True)
        raise driver.DriverError(f"Image {source.image_id} arrived corrupted (checksum mismatch).")
    partial.replace(target)


async def fetch(call: Call, cache: Path, server_id: str, image_id: str) -> Path:
    """The image's data as a local file (downloaded unless the cache holds this checksum)."""
    source = await call(compute_messages.GetImageSource(server_id, image_id))
    if source.error:
        raise driver.DriverError(source.error)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{image_id}-{source.checksum or 'nochecksum'}"
    async with _downloads.setdefault(target, asyncio.Lock()):
        if not target.exists():
            await asyncio.to_thread(_download, source, target)
    return target
