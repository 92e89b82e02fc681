"""Image data on its way into a store: measured, hashed, inspected and written in one pass.

Chunks are gathered into blocks and each block goes at once to three workers:
md5, sha512 and the file writer. They run in parallel because hashlib and
``os.write`` release the GIL on large buffers, while this thread goes back for
the next chunk. The queues are short, so memory holds a few blocks whatever the
image's size, and a slow disk slows the sender instead of filling memory.

The data lands in the store's ``.incoming`` directory and stays there until the
caller commits it (a rename) in the same transaction that records it; on any
failure the temporary file is removed here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from stackbox.image import inspection as inspecting
from stackbox.image import stores

HASH_ALGO = "sha512"
# Bytes per block handed to the workers, and how many blocks one transfer may hold.
BLOCK = 1 << 20
BLOCKS = 6

_active: set[Path] = set()
_active_lock = threading.Lock()


class SourceFailed(Exception):
    """Reading the data failed (the client went away, or a source file broke)."""


@dataclasses.dataclass(frozen=True)
class Received:
    temp: Path
    size: int
    checksum: str | None
    hash_value: str | None
    virtual_size: int | None

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)


def active_temp_files() -> set[Path]:
    """Temporary files being written right now by this process (the sweep spares them)."""
    with _active_lock:
        return set(_active)


def read_file(path: Path, block: int = BLOCK) -> Iterator[bytes]:
    """A file's bytes, block by block (the source of imports and copies)."""
    with open(path, "rb", buffering=0) as handle:
        while True:
            data = handle.read(block)
            if not data:
                return
            yield data


class _Block:
    """One reusable buffer; it goes back to the pool once every worker is done with it."""

    def __init__(self, pool: queue.Queue[_Block], size: int) -> None:
        self.buffer = bytearray(size)
        self.length = 0
        self._pool = pool
        self._users = 0
        self._lock = threading.Lock()

    def view(self) -> memoryview:
        return memoryview(self.buffer)[: self.length]

    def hand_out(self, users: int) -> None:
        self._users = users

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self.length = 0
            self._pool.put(self)


class _Worker(threading.Thread):
    """Applies one function to every block, in order; remembers the first error."""

    def __init__(self, name: str, consume: Callable[[memoryview], object]) -> None:
        super().__init__(name=name, daemon=True)
        self._consume = consume
        self._queue: queue.Queue[_Block | None] = queue.Queue()
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            block = self._queue.get()
            if block is None:
                return
            try:
                if self.error is None:
                    with block.view() as view:
                        self._consume(view)
            except BaseException as exc:
                # Keep draining so the producer never waits on a dead worker.
                self.error = exc
            finally:
                block.release()

    def put(self, block: _Block) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(block)

    def stop(self) -> None:
        self._queue.put(None)
        self.join()


def _writer(fd: int) -> Callable[[memoryview], None]:
    def write(view: memoryview) -> None:
        while view:
            written = os.write(fd, view)
            view = view[written:]

    return write


def receive(
    chunks: Iterable[bytes],
    store: stores.FileStore,
    image_id: str,
    *,
    limit: int | None,
    on_limit: Callable[[int], Exception],
    inspection: inspecting.Inspection | None = None,
    hashes: bool = True,
) -> Received:
    """Write ``chunks`` to a new temporary file in ``store``.

    Raises ``on_limit(n)`` as soon as more than ``limit`` bytes arrive, the
    inspection's refusal as soon as the format is clear, and SourceFailed when
    reading ``chunks`` fails; the temporary file is gone after any of them.
    """
    temp = store.temp_path(image_id)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with _active_lock:
        _active.add(temp)
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.new(HASH_ALGO)
    short = image_id[:8]
    workers = [_Worker(f"image-write-{short}", _writer(fd))]
    if hashes:
        workers.append(_Worker(f"image-md5-{short}", md5.update))
        workers.append(_Worker(f"image-sha-{short}", sha.update))
    # Reused buffers: a fresh allocation per block costs a page fault per page.
    pool: queue.Queue[_Block] = queue.Queue()
    for _ in range(BLOCKS):
        pool.put(_Block(pool, BLOCK))
    for worker in workers:
        worker.start()
    stopped = False

    def dispatch(block: _Block) -> None:
        block.hand_out(len(workers))
        for worker in workers:
            worker.put(block)

    def stop_workers() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            for worker in workers:
                worker.stop()

    try:
        total = 0
        block = pool.get()
        source = iter(chunks)
        while True:
            try:
                chunk = next(source)
            except StopIteration:
                break
            except Exception as exc:
                raise SourceFailed(str(exc) or type(exc).__name__) from exc
            total += len(chunk)
            if limit is not None and total > limit:
                raise on_limit(total)
            if inspection is not None:
                inspection.feed(chunk)
            taken = 0
            while taken < len(chunk):
                room = BLOCK - block.length
                piece = chunk[taken : taken + room] if taken or len(chunk) > room else chunk
                block.buffer[block.length : block.length + len(piece)] = piece
                block.length += len(piece)
                taken += len(piece)
                if block.length == BLOCK:
                    dispatch(block)
                    # Waits here while every buffer is in use: the workers set the pace.
                    block = pool.get()
        if block.length:
            dispatch(block)
        if inspection is not None:
            inspection.finish()
        stop_workers()
        for worker in workers:
            if worker.error is not None:
                raise worker.error
        # The record will say "active": the bytes must be on disk before the rename.
        os.fdatasync(fd)
        return Received(
            temp=temp,
            size=total,
            checksum=md5.hexdigest() if hashes else None,
            hash_value=sha.hexdigest() if hashes else None,
            virtual_size=inspection.virtual_size(total) if inspection is not None else None,
        )
    except BaseException:
        stop_workers()
        temp.unlink(missing_ok=True)
        raise
    finally:
        stop_workers()
        with contextlib.suppress(OSError):
            os.close(fd)
        with _active_lock:
            _active.discard(temp)
