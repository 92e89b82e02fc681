"""The outbox relay: nudges written with a change are published once it commits.

API handlers add ``net_outbox`` rows in the transaction of their change (see
``network.notify``). The relay reads them after commit, lets the scheduler place
what they name, publishes them on the bus and deletes what it sent. A crash
between publishing and deleting sends a nudge twice, which is harmless
(reconcilers are level-based); a rolled-back change sends nothing.

It wakes right after any transaction that wrote an outbox row commits (an
SQLAlchemy insert hook on ``Outbox``), and polls every ``poll_interval`` for rows
other processes wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, object_session

from stackbox.bus import interface, messages
from stackbox.db import session as db_session
from stackbox.network import models

LOG = logging.getLogger(__name__)

Batch = list[tuple[str, messages.Nudge]]
Observer = Callable[[Batch], Awaitable[None]]


def to_nudge(message: dict[str, Any]) -> messages.Nudge:
    return messages.Nudge(
        kind=str(message.get("kind", "")),
        id=str(message.get("id", "")),
        network_id=str(message.get("network_id") or ""),
    )


class OutboxRelay:
    def __init__(
        self,
        database: db_session.Database,
        bus: interface.Bus,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        observers: list[Observer] | None = None,
    ) -> None:
        self.database = database
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # Run on each batch before it is published (the scheduler places what it names).
        self.observers = observers or []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    # --- waking after commit ------------------------------------------------------------------

    def _on_insert(self, mapper: Any, connection: Any, target: models.Outbox) -> None:
        session = object_session(target)
        if session is not None:
            db_session.after_commit(session, self.wake)

    def wake(self) -> None:
        """Called from any thread once a transaction with outbox rows committed."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(self._wake.set)

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        event.listen(models.Outbox, "after_insert", self._on_insert)
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        if event.contains(models.Outbox, "after_insert", self._on_insert):
            event.remove(models.Outbox, "after_insert", self._on_insert)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._loop = None

    async def run(self) -> None:
        while True:
            try:
                while await self.relay_once() >= self.batch_size:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.warning("outbox relay failed; trying again", exc_info=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    # --- one pass -----------------------------------------------------------------------------

    def _read(self, session: Session) -> list[tuple[int, str, dict[str, Any]]]:
        rows = session.execute(
            select(models.Outbox.id, models.Outbox.topic, models.Outbox.message)
            .order_by(models.Outbox.id)
            .limit(self.batch_size)
        )
        return [(row_id, topic, dict(message or {})) for row_id, topic, message in rows]

    def _delete(self, session: Session, ids: list[int]) -> None:
        session.query(models.Outbox).filter(models.Outbox.id.in_(ids)).delete(
            synchronize_session=False
        )

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows it held."""
        rows = await asyncio.to_thread(self.database.run, self._read, write=False)
        if not rows:
            return 0
        batch: Batch = [(topic, to_nudge(message)) for _, topic, message in rows]
        for observer in self.observers:
            try:
                await observer(batch)
            except Exception:
                # Scheduling is repaired by the periodic sweep; the nudges must still go.
                LOG.warning("outbox observer failed", exc_info=True)
        for topic, nudge in batch:
            await self.bus.publish(topic, nudge)
        ids = [row_id for row_id, _, _ in rows]
        await asyncio.to_thread(self.database.run, lambda s: self._delete(s, ids), write=True)
        self.published += len(rows)
        return len(rows)
