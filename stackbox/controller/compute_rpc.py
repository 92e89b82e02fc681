"""The controller's answers to compute agents (the contract in ``bus.compute_messages``)
and its compute sweep (servers stuck building).

``answer`` gives the transaction for one request and whether it writes, as
``rpc._answer`` does for the networking requests that share the ``controller``
topic.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from stackbox.bus import codec, compute_messages
from stackbox.compute import (
    build_timeouts,
    desired,
    hosts,
    image_sources,
    runtime,
    snapshot_targets,
    status_intake,
)
from stackbox.db import session as db_session

LOG = logging.getLogger(__name__)

# How often the sweep looks for stuck builds, at most (and at least).
SWEEP_MAX = 60.0
SWEEP_MIN = 1.0


def answer(request: codec.Record) -> tuple[Callable[[Session], Any], bool]:
    """The transaction that answers a compute request and whether it writes."""
    match request:
        case compute_messages.GetServersForHost(host=host, server_ids=server_ids):
            return lambda s: compute_messages.ServersForHost(
                host, desired.servers_for_host(s, host, server_ids)
            ), False
        case compute_messages.ReportServerStatus():
            return lambda s: status_intake.record(s, request), True
        case compute_messages.ComputeHeartbeat():
            return lambda s: hosts.record_heartbeat(s, request), True
        case compute_messages.GetSnapshotTarget():
            # Writes when the image does not declare its formats yet.
            return lambda s: snapshot_targets.target(s, request), True
        case compute_messages.GetImageSource():
            return lambda s: image_sources.source(s, request), False
    raise ValueError(f"the controller does not answer {type(request).__name__}")


def sweep_interval() -> float:
    """A tenth of the build timeout, within [SWEEP_MIN, SWEEP_MAX] seconds."""
    try:
        timeout = runtime.get().settings.build_timeout
    except RuntimeError:  # no compute service in this process
        return SWEEP_MAX
    if timeout <= 0:
        return SWEEP_MAX
    return min(SWEEP_MAX, max(SWEEP_MIN, timeout / 10))


async def sweep(database: db_session.Database) -> list[str]:
    """One pass: servers building for too long go to ERROR."""
    try:
        runtime.get()
    except RuntimeError:
        return []
    return await asyncio.to_thread(database.run, build_timeouts.fail_stuck_builds, write=True)


async def sweep_every(database: db_session.Database) -> None:
    while True:
        await asyncio.sleep(sweep_interval())
        try:
            await sweep(database)
        except asyncio.CancelledError:
            raise
        except Exception:
            LOG.warning("compute sweep failed", exc_info=True)


async def report_control_services_every(database: db_session.Database) -> None:
    """Keep this controller's nova-conductor / nova-scheduler rows up (os-services)."""
    while True:
        try:
            rt = runtime.get()
        except RuntimeError:  # no compute service in this process
            return
        interval = rt.settings.agent_report_interval
        try:
            await asyncio.to_thread(
                database.run,
                functools.partial(
                    hosts.record_control_services, host=rt.hostname, report_interval=interval
                ),
                write=True,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            LOG.warning("recording the controller's services failed", exc_info=True)
        await asyncio.sleep(interval)
