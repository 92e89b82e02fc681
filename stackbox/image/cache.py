"""A node's image cache: verified copies of image data in a local directory.

Only files, no database: the API server uses it, and so will compute agents
on other nodes, which never open the database. The layout under the root:

    <image id>             complete, verified data
    meta/<image id>.json   what the data must be (size, hashes) and its use (hits, last access)
    incomplete/<id>.<rnd>  downloads in progress, renamed into place once verified
    queue/<image id>       images waiting to be fetched

A fetch writes the metadata before renaming the data into place, so a crash
leaves at worst metadata without data or a stale download; ``clean`` removes
both, and any data whose hash no longer matches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

LOG = logging.getLogger(__name__)

DIR_NAME = "image-cache"
META = "meta"
INCOMPLETE = "incomplete"
QUEUE = "queue"
LOCK = ".lock"
# An incomplete download untouched this long is dead (Glance's image_cache_stall_time is a day;
# ours writes continuously, so an hour without a write is plenty).
STALL_GRACE = 3600.0
CHUNK = 1024 * 1024
_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class CacheError(Exception):
    """The cache cannot do what was asked; the message says why."""


class VerificationError(CacheError):
    """Fetched data is not what the image says it is (size or hash)."""


def normal_id(image_id: str) -> str | None:
    """The canonical form of an image id, or None if it cannot name a cache file."""
    try:
        canonical = str(uuid.UUID(image_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return canonical if _ID_RE.match(canonical) else None


@dataclasses.dataclass(frozen=True)
class Expected:
    """What an image's data must be; from the image record (``GET /v2/images/{id}``)."""

    size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None

    @classmethod
    def of(cls, image: Mapping[str, Any]) -> Expected:
        return cls(
            size=image.get("size"),
            checksum=image.get("checksum"),
            os_hash_algo=image.get("os_hash_algo"),
            os_hash_value=image.get("os_hash_value"),
        )

    def hasher(self) -> tuple[str, Any, str] | None:
        """The strongest hash we can check: (name, hash object, expected hex digest)."""
        algo = (self.os_hash_algo or "").lower()
        if self.os_hash_value and algo in hashlib.algorithms_available:
            return algo, hashlib.new(algo), self.os_hash_value.lower()
        if self.checksum:
            return "md5", hashlib.md5(usedforsecurity=False), self.checksum.lower()
        return None


@dataclasses.dataclass
class Entry:
    image_id: str
    size: int
    last_accessed: float
    last_modified: float
    hits: int
    expected: Expected

    def as_glance(self) -> dict[str, Any]:
        """One item of Glance's ``cached_images`` list."""
        return {
            "image_id": self.image_id,
            "hits": self.hits,
            "last_accessed": self.last_accessed,
            "last_modified": self.last_modified,
            "size": self.size,
        }


@dataclasses.dataclass(frozen=True)
class Fetched:
    """What one prefetch did for one queued image."""

    image_id: str
    # cached | present | gone | not active | invalid | failed
    outcome: str
    detail: str = ""


class Source(Protocol):
    """Where a prefetch reads images: the local stores (server) or the Image API (a node)."""

    def describe(self, image_id: str) -> Mapping[str, Any] | None:
        """The image's record (status, size, hashes), or None if there is no such image."""
        ...

    def read(self, image_id: str, image: Mapping[str, Any]) -> Iterator[bytes]:
        """The image's data, chunk by chunk."""
        ...


