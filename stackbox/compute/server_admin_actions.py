"""Administrative actions: ``os-resetState``, ``injectNetworkInfo``, the removed
``resetNetwork``, and deferred delete's ``forceDelete`` / ``restore``.

stackbox does not defer deletes (Nova's reclaim_instance_interval is 0): a delete
is final, no server is ever SOFT_DELETED, so ``restore`` answers Nova's 409 for
every server, and ``forceDelete`` deletes like a delete (Nova lets it run on any
server with no task running).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import actions_log, notify, servers, states
from stackbox.compute import server_action_base as base
from stackbox.db import session as db_session

RESET_STATE = {
    "type": "object",
    "properties": {"state": {"type": "string", "enum": ["active", "error"]}},
    "required": ["state"],
    "additionalProperties": False,
}


def reset_state(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = base.member(request, "os-resetState", RESET_STATE)
    wanted = states.ACTIVE if body["state"] == "active" else states.ERROR

    def apply(session: Session) -> base.Result:
        server = base.load(
            session,
            request,
            server_id,
            "os_compute_api:os-admin-actions:reset_state",
            with_user=False,
        )
        server.vm_state = wanted
        server.task_state = None
        # A new generation: reports for whatever task was running no longer count.
        base.nudge(session, server)
        base.finish_now(session, request, server, "resetState", event="")
        return base.accepted()

    return db.run(apply, write=True)


def inject_network_info(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    base.member(request, "injectNetworkInfo", base.ANY)

    def apply(session: Session) -> base.Result:
        server = base.load(
            session,
            request,
            server_id,
            "os_compute_api:os-admin-actions:inject_network_info",
            with_user=False,
        )
        base.check_lock(request, server)
        # The agent reads the ports from the server's spec: a nudge is the injection.
        notify.server(session, server.id, server.host)
        return base.accepted()

    return db.run(apply, write=True)


def reset_network(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    raise rest.Gone("This resource is no longer available. No forwarding address is given.")


def force_delete(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    base.member(request, "forceDelete", base.ANY)

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, "os_compute_api:os-deferred-delete:force")
        # Nova checks the lock only: any state, any task.
        base.check_lock(request, server)
        action = actions_log.start(session, request, server, "forceDelete")
        if not servers.host_is_up(session, server.host):
            servers.finish_delete(session, server)
            actions_log.finish(session, action)
            return base.accepted()
        if server.task_state == states.DELETING:
            return base.accepted()  # already on its way
        actions_log.add_event(session, action, servers.TERMINATE_EVENT, host=server.host)
        server.task_state = states.DELETING
        server.progress = 0
        base.nudge(session, server)
        return base.accepted()

    return db.run(apply, write=True)


def restore(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    base.member(request, "restore", base.ANY)

    def apply(session: Session) -> base.Result:
        server = base.load(
            session,
            request,
            server_id,
            "os_compute_api:os-deferred-delete:restore",
            with_user=False,
        )
        base.check_lock(request, server)
        base.check_state(server, "restore", (states.SOFT_DELETED,))
        server.vm_state = states.ACTIVE
        server.task_state = None
        base.nudge(session, server)
        base.finish_now(session, request, server, "restore", event="")
        return base.accepted()

    return db.run(apply, write=True)


ACTIONS: list[base.Action] = [
    base.Action("os-resetState", reset_state),
    base.Action("injectNetworkInfo", inject_network_info),
    base.Action("resetNetwork", reset_network),
    base.Action("forceDelete", force_delete),
    base.Action("restore", restore),
]
