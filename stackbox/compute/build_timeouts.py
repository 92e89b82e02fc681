"""Servers stuck building: Nova's ``instance_build_timeout``.

A server still in BUILD ``build_timeout`` seconds after it was created (a lost
agent, a nudge no resync repaired, a spawn that hangs) goes to ERROR with a
fault, and its create action is finished as failed. A server whose host's
compute service is down is left alone: Nova checks the build time on the
compute host itself, so a dead host's servers wait for it to come back (its
agent then finishes or fails the build). A server being deleted is not touched.
The server keeps its claims and ports, as any ERROR server does, until deleted.
"""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.compute import common, hosts, models, runtime, states, status_intake

LOG = logging.getLogger(__name__)


def fail_stuck_builds(
    session: Session, now: datetime.datetime | None = None, timeout: int | None = None
) -> list[str]:
    """Put servers building for longer than ``timeout`` seconds in ERROR; their ids."""
    if timeout is None:
        timeout = runtime.get().settings.build_timeout
    if timeout <= 0:
        return []
    now = now or common.now()
    cutoff = now - datetime.timedelta(seconds=timeout)
    stuck = session.scalars(
        select(models.Server).where(
            models.Server.vm_state == states.BUILDING,
            models.Server.deleted.is_(False),
            models.Server.created_at < cutoff,
        )
    ).all()
    host_up: dict[str, bool] = {}
    failed = []
    for server in stuck:
        if server.task_state == states.DELETING:
            continue
        if server.host:
            if server.host not in host_up:
                host_up[server.host] = hosts.host_is_up(session, server.host, now)
            if not host_up[server.host]:
                continue
        message = f"Build of instance {server.id} timed out after {timeout} seconds."
        status_intake.finish_action(
            session,
            server,
            status_intake.BUILD,
            ok=False,
            host=server.host,
            started=server.created_at,
            message=message,
        )
        server.vm_state = states.ERROR
        server.task_state = None
        server.updated_at = now
        status_intake.add_fault(session, server, message, host=server.host)
        failed.append(server.id)
    if failed:
        LOG.warning("servers stuck building put in ERROR: %s", ", ".join(failed))
    return failed
