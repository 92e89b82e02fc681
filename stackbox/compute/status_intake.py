"""What compute agents report (``ReportServerStatus``) becomes server state.

A report counts only for the generation it was made for: if the server's
``generation`` moved on (a newer action) or its task is not the one the agent
carried out, the report is stale and ignored — the agent will hear of the newer
generation. A counted report

- on success applies ``states.DONE`` for the task (a build becomes ACTIVE), with
  the power state the agent saw; a finished delete is ``servers.finish_delete``
  (the row stays, soft-deleted; claims, ports and group membership go); a
  finished resize shows the new flavor (VERIFY_RESIZE); a finished offload takes
  the server off its host;
- on failure records a fault; a failed build, rebuild, unshelve or delete leaves
  the server in ERROR (``states.FAILED_TO_ERROR``), other tasks return to the
  state they started from;

and in both cases clears the task, sets ``observed_generation`` and finishes the
instance action the task belongs to (its ``compute_*`` event, as Nova's compute
manager records them).
"""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.bus import compute_messages, compute_specs
from stackbox.compute import (
    common,
    desired,
    models,
    network_glue,
    notify,
    placement,
    runtime,
    states,
)
from stackbox.image import images as image_rows
from stackbox.image import models as image_models

LOG = logging.getLogger(__name__)

BUILD = "build"  # the key of a build in the tables below (its task varies)
RESIZE_TASKS = frozenset({states.RESIZE_PREP, states.RESIZE_MIGRATING, states.RESIZE_FINISH})
SNAPSHOT_TASKS = frozenset(
    {states.IMAGE_SNAPSHOT, states.IMAGE_PENDING_UPLOAD, states.IMAGE_UPLOADING}
)
# Failures that leave ERROR besides states.FAILED_TO_ERROR: Nova errors out a server
# whose delete failed.
FAILED_TO_ERROR = states.FAILED_TO_ERROR | {states.DELETING}
# Tasks after which Nova stamps launched_at again.
RELAUNCHING = RESIZE_TASKS | {states.REBUILDING, states.RESIZE_REVERTING, states.UNSHELVING}

# Which instance actions (os-instance-actions names) a task belongs to.
ACTIONS_OF_TASK: dict[str, tuple[str, ...]] = {
    BUILD: ("create",),
    states.DELETING: ("delete", "forceDelete"),
    states.POWERING_ON: ("start",),
    states.POWERING_OFF: ("stop",),
    states.REBOOTING: ("reboot",),
    states.REBOOTING_HARD: ("reboot",),
    states.PAUSING: ("pause",),
    states.UNPAUSING: ("unpause",),
    states.SUSPENDING: ("suspend",),
    states.RESUMING: ("resume",),
    states.REBUILDING: ("rebuild", "evacuate"),
    **{task: ("resize", "migrate") for task in RESIZE_TASKS},
    states.RESIZE_REVERTING: ("revertResize",),
    **{task: ("createImage", "createBackup") for task in SNAPSHOT_TASKS},
    states.RESCUING: ("rescue",),
    states.UNRESCUING: ("unrescue",),
    states.SHELVING: ("shelve",),
    states.SHELVING_OFFLOADING: ("shelveOffload", "shelve"),
    states.UNSHELVING: ("unshelve",),
}
# The event Nova's compute manager records for each (its wrap_instance_event names).
EVENT_OF_TASK: dict[str, str] = {
    BUILD: "compute__do_build_and_run_instance",
    states.DELETING: "compute_terminate_instance",
    states.POWERING_ON: "compute_start_instance",
    states.POWERING_OFF: "compute_stop_instance",
    states.REBOOTING: "compute_reboot_instance",
    states.REBOOTING_HARD: "compute_reboot_instance",
    states.PAUSING: "compute_pause_instance",
    states.UNPAUSING: "compute_unpause_instance",
    states.SUSPENDING: "compute_suspend_instance",
    states.RESUMING: "compute_resume_instance",
    states.REBUILDING: "compute_rebuild_instance",
    **{task: "compute_resize_instance" for task in RESIZE_TASKS},
    states.RESIZE_REVERTING: "compute_revert_resize",
    **{task: "compute_snapshot_instance" for task in SNAPSHOT_TASKS},
    states.RESCUING: "compute_rescue_instance",
    states.UNRESCUING: "compute_unrescue_instance",
    states.SHELVING: "compute_shelve_instance",
    states.SHELVING_OFFLOADING: "compute_shelve_offload_instance",
    states.UNSHELVING: "compute_unshelve_instance",
}
# Migrations a resize report may finish or undo (``server_rebuild_resize``'s open ones,
# less "finished": that one already finished).
OPEN_MIGRATIONS = ("pre-migrating", "migrating", "post-migrating")


