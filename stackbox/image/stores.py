"""Filesystem stores: where image data lives.

Data arrives in ``<root>/.incoming/`` under a unique name and is renamed into
place only when complete and verified, so a crash leaves at worst a temporary
file (removed by the sweep), never a half image behind an active record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

INCOMING = ".incoming"
STAGING = "_staging"


@dataclasses.dataclass(frozen=True)
class FileStore:
    name: str
    root: Path
    description: str = ""

    def ensure(self) -> None:
        (self.root / INCOMING).mkdir(parents=True, exist_ok=True, mode=0o700)

    def temp_path(self, image_id: str) -> Path:
        """A fresh file name for data on its way in."""
        return self.root / INCOMING / f"{image_id}.{uuid.uuid4().hex}"

    def commit(self, temp: Path, image_id: str) -> str:
        """Move finished data into place; return its path relative to the root."""
        relative = image_id
        final = self.root / relative
        os.replace(temp, final)
        _fsync_dir(self.root)
        return relative

    def path(self, relative: str) -> Path:
        resolved = (self.root / relative).resolve()
        if self.root.resolve() not in resolved.parents:
            raise ValueError(f"{relative!r} is outside store {self.name}")
        return resolved

    def delete(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(relative).unlink()

    def sweep(
        self, referenced: Iterable[str], older_than: float = 3600.0, in_use: Iterable[Path] = ()
    ) -> list[Path]:
        """Remove files no location refers to, and temporary files of dead uploads.

        Only files older than ``older_than`` seconds go: a younger one may belong to
        an upload in progress, or be renamed into place a moment before its record.
        Files in ``in_use`` (uploads this process is writing) stay whatever their age.
        """
        keep = set(referenced)
        busy = set(in_use)
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        now = time.time()

        def stale(entry: Path) -> bool:
            try:
                return entry.is_file() and now - entry.stat().st_mtime >= older_than
            except FileNotFoundError:
                # Renamed or removed while we looked.
                return False

        for entry in self.root.iterdir():
            if entry.name not in keep and stale(entry):
                entry.unlink(missing_ok=True)
                removed.append(entry)
        incoming = self.root / INCOMING
        if incoming.is_dir():
            for entry in incoming.iterdir():
                if entry not in busy and stale(entry):
                    entry.unlink(missing_ok=True)
                    removed.append(entry)
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse(spec: str, state_dir: Path) -> dict[str, FileStore]:
    """``name[:path],...`` into stores, in order (the first is the default)."""
    stores: dict[str, FileStore] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, path = item.partition(":")
        if not name.replace("-", "").replace("_", "").isalnum() or name == STAGING:
            raise ValueError(f"invalid store name {name!r}")
        root = Path(path) if path else state_dir / "images" / name
        stores[name] = FileStore(name=name, root=root, description=f"filesystem store {name}")
    if not stores:
        raise ValueError("at least one image store is needed")
    return stores
