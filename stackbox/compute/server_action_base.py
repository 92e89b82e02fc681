"""What every server action shares: the registry entry, loading the server for a
write (404 for others' servers, policy on the server's owner), Nova's lock and state
checks with its InstanceInvalidState wording, and starting a task for the agent.

An action handler gets the request, the database and the server id from the path,
and runs its own transactions (most in one write transaction; the console output
reads in one and asks the agent outside it). Other modules register actions the
same way (``floating_ips``' addFloatingIp), listed in ``server_actions``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import (
    actions_log,
    common,
    errors,
    microversions,
    models,
    notify,
    server_schema,
    states,
    status_intake,
)
from stackbox.compute import server_action_schemas as schemas
from stackbox.db import session as db_session

Result = rest.ApiResponse | dict[str, Any] | None
Handler = Callable[[rest.ApiRequest, db_session.Database, str], Result]

# A body member that may be anything (Nova's ``{}`` schema: ``{"os-start": null}``).
ANY = schemas.ANY
NULL = schemas.NULL


@dataclasses.dataclass(frozen=True)
class Action:
    """One ``POST /servers/{id}/action`` body key and the handler that answers it."""

    key: str
    handler: Handler
    # The microversions that have it (Nova answers 404 outside them).
    since: str | None = None
    until: str | None = None


def accepted() -> rest.ApiResponse:
    return rest.ApiResponse(202)


def member(request: rest.ApiRequest, key: str, schema: Mapping[str, Any]) -> Any:
    """The body's ``key`` member, the whole body validated as ``{key: schema}`` with
    Nova's messages (400, changing nothing)."""
    found = _WHOLE.get((key, id(schema)))
    if found is None or found[0] is not schema:
        found = (schema, schemas.action(key, dict(schema)))
        _WHOLE[(key, id(schema))] = found
    server_schema.validate(found[1], request.body)
    return request.body[key]


# Whole-body schemas built from module-constant member schemas (validators are cached
# per schema object, so each is built once).
_WHOLE: dict[tuple[str, int], tuple[Mapping[str, Any], dict[str, Any]]] = {}


def whole(request: rest.ApiRequest, key: str, schema: Mapping[str, Any]) -> Any:
    """The body's ``key`` member, the body validated against a whole-body ``schema``."""
    server_schema.validate(schema, request.body)
    return request.body[key]


def load(
    session: Session,
    request: rest.ApiRequest,
    server_id: str,
    rule: str | None,
    *,
    with_user: bool = True,
) -> models.Server:
    """The server, locked for this transaction where the database can, after the
    action's policy ``rule`` against its owner (Nova: 404 first, then 403)."""
    session.get(models.Server, server_id, with_for_update=True)
    server = common.get_server(session, request, server_id)
    if rule is not None:
        target = {"project_id": server.project_id}
        if with_user:
            target["user_id"] = server.user_id
        common.enforce(request, rule, target)
    return server


def check_lock(request: rest.ApiRequest, server: models.Server) -> None:
    """A locked server refuses changes except from an admin (Nova's check_instance_lock)."""
    if server.locked and not common.is_admin(request.context):
        raise errors.locked(server.id)


def check_state(
    server: models.Server,
    api_name: str,
    vm_states: tuple[str, ...] | None,
    task_states: tuple[str | None, ...] | None = (None,),
    *,
    must_have_launched: bool = True,
) -> None:
    """Nova's check_instance_state: vm_state, then task_state, then launched_at; a 409
    naming the first that does not fit."""
    if vm_states is not None and server.vm_state not in vm_states:
        raise errors.invalid_state(server.id, "vm_state", server.vm_state, api_name)
    if task_states is not None and server.task_state not in task_states:
        raise errors.invalid_state(server.id, "task_state", server.task_state, api_name)
    if must_have_launched and server.launched_at is None:
        raise errors.invalid_state(server.id, "launched_at", None, api_name)


def check_action(server: models.Server, rule: str, api_name: str) -> states.Action:
    """The state check of a ``states.ACTIONS`` row (lock checked by the caller)."""
    action = states.ACTIONS[rule]
    check_state(server, api_name, action.vm_states, action.task_states)
    return action


def check_host(server: models.Server) -> None:
    """Nova's check_instance_host: 409 InstanceNotReady for a server with no host."""
    if not server.host:
        raise errors.conflict(f"Instance {server.id} is not ready")


def touch(server: models.Server) -> None:
    server.updated_at = common.now()


def start_task(
    session: Session,
    request: rest.ApiRequest,
    server: models.Server,
    task: str | None,
    action: str,
    *,
    event: str | None = None,
) -> models.InstanceAction:
    """Leave ``task`` for the agent: a new generation to converge, the instance action
    with the task's (unfinished) event, and a nudge to the server's host after commit."""
    if task is not None:
        # No agent would ever carry the task out (Nova: InstanceNotReady).
        check_host(server)
    server.task_state = task
    server.generation += 1
    touch(server)
    record = actions_log.start(session, request, server, action)
    # The event Nova's compute manager records for the task; the intake of the agent's
    # report finishes it.
    name = event or (status_intake.EVENT_OF_TASK.get(task) if task else None)
    if name:
        actions_log.add_event(session, record, name, host=server.host)
    notify.server(session, server.id, server.host)
    return record


def nudge(session: Session, server: models.Server) -> None:
    """A change the agent must converge without a task (confirmed resize, new port)."""
    server.generation += 1
    touch(server)
    notify.server(session, server.id, server.host)


def finish_now(
    session: Session,
    request: rest.ApiRequest,
    server: models.Server,
    action: str,
    *,
    event: str | None = None,
) -> models.InstanceAction:
    """An action the API completes alone (lock, reset state...): recorded with its
    event (Nova's ``api_<action>`` unless named) finished with success at once."""
    touch(server)
    record = actions_log.start(session, request, server, action)
    if event != "":
        actions_log.add_event(
            session,
            record,
            event or f"api_{action}",
            host=server.host,
            result=actions_log.SUCCESS,
        )
    actions_log.finish(session, record)
    return record


def run_state_action(
    request: rest.ApiRequest,
    db: db_session.Database,
    server_id: str,
    *,
    key: str,
    rule: str,
    policy: str,
    api_name: str,
    action: str,
    schema: Mapping[str, Any] = ANY,
    with_user: bool = True,
    needs_host: bool = False,
) -> Result:
    """The common shape: validate, load, policy, lock, state, task, record, nudge; 202.
    ``needs_host``: Nova checks the server is placed before its state (start, stop)."""
    member(request, key, schema)

    def apply(session: Session) -> Result:
        server = load(session, request, server_id, policy, with_user=with_user)
        check_lock(request, server)
        if needs_host:
            check_host(server)
        row = check_action(server, rule, api_name)
        start_task(session, request, server, row.task, action)
        return accepted()

    return db.run(apply, write=True)


def at_least(request: rest.ApiRequest, version: str) -> bool:
    return microversions.of(request) >= microversions.Version.parse(version)