def record(
    session: Session, report: compute_messages.ReportServerStatus
) -> compute_messages.ServerStatusAck:
    updated: list[str] = []
    ignored: list[str] = []
    unknown: list[str] = []
    for item in report.servers:
        server = session.get(models.Server, item.id)
        if server is None or server.deleted or server.host != report.host:
            unknown.append(item.id)
        elif item.observed_generation != server.generation or item.task != server.task_state:
            LOG.debug(
                "stale report for server %s (generation %d, task %s; now %d, %s)",
                item.id,
                item.observed_generation,
                item.task,
                server.generation,
                server.task_state,
            )
            ignored.append(item.id)
        else:
            apply(session, server, item, report.host)
            updated.append(item.id)
    return compute_messages.ServerStatusAck(tuple(updated), tuple(ignored), tuple(unknown))


def task_key(server: models.Server) -> str | None:
    """The task a report finishes, with every build task as ``BUILD``."""
    if server.vm_state == states.BUILDING and server.task_state != states.DELETING:
        return BUILD
    return server.task_state


def apply(
    session: Session, server: models.Server, item: compute_specs.ServerStatus, host: str
) -> None:
    """Apply one current report (the caller checked generation and task)."""
    now = common.now()
    key = task_key(server)
    if key is not None:
        finish_action(
            session,
            server,
            key,
            ok=item.ok,
            host=host,
            started=_moment(item.started_at, now),
            message=item.fault_message,
            details=item.fault_details,
        )
    if item.ok:
        _succeeded(session, server, key, item, now)
    else:
        _failed(session, server, key, item, host, now)
    server.observed_generation = item.observed_generation
    server.updated_at = now


def _moment(stamp: float, now: datetime.datetime) -> datetime.datetime:
    if stamp <= 0:
        return now
    moment = datetime.datetime.fromtimestamp(stamp, datetime.UTC).replace(tzinfo=None)
    return min(moment, now).replace(microsecond=0)


# --- success --------------------------------------------------------------------------------


def _succeeded(
    session: Session,
    server: models.Server,
    key: str | None,
    item: compute_specs.ServerStatus,
    now: datetime.datetime,
) -> None:
    if key == states.DELETING:
        # Imported here: servers builds on the modules that import this one.
        from stackbox.compute import servers

        servers.finish_delete(session, server)
        return
    if key == BUILD:
        outcome = states.Outcome(states.ACTIVE, states.RUNNING)
    else:
        outcome = states.DONE.get(key, states.DONE[None])
    vm_state = outcome.vm_state or server.vm_state
    if key in RESIZE_TASKS:
        _resized(session, server, now)
    elif key == states.RESIZE_REVERTING:
        server.old_flavor = None
        server.new_flavor = None
    elif key == states.SHELVING_OFFLOADING:
        _offloaded(session, server)
    server.vm_state = vm_state
    server.task_state = None
    server.power_state = item.power_state
    if (key == BUILD and server.launched_at is None) or key in RELAUNCHING:
        server.launched_at = now
    if key == states.SHELVING and runtime.get().settings.shelved_offload_time == 0:
        # Nova offloads at once by default: the same shelve action goes on to free the
        # host (its compute_shelve_offload_instance event is finished by that report).
        server.task_state = states.SHELVING_OFFLOADING
        server.generation += 1
        notify.server(session, server.id, server.host)


def _open_migration(session: Session, server_id: str) -> models.Migration | None:
    return session.scalars(
        select(models.Migration)
        .where(
            models.Migration.server_id == server_id,
            models.Migration.status.in_(OPEN_MIGRATIONS),
        )
        .order_by(models.Migration.id.desc())
        .limit(1)
    ).first()


def _resized(session: Session, server: models.Server, now: datetime.datetime) -> None:
    """The guest has the new flavor: the server shows it (VERIFY_RESIZE) until confirmed."""
    if server.new_flavor:
        server.old_flavor = server.old_flavor or dict(server.flavor or {})
        server.flavor = dict(server.new_flavor)
    migration = _open_migration(session, server.id)
    if migration is not None:
        migration.status = "finished"
        migration.updated_at = now


