"""Actions on what the guest sees: its console output (asked of the host's agent),
its admin password, and the security groups of its ports (``addSecurityGroup`` /
``removeSecurityGroup``, done on the ports through the networking service)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import errors, network_glue, states
from stackbox.compute import server_action_base as base
from stackbox.db import session as db_session
from stackbox.network import models as net_models
from stackbox.network import port_rows, rbac

CONSOLE_OUTPUT = {
    "type": "object",
    "properties": {
        "length": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$", "minimum": -1}
    },
    "additionalProperties": False,
}
CHANGE_PASSWORD = {
    "type": "object",
    "properties": {"adminPass": {"type": "string"}},
    "required": ["adminPass"],
    "additionalProperties": False,
}
GROUP_NAME = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 1}},
    "required": ["name"],
    "additionalProperties": False,
}
# Nova strips what an XML consumer could not read.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


# --- console output ---------------------------------------------------------------------------


def console_output(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    body = base.member(request, "os-getConsoleOutput", CONSOLE_OUTPUT) or {}
    raw = body.get("length")
    length = int(raw) if raw is not None else None
    if length is not None and length < 0:
        length = None

    def where(session: Session) -> str:
        server = base.load(
            session, request, server_id, "os_compute_api:os-console-output", with_user=False
        )
        if not server.host:
            raise errors.conflict(f"Instance {server.id} is not ready")
        return server.host

    host = db.run(where, write=False)
    # Asked outside any transaction: the agent answers from its driver.
    from stackbox.compute import agent_calls

    output = agent_calls.console_output(host, server_id, length)
    return {"output": _CONTROL.sub("", output)}


# --- admin password ---------------------------------------------------------------------------


def change_password(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    body = base.member(request, "changePassword", CHANGE_PASSWORD)

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, "os_compute_api:os-admin-password")
        base.check_lock(request, server)
        base.check_state(server, "changePassword", (states.ACTIVE,))
        server.admin_password = body["adminPass"]
        # The guest picks the password up from its spec; nothing waits on the agent.
        base.finish_now(
            session, request, server, "changePassword", event="compute_set_admin_password"
        )
        base.nudge(session, server)
        return base.accepted()

    return db.run(apply, write=True)


# --- security groups --------------------------------------------------------------------------


def _find_group(session: Session, request: rest.ApiRequest, name: str) -> str:
    """Nova's lookup by name (in the caller's project) or id; 404 / 409 as Nova."""
    G = net_models.SecurityGroup
    ctx = request.context
    project = ctx.project_id or ""
    group = session.get(G, name)
    if group is not None and (
        "admin" in ctx.roles
        or group.project_id == project
        or bool(rbac.shared_with(session, "security_group", [group.id], project))
    ):
        return group.id
    matches = list(session.scalars(select(G.id).where(G.project_id == project, G.name == name)))
    if len(matches) > 1:
        raise errors.conflict(
            f"Multiple security_group matches found for name '{name}', use an ID to be "
            "more specific."
        )
    if not matches:
        raise errors.not_found(f"Security group {name} is not found for project {project}")
    return matches[0]


def _ports(session: Session, server_id: str) -> list[net_models.Port]:
    ports = list(
        session.scalars(
            select(net_models.Port)
            .where(net_models.Port.device_id == server_id)
            .order_by(net_models.Port.created_at, net_models.Port.id)
        )
    )
    if not ports:
        raise errors.not_found(
            f"instance_id {server_id} could not be found as device id on any ports"
        )
    return ports


def _groups_of(session: Session, port_id: str) -> list[str]:
    P = net_models.PortSecurityGroup
    return list(
        session.scalars(
            select(P.security_group_id).where(P.port_id == port_id).order_by(P.security_group_id)
        )
    )


def _has_addresses(session: Session, port_id: str) -> bool:
    A = net_models.IPAllocation
    return session.scalar(select(A.port_id).where(A.port_id == port_id).limit(1)) is not None


def _group_action(
    request: rest.ApiRequest, db: db_session.Database, server_id: str, key: str
) -> base.Result:
    body = base.member(request, key, GROUP_NAME)
    name = str(body["name"])
    if not name.strip():
        raise errors.bad_request("Security group name cannot be empty")
    adding = key == "addSecurityGroup"

    def apply(session: Session) -> base.Result:
        server = base.load(
            session,
            request,
            server_id,
            "os_compute_api:os-security-groups:" + ("add" if adding else "remove"),
            with_user=False,
        )
        group_id = _find_group(session, request, name)
        ctx = network_glue.system_context()
        changed = False
        for port in _ports(session, server.id):
            groups = _groups_of(session, port.id)
            if adding:
                if not port.port_security_enabled or not _has_addresses(session, port.id):
                    raise errors.bad_request(
                        "Network requires port_security_enabled and subnet associated in "
                        "order to apply security groups."
                    )
                if group_id not in groups:
                    port_rows.update(session, ctx, port, {"security_groups": [*groups, group_id]})
                changed = True
            elif group_id in groups:
                remaining = [g for g in groups if g != group_id]
                port_rows.update(session, ctx, port, {"security_groups": remaining})
                changed = True
        if not changed:
            raise errors.not_found(
                f"Security group {name} not associated with the instance {server.id}"
            )
        base.touch(server)
        return base.accepted()

    return db.run(apply, write=True)


def add_security_group(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    return _group_action(request, db, server_id, "addSecurityGroup")


def remove_security_group(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    return _group_action(request, db, server_id, "removeSecurityGroup")


ACTIONS: list[base.Action] = [
    base.Action("os-getConsoleOutput", console_output),
    base.Action("changePassword", change_password),
    base.Action("addSecurityGroup", add_security_group),
    base.Action("removeSecurityGroup", remove_security_group),
]