class ImageCache:
    def __init__(self, root: Path, max_size: int) -> None:
        self.root = Path(root)
        self.max_size = max_size

    # -- layout -------------------------------------------------------------------------------

    def ensure(self) -> None:
        for sub in (META, INCOMPLETE, QUEUE):
            (self.root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)

    def data_path(self, image_id: str) -> Path:
        return self.root / _checked(image_id)

    def _meta_path(self, image_id: str) -> Path:
        return self.root / META / f"{image_id}.json"

    def _queue_path(self, image_id: str) -> Path:
        return self.root / QUEUE / image_id

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer of metadata at a time, across processes sharing the directory."""
        self.ensure()
        with open(self.root / LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _data_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_file() and normal_id(p.name))

    # -- reading ------------------------------------------------------------------------------

    def _read_meta(self, image_id: str) -> dict[str, Any] | None:
        try:
            found = json.loads(self._meta_path(image_id).read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def entry(self, image_id: str) -> Entry | None:
        key = normal_id(image_id)
        if key is None:
            return None
        try:
            info = (self.root / key).stat()
        except FileNotFoundError:
            return None
        meta = self._read_meta(key) or {}
        return Entry(
            image_id=key,
            size=info.st_size,
            last_accessed=float(meta.get("last_accessed", info.st_mtime)),
            last_modified=info.st_mtime,
            hits=int(meta.get("hits", 0)),
            expected=Expected.of(meta),
        )

    def cached(self) -> list[Entry]:
        return [e for e in (self.entry(i) for i in self._data_ids()) if e is not None]

    def is_cached(self, image_id: str) -> bool:
        key = normal_id(image_id)
        return key is not None and (self.root / key).is_file()

    def total_size(self) -> int:
        return sum(e.size for e in self.cached())

    @contextlib.contextmanager
    def open(self, image_id: str) -> Iterator[BinaryIO]:
        """Read cached data (FileNotFoundError if not cached); counts a hit."""
        with open(self.data_path(image_id), "rb") as handle:
            self.record_hit(image_id)
            yield handle

    def record_hit(self, image_id: str) -> None:
        key = _checked(image_id)
        with self._locked():
            meta = self._read_meta(key)
            if meta is None or not (self.root / key).is_file():
                return
            meta["hits"] = int(meta.get("hits", 0)) + 1
            meta["last_accessed"] = time.time()
            self._write_meta(key, meta)

    # -- queue --------------------------------------------------------------------------------

    def queued(self) -> list[str]:
        folder = self.root / QUEUE
        if not folder.is_dir():
            return []
        entries = [p for p in folder.iterdir() if p.is_file() and normal_id(p.name)]
        # Oldest first: the order they were asked for.
        return [p.name for p in sorted(entries, key=lambda p: (p.stat().st_mtime, p.name))]

    def is_queued(self, image_id: str) -> bool:
        key = normal_id(image_id)
        return key is not None and self._queue_path(key).is_file()

    def queue(self, image_id: str) -> bool:
        """Ask for an image to be fetched; False if it is cached or queued already."""
        key = _checked(image_id)
        if self.is_cached(key) or self.is_queued(key):
            return False
        self.ensure()
        self._queue_path(key).touch()
        return True

    def unqueue(self, image_id: str) -> bool:
        key = normal_id(image_id)
        if key is None:
            return False
        try:
            self._queue_path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def unqueue_all(self) -> int:
        return sum(1 for key in self.queued() if self.unqueue(key))

    # -- writing ------------------------------------------------------------------------------

    def store(self, image_id: str, chunks: Iterable[bytes], expected: Expected) -> Entry:
        """Write ``chunks`` as the image's cached data if they match ``expected``.

        Data goes to ``incomplete/`` first and is renamed into place only when its
        size and hash match; otherwise it is removed and VerificationError raised.
        """
        key = _checked(image_id)
        check = expected.hasher()
        if check is None and expected.size is None:
            raise VerificationError(f"image {key} has neither a size nor a hash to verify")
        self.ensure()
        temp = self.root / INCOMPLETE / f"{key}.{uuid.uuid4().hex}"
        size = 0
        try:
            with open(temp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                    if check is not None:
                        check[1].update(chunk)
                    if expected.size is not None and size > expected.size:
                        raise VerificationError(
                            f"image {key}: more data than its size of {expected.size} bytes"
                        )
                out.flush()
                os.fsync(out.fileno())
            if expected.size is not None and size != expected.size:
                raise VerificationError(
                    f"image {key}: got {size} bytes, the image has {expected.size}"
                )
            if check is not None and check[1].hexdigest() != check[2]:
                raise VerificationError(f"image {key}: {check[0]} of the data does not match")
            moment = time.time()
            meta = {
                "image_id": key,
                "size": size,
                "checksum": expected.checksum,
                "os_hash_algo": expected.os_hash_algo,
                "os_hash_value": expected.os_hash_value,
                "cached_at": moment,
                "last_accessed": moment,
                "hits": 0,
            }
            with self._locked():
                self._write_meta(key, meta)
                os.replace(temp, self.root / key)
                self.unqueue(key)
        finally:
            temp.unlink(missing_ok=True)
        entry = self.entry(key)
        if entry is None:
            raise CacheError(f"image {key} vanished from the cache as it was stored")
        return entry

    def _write_meta(self, image_id: str, meta: dict[str, Any]) -> None:
        path = self._meta_path(image_id)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        temp.write_text(json.dumps(meta, sort_keys=True))
        os.replace(temp, path)

    def delete(self, image_id: str) -> bool:
        """Remove an image's cached data and metadata; False if it was not cached."""
        key = normal_id(image_id)
        if key is None:
            return False
        with self._locked():
            return self._remove(key)

    def _remove(self, key: str) -> bool:
        try:
            (self.root / key).unlink()
            found = True
        except FileNotFoundError:
            found = False
        self._meta_path(key).unlink(missing_ok=True)
        return found

    def delete_all(self) -> int:
        with self._locked():
            return sum(1 for key in self._data_ids() if self._remove(key))

    # -- upkeep -------------------------------------------------------------------------------

    def verify(self, image_id: str) -> str | None:
        """Why the cached data is invalid (None if it is valid, or not cached)."""
        entry = self.entry(image_id)
        if entry is None:
            return None
        meta = self._read_meta(entry.image_id)
        if meta is None:
            return "no metadata"
        expected = entry.expected
        if expected.size is not None and entry.size != expected.size:
            return f"size {entry.size} instead of {expected.size}"
        check = expected.hasher()
        if check is None:
            return None if expected.size is not None else "nothing to verify it against"
        try:
            with open(self.root / entry.image_id, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    check[1].update(chunk)
        except FileNotFoundError:
            return None
        if check[1].hexdigest() != check[2]:
            return f"{check[0]} mismatch"
        return None

    def clean(self, grace: float = STALL_GRACE) -> list[tuple[str, str]]:
        """Remove what cannot be used; return (name, reason) for each removal.

        Invalid data (hash or size mismatch, no metadata), metadata without data,
        downloads not written to for ``grace`` seconds, and stray files.
        """
        removed: list[tuple[str, str]] = []
        if not self.root.is_dir():
            return removed
        for key in self._data_ids():
            checked = _identity(self.root / key)
            reason = self.verify(key)
            if reason is None:
                continue
            with self._locked():
                # Only if it is still the data we checked (not replaced by a fresh fetch).
                if checked is not None and _identity(self.root / key) == checked:
                    self._remove(key)
                    removed.append((key, reason))
        now_ts = time.time()
        with self._locked():
            for path in sorted((self.root / META).iterdir()):
                key = path.name.removesuffix(".json")
                if path.name.startswith("."):
                    if now_ts - _mtime(path) > grace:
                        path.unlink(missing_ok=True)
                        removed.append((f"{META}/{path.name}", "stale temporary file"))
                elif not (self.root / key).is_file():
                    path.unlink(missing_ok=True)
                    removed.append((key, "metadata without data"))
        for path in sorted((self.root / INCOMPLETE).iterdir()):
            if now_ts - _mtime(path) > grace:
                path.unlink(missing_ok=True)
                removed.append((f"{INCOMPLETE}/{path.name}", "stalled download"))
        for path in sorted(self.root.iterdir()):
            stray = path.is_file() and path.name != LOCK and not normal_id(path.name)
            if stray and now_ts - _mtime(path) > grace:
                path.unlink(missing_ok=True)
                removed.append((path.name, "not a cache entry"))
        return removed

    def prune(self, max_size: int | None = None) -> list[Entry]:
        """Remove least recently used entries until the total is at most ``max_size``."""
        limit = self.max_size if max_size is None else max_size
        removed: list[Entry] = []
        with self._locked():
            entries = sorted(self.cached(), key=lambda e: (e.last_accessed, e.image_id))
            total = sum(e.size for e in entries)
            for entry in entries:
                if total <= limit:
                    break
                if self._remove(entry.image_id):
                    total -= entry.size
                    removed.append(entry)
        return removed


def _checked(image_id: str) -> str:
    key = normal_id(image_id)
    if key is None:
        raise CacheError(f"{image_id!r} is not an image id")
    return key


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def chunks_of(handle: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    while chunk := handle.read(size):
        yield chunk


def prefetch(cache: ImageCache, source: Source) -> list[Fetched]:
    """Fetch every queued image from ``source`` into ``cache``, verifying each.

    An image that no longer exists leaves the queue; one that is not active, or
    whose data failed to fetch or verify, stays queued for the next run.
    """
    done: list[Fetched] = []
    for key in cache.queued():
        done.append(_fetch_one(cache, source, key))
        level = logging.INFO if done[-1].outcome in ("cached", "present") else logging.WARNING
        LOG.log(level, "prefetch %s: %s %s", key, done[-1].outcome, done[-1].detail)
    return done


def _fetch_one(cache: ImageCache, source: Source, key: str) -> Fetched:
    try:
        image = source.describe(key)
    except Exception as exc:  # one image's trouble must not stop the others
        return Fetched(key, "failed", str(exc))
    if image is None:
        cache.unqueue(key)
        return Fetched(key, "gone", "no such image")
    if image.get("status") != "active":
        return Fetched(key, "not active", f"status {image.get('status')}")
    if cache.is_cached(key):
        cache.unqueue(key)
        return Fetched(key, "present")
    chunks = source.read(key, image)
    try:
        entry = cache.store(key, chunks, Expected.of(image))
    except VerificationError as exc:
        return Fetched(key, "invalid", str(exc))
    except Exception as exc:
        return Fetched(key, "failed", str(exc))
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Fetched(key, "cached", f"{entry.size} bytes")
