"""The controller's loops as one unit: the RPC server agents talk to, the outbox
relay (with scheduling on the way), the periodic scheduling sweep and the compute
sweep (servers stuck building)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from stackbox.bus import interface
from stackbox.controller import compute_rpc, relay, rpc, scheduler
from stackbox.db import session as db_session

LOG = logging.getLogger(__name__)


class Controller:
    def __init__(
        self,
        database: db_session.Database,
        bus: interface.Bus,
        *,
        sweep_interval: float,
        poll_interval: float = 1.0,
    ) -> None:
        self.scheduler = scheduler.Scheduler(database)
        self.rpc = rpc.RpcServer(database, bus)
        self.relay = relay.OutboxRelay(
            database, bus, poll_interval=poll_interval, observers=[self.scheduler.on_batch]
        )
        self.sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None
        self._compute_sweeper: asyncio.Task[None] | None = None
        self._control_reporter: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Answer agents first: the relay's first nudges make them ask.
        self.rpc.start()
        self.relay.start()
        self._sweeper = asyncio.create_task(self._sweep_every(), name="scheduling-sweep")
        self._compute_sweeper = asyncio.create_task(
            compute_rpc.sweep_every(self.relay.database), name="compute-sweep"
        )
        self._control_reporter = asyncio.create_task(
            compute_rpc.report_control_services_every(self.relay.database),
            name="control-services",
        )

    async def stop(self) -> None:
        for task in (self._sweeper, self._compute_sweeper, self._control_reporter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sweeper = self._compute_sweeper = self._control_reporter = None
        await self.relay.stop()
        self.rpc.stop()

    async def _sweep_every(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.scheduler.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.warning("scheduling sweep failed", exc_info=True)