def _undo_resize(session: Session, server: models.Server, now: datetime.datetime) -> None:
    """A resize that failed: the old claim, flavor and host are the server's again."""
    migration = _open_migration(session, server.id)
    if migration is not None:
        node = placement.revert_resize(session, server, migration.uuid)
        if node is not None and node.host != server.host:
            failed_on = server.host
            server.host = node.host
            server.node = node.hypervisor_hostname
            network_glue.rebind(session, server)
            # The source lost its copy when the server left: its agent makes it again.
            notify.server(session, server.id, server.host)
            notify.server(session, server.id, failed_on)
        migration.status = "error"
        migration.updated_at = now
    if server.old_flavor:
        server.flavor = dict(server.old_flavor)
    server.old_flavor = None
    server.new_flavor = None


def _offloaded(session: Session, server: models.Server) -> None:
    """Shelved and offloaded: the server leaves its host and what it held there."""
    placement.release(session, server.id)
    server.host = None
    server.node = None
    network_glue.rebind(session, server)


# --- failure --------------------------------------------------------------------------------


def _failed(
    session: Session,
    server: models.Server,
    key: str | None,
    item: compute_specs.ServerStatus,
    host: str,
    now: datetime.datetime,
) -> None:
    if key == BUILD or key in FAILED_TO_ERROR:
        server.vm_state = states.ERROR
    if key in RESIZE_TASKS:
        _undo_resize(session, server, now)
    if key in SNAPSHOT_TASKS or key == states.SHELVING:
        _drop_unfinished_snapshots(session, server.id)
    server.task_state = None
    server.power_state = item.power_state
    add_fault(
        session,
        server,
        item.fault_message or "The compute agent reported a failure.",
        item.fault_details,
        code=item.fault_code,
        host=host,
    )


def add_fault(
    session: Session,
    server: models.Server,
    message: str,
    details: str = "",
    *,
    code: int = 500,
    host: str | None = None,
) -> None:
    session.add(
        models.ServerFault(
            server_id=server.id,
            code=code,
            message=message[:10000],
            details=details,
            host=host or server.host,
            created_at=common.now(),
        )
    )


def _drop_unfinished_snapshots(session: Session, server_id: str) -> None:
    """Nova deletes the image of a failed snapshot: no queued image is left behind."""
    for snapshot in desired.pending_snapshots(session, [server_id]).get(server_id, []):
        image = session.get(image_models.Image, snapshot.image_id)
        if image is not None:
            image_rows.delete_row(session, image)


# --- instance actions -----------------------------------------------------------------------


def finish_action(
    session: Session,
    server: models.Server,
    key: str,
    *,
    ok: bool,
    host: str | None,
    started: datetime.datetime,
    message: str = "",
    details: str = "",
) -> None:
    """Finish the newest instance action of this task: its open events, and the compute
    event Nova records for the task (added if the API did not start one)."""
    query = select(models.InstanceAction).where(models.InstanceAction.server_id == server.id)
    names = ACTIONS_OF_TASK.get(key)
    if names:
        query = query.where(models.InstanceAction.action.in_(names))
    action = session.scalars(
        query.order_by(models.InstanceAction.start_time.desc(), models.InstanceAction.id.desc())
    ).first()
    if action is None:
        return
    now = common.now()
    result = "Success" if ok else "Error"
    traceback = None if ok else (details or message or None)
    events = list(
        session.scalars(
            select(models.InstanceActionEvent).where(
                models.InstanceActionEvent.action_id == action.id
            )
        )
    )
    for event in events:
        if event.finish_time is None:
            event.finish_time = now
            event.result = result
            event.host = event.host or host
            if not ok:
                event.traceback = traceback
                event.details = message or None
    name = EVENT_OF_TASK.get(key)
    if name and not any(event.event == name for event in events):
        session.add(
            models.InstanceActionEvent(
                action_id=action.id,
                event=name,
                result=result,
                traceback=traceback,
                host=host,
                details=None if ok else (message or None),
                start_time=max(started, action.start_time),
                finish_time=now,
            )
        )
    action.updated_at = now
    action.finish_time = now
    if not ok:
        action.message = "Error"
