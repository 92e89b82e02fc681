"""The compute agent of one host: nudges in, reconciles through the driver, reports out.

It listens on ``compute`` and ``compute.<host>`` for server nudges and queues the
server id (``agent.runtime.WorkQueue``: dedupe, one worker per key, backoff); it
heartbeats every report interval with what the driver says the host has (which
registers the host's nova-compute service and hypervisor), resyncs everything on
start, periodically and when the controller saw it as dead, and serves the API's
requests for this host on ``compute-rpc.<host>`` (console output).

Stopping the agent leaves the driver's instances alone, as restarting
nova-compute leaves its guests running: a new agent on the same driver takes
them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from stackbox.agent import runtime
from stackbox.agent.compute import driver, reconciler
from stackbox.bus import codec, compute_messages, interface, messages

LOG = logging.getLogger(__name__)


def tail(text: str, length: int | None) -> str:
    """The last ``length`` lines of ``text`` (all of it when None or negative), as Nova's
    compute manager cuts a console log."""
    if length is None or length < 0:
        return text
    if length == 0:
        return ""
    return "\n".join(text.split("\n")[-length:])


class ComputeAgent:
    def __init__(
        self,
        bus: interface.Bus,
        host: str,
        compute: driver.Driver,
        *,
        report_interval: float = 10.0,
        resync_interval: float = 60.0,
        rpc_timeout: float = 30.0,
        work_dir: Path | None = None,
        workers: int = 8,
        upload: reconciler.Upload | None = None,
    ) -> None:
        self.bus = bus
        self.host = host
        self.driver = compute
        self.report_interval = report_interval
        self.resync_interval = resync_interval
        self.rpc_timeout = rpc_timeout
        work = work_dir or Path(tempfile.gettempdir()) / f"stackbox-compute-{host}"
        options: dict[str, Any] = {"work_dir": work}
        if upload is not None:
            options["upload"] = upload
        self.reconciler = reconciler.Reconciler(host, compute, self._call, **options)
        self.queue: runtime.WorkQueue[str] = runtime.WorkQueue(
            f"compute-agent@{host}", self.reconciler.reconcile, workers=workers
        )
        self.service_id: str | None = None
        self.disabled = False
        self._subscription: interface.Subscription | None = None
        self._service: interface.Service | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen first (no nudge is missed), then report and resync in the background."""
        self._subscription = self.bus.subscribe(
            [compute_messages.COMPUTE_TOPIC, compute_messages.host_topic(self.host)]
        )
        self._service = self.bus.serve(compute_messages.rpc_topic(self.host), self.handle)
        self.queue.start()
        self._tasks = [
            asyncio.create_task(self._listen(self._subscription), name=f"{self.host}-servers"),
            asyncio.create_task(self._run_reports(), name=f"{self.host}-compute-heartbeat"),
            asyncio.create_task(
                runtime.every(self.resync_interval, self.resync, f"compute resync on {self.host}"),
                name=f"{self.host}-compute-resync",
            ),
        ]

    async def stop(self) -> None:
        """Stop listening, reporting and reconciling; the instances stay."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._service is not None:
            self._service.close()
            self._service = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.queue.stop()

    async def wait_idle(self) -> None:
        await self.queue.wait_idle()

    async def _run_reports(self) -> None:
        # Report before the first sync: the host is registered before it asks what it has.
        delay = 0.2
        while True:
            try:
                await self.report_state()
                await self.resync()
                break
            except interface.BusError as exc:
                LOG.warning(
                    "compute agent on %s cannot reach the controller yet: %s", self.host, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.report_interval)
        await runtime.every(
            self.report_interval, self.report_state, f"compute heartbeat of {self.host}"
        )

    # --- nudges -----------------------------------------------------------------------------

    async def _listen(self, subscription: interface.Subscription) -> None:
        async for record in subscription:
            if isinstance(record, messages.Nudge):
                self.on_nudge(record)

    def on_nudge(self, nudge: messages.Nudge) -> None:
        if nudge.kind == compute_messages.NUDGE_KIND and nudge.id:
            self.queue.add(nudge.id)

    async def _call(self, request: codec.Record) -> Any:
        return await self.bus.call(messages.CONTROLLER_TOPIC, request, self.rpc_timeout)

    async def resync(self) -> None:
        """Queue every server this host should have and every guest it has."""
        for server_id in sorted(await self.reconciler.wanted_and_held()):
            self.queue.add(server_id)

    # --- heartbeats -------------------------------------------------------------------------

    async def report_state(self) -> None:
        """One heartbeat with the host's resources; a full resync if we were seen as dead."""
        first = not self._started
        ack = await self._call(
            compute_messages.ComputeHeartbeat(
                host=self.host,
                report_interval=self.report_interval,
                hypervisor=self.driver.host_resources(),
                start_flag=first,
            )
        )
        self._started = True
        self.service_id = ack.service_id
        self.disabled = ack.disabled
        if ack.status == messages.AGENT_REVIVED and not first:
            LOG.info("compute service on %s was seen as down; resyncing", self.host)
            await self.resync()

    # --- requests from the API --------------------------------------------------------------

    async def handle(self, request: codec.Record) -> codec.Record:
        match request:
            case compute_messages.GetConsoleOutput(server_id=server_id, length=length):
                text = await self.driver.get_console_output(server_id)
                return compute_messages.ConsoleOutput(server_id, tail(text, length))
        raise ValueError(f"the compute agent does not answer {type(request).__name__}")
