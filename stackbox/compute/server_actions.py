"""``POST /v2.1/servers/{server_id}/action``: one route, dispatched on the body's single
key to the handler that action's module registers (as Nova's wsgi action_peek).

Handlers run their own transactions (most one write transaction; the console output
asks the host's agent outside any), so the route is ``manual_tx``. A body that is not
one JSON object with exactly one key is 400 "Malformed request body"; an unknown key
is 400 "There is no such action: <key>"; an action outside its microversions is 404.
"""

from __future__ import annotations

from stackbox import rest
from stackbox.compute import (
    errors,
    floating_ips,
    microversions,
    server_admin_actions,
    server_guest,
    server_migrate,
    server_power,
    server_rebuild_resize,
    server_shelve,
    server_snapshot,
)
from stackbox.compute import server_action_base as base
from stackbox.db import session as db_session

HANDLERS: dict[str, base.Action] = {
    action.key: action
    for module in (
        server_power,
        server_rebuild_resize,
        server_snapshot,
        server_guest,
        server_admin_actions,
        server_migrate,
        server_shelve,
        floating_ips,
    )
    for action in module.ACTIONS
}


def _in_version(request: rest.ApiRequest, action: base.Action) -> bool:
    version = microversions.of(request)
    if action.since and version < microversions.Version.parse(action.since):
        return False
    return not (action.until and version > microversions.Version.parse(action.until))


def dispatch(request: rest.ApiRequest, db: db_session.Database) -> base.Result:
    body = request.body
    if not isinstance(body, dict) or len(body) != 1:
        raise errors.bad_request("Malformed request body")
    key = next(iter(body))
    action = HANDLERS.get(key)
    if action is None:
        raise errors.bad_request(f"There is no such action: {key}")
    if not _in_version(request, action):
        raise errors.not_found("The resource could not be found.")
    return action.handler(request, db, request.path_params["server_id"])


ROUTES = [
    rest.Route("POST", "/v2.1/servers/{server_id}/action", dispatch, manual_tx=True),
]
