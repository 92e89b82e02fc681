"""Fernet key repositories with Keystone's rotation scheme.

A repository is a directory of key files named by integers. ``0`` is the staged
key (every server can already decrypt with it, so it can be promoted without a
window in which some server rejects new tokens); the highest number is the
primary key that encrypts; the rest are secondary keys kept to decrypt older
tokens. Rotation promotes the staged key to primary, stages a new key, and drops
the oldest secondaries beyond ``max_active_keys``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet


class KeyRepository:
    def __init__(self, path: Path, max_active_keys: int = 3) -> None:
        if max_active_keys < 2:
            raise ValueError("max_active_keys must be at least 2 (staged and primary)")
        self.path = path
        self.max_active_keys = max_active_keys
        self._lock = threading.Lock()
        self._fernet: MultiFernet | None = None
        self._loaded_mtime: float | None = None
        self._checked_at = 0.0

    def _key_files(self) -> dict[int, Path]:
        found: dict[int, Path] = {}
        if not self.path.is_dir():
            return found
        for entry in self.path.iterdir():
            if entry.name.isdigit() and entry.is_file():
                found[int(entry.name)] = entry
        return found

    def _write_key(self, index: int) -> None:
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path / str(index))

    def ensure(self) -> None:
        """Create the repository with a staged and a primary key if it has none."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = self._key_files()
        if 0 not in keys:
            self._write_key(0)
        if not any(index > 0 for index in self._key_files()):
            # The first primary comes from the staged key, as in a rotation.
            self.rotate()

    def rotate(self) -> int:
        """Promote the staged key, stage a new one, prune; return the new primary's index."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            keys = self._key_files()
            if 0 not in keys:
                self._write_key(0)
                keys = self._key_files()
            new_primary = max(keys) + 1
            os.replace(keys[0], self.path / str(new_primary))
            self._write_key(0)
            keys = self._key_files()
            secondaries = sorted(i for i in keys if 0 < i < new_primary)
            # Staged + primary + secondaries may not exceed max_active_keys.
            excess = len(secondaries) - (self.max_active_keys - 2)
            for index in secondaries[: max(excess, 0)]:
                keys[index].unlink(missing_ok=True)
            self._fernet = None
            self._fsync_dir()
            return new_primary

    def _fsync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fernet(self) -> MultiFernet:
        """The keys as a MultiFernet, primary first; reloaded when another process rotated."""
        now = time.monotonic()
        if self._fernet is not None and now - self._checked_at < 1.0:
            return self._fernet
        with self._lock:
            self._checked_at = now
            mtime = self.path.stat().st_mtime
            if self._fernet is None or mtime != self._loaded_mtime:
                keys = self._key_files()
                if not keys:
                    raise RuntimeError(f"no keys in {self.path}")
                order = sorted(keys, reverse=True)  # primary first, staged (0) last
                self._fernet = MultiFernet([Fernet(keys[i].read_bytes().strip()) for i in order])
                self._loaded_mtime = mtime
            return self._fernet
