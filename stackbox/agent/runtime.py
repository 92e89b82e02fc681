"""The agents' engine: a per-key work queue with dedupe, one worker per key, backoff,
and periodic resync (DESIGN §2, §5).

A reconciler takes a key (a port id, a network id), never an event: it reads the
desired state, compares it with what is there, and fixes the difference. So:

- a key queued twice before it runs runs once (dedupe);
- a key is never reconciled by two workers at once; one added while it runs is
  run again afterwards, so the latest change is always seen;
- a failed key is retried after a backoff that doubles per consecutive failure
  (reset by a success), without holding up other keys;
- ``every()`` runs a resync (queue every key that exists) on a timer, which is
  what repairs a nudge the bus lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

LOG = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        name: str,
        reconcile: Callable[[K], Awaitable[None]],
        *,
        workers: int = 4,
        backoff_initial: float = 0.2,
        backoff_max: float = 30.0,
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # Keys waiting to run, in arrival order (a dict is an ordered set).
        self._pending: dict[K, None] = {}
        self._running: set[K] = set()
        # Keys added while running: run again once the current run ends.
        self._dirty: set[K] = set()
        self.failures: dict[K, int] = {}
        self._retries: dict[K, asyncio.TimerHandle] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        return len(self._pending) + len(self._running)

    def add(self, key: K) -> None:
        """Queue ``key`` (a no-op if it is already waiting)."""
        if key in self._running:
            self._dirty.add(key)
            return
        if key not in self._pending:
            self._pending[key] = None
            self._idle.clear()
            self._wakeup.set()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds (a retry; an earlier ``add`` still runs now)."""
        previous = self._retries.pop(key, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._retries[key] = loop.call_later(delay, self._retry, key)
        self._idle.clear()

    def _retry(self, key: K) -> None:
        self._retries.pop(key, None)
        self.add(key)
        self._check_idle()

    def backoff(self, failures: int) -> float:
        delay = min(self.backoff_initial * 2 ** (failures - 1), self.backoff_max)
        # Jitter, so keys that failed together do not retry in lockstep.
        return float(delay * random.uniform(0.8, 1.0))

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                for i in range(self._workers)
            ]

    async def stop(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def wait_idle(self) -> None:
        """Until nothing is queued, running or waiting for a retry."""
        await self._idle.wait()

    def _check_idle(self) -> None:
        if not self._pending and not self._running and not self._retries:
            self._idle.set()

    async def _worker(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            key = next(iter(self._pending))
            del self._pending[key]
            self._running.add(key)
            try:
                await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                count = self.failures.get(key, 0) + 1
                self.failures[key] = count
                delay = self.backoff(count)
                LOG.warning(
                    "%s: %r failed (%d in a row), retrying in %.1fs: %s",
                    self.name,
                    key,
                    count,
                    delay,
                    exc,
                    exc_info=count == 1,
                )
                self.add_after(key, delay)
            else:
                self.failures.pop(key, None)
            finally:
                self._running.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
                self._check_idle()


async def every(
    interval: float, action: Callable[[], Awaitable[None]], name: str, jitter: float = 0.1
) -> None:
    """Run ``action`` every ``interval`` seconds (first after one interval) until cancelled.

    A failing action is logged and tried again at the next tick.
    """
    while True:
        await asyncio.sleep(interval * random.uniform(1 - jitter, 1 + jitter))
        try:
            await action()
        except asyncio.CancelledError:
            raise
        except Exception:
            LOG.warning("%s failed; trying again in %.0fs", name, interval, exc_info=True)
