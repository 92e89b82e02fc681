"""The instance-action log (``os-instance-actions``): one row per user-visible action on
a server, with events for the steps the compute side runs.

Every API handler that acts on a server records it here, in its own transaction:

    action = actions_log.start(session, request, server, "reboot")
    actions_log.add_event(session, action, "compute_reboot_instance", host=server.host)

and whoever finishes the step (the controller's intake of the agent's report, or the
API itself for steps it completes alone) closes the event:

    actions_log.finish_event(session, server.id, "compute_reboot_instance", ok=True)

Action names are Nova's (``create``, ``delete``, ``reboot``, ``stop``, ``start``,
``pause``, ``unpause``, ``suspend``, ``resume``, ``rebuild``, ``resize``,
``confirmResize``, ``revertResize``, ``createImage``, ``lock``, ``unlock``,
``rescue``, ``unrescue``, ``shelve``, ``unshelve``, ``attach_interface``, ...);
event names are Nova's ``compute_<method>`` / ``conductor_<method>`` names.
"""

from __future__ import annotations

import traceback as tb

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, models

SUCCESS = "Success"
ERROR = "Error"


def start(
    session: Session,
    request: rest.ApiRequest,
    server: models.Server,
    action: str,
    *,
    message: str | None = None,
) -> models.InstanceAction:
    """Record that the caller started ``action`` on ``server`` (request id, user, project)."""
    ctx = request.context
    moment = common.now()
    row = models.InstanceAction(
        server_id=server.id,
        action=action,
        request_id=ctx.request_id,
        user_id=ctx.user_id,
        project_id=ctx.project_id or server.project_id,
        message=message,
        start_time=moment,
        updated_at=moment,
    )
    session.add(row)
    session.flush()
    return row


def add_event(
    session: Session,
    action: models.InstanceAction,
    event: str,
    *,
    host: str | None = None,
    result: str | None = None,
    details: str | None = None,
) -> models.InstanceActionEvent:
    """An event of ``action`` that starts now; with ``result`` it is finished at once."""
    moment = common.now()
    row = models.InstanceActionEvent(
        action_id=action.id,
        event=event,
        host=host,
        result=result,
        details=details,
        start_time=moment,
        finish_time=moment if result is not None else None,
    )
    session.add(row)
    action.updated_at = moment
    if result == ERROR:
        action.message = action.message or ERROR
    return row


def finish_event(
    session: Session,
    server_id: str,
    event: str,
    *,
    ok: bool,
    error: BaseException | str | None = None,
    details: str | None = None,
) -> models.InstanceActionEvent | None:
    """Close the newest unfinished ``event`` of the server's actions (None if there is none).

    A failure marks the event ``Error`` with the traceback (or message) given, and the
    action's message ``Error`` as Nova does."""
    E = models.InstanceActionEvent
    A = models.InstanceAction
    row = session.scalars(
        select(E)
        .join(A, A.id == E.action_id)
        .where(A.server_id == server_id, E.event == event, E.finish_time.is_(None))
        .order_by(E.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    moment = common.now()
    row.finish_time = moment
    row.result = SUCCESS if ok else ERROR
    if details is not None:
        row.details = details
    if not ok and error is not None:
        row.traceback = (
            "".join(tb.format_exception(error)) if isinstance(error, BaseException) else error
        )
    action = session.get(A, row.action_id)
    if action is not None:
        action.updated_at = moment
        if not ok:
            action.message = ERROR
    return row


def finish(session: Session, action: models.InstanceAction) -> None:
    """Mark the whole action finished (Nova sets this for actions the API completes)."""
    moment = common.now()
    action.finish_time = moment
    action.updated_at = moment
