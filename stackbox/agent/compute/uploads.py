"""Snapshot data to the Image service: a streamed ``PUT .../file`` with the token the
controller minted (``GetSnapshotTarget``), as Nova's compute uploads to Glance.

Only the standard library (agents run without the test tooling installed), in a
worker thread so the agent's event loop keeps running while the data travels.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

from stackbox.bus import compute_messages

TIMEOUT = 300.0


class UploadFailed(Exception):
    pass


def put_file(url: str, token: str, path: Path, timeout: float = TIMEOUT) -> None:
    size = path.stat().st_size
    with path.open("rb") as data:
        request = urllib.request.Request(
            url,
            data=data,
            method="PUT",
            headers={
                "X-Auth-Token": token,
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise UploadFailed(
                f"the Image service refused the data: HTTP {exc.code} {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise UploadFailed(f"the Image service could not be reached: {exc}") from None


async def upload(target: compute_messages.SnapshotTarget, path: Path) -> None:
    """Send ``path`` to ``target`` (raises ``UploadFailed``)."""
    await asyncio.to_thread(put_file, target.url, target.token, path)
