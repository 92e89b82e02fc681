"""Server groups (``os-server-groups``): affinity policies the scheduler honours.

A group has one policy (``affinity``, ``anti-affinity`` and, from 2.15, the soft
kinds); before 2.64 it is shown as a one-item ``policies`` list with an empty
``metadata``, from 2.64 as ``policy`` with ``rules`` (only anti-affinity takes
``max_server_per_host``). Members are the servers booted into the group; deleted
servers are not shown. Other projects' groups are 404 to non-admins.

``members_hosts``, ``add_member`` and ``group_of`` are for the scheduler and the
servers module.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, models, quotas, services

AFFINITY = "affinity"
ANTI_AFFINITY = "anti-affinity"
SOFT_AFFINITY = "soft-affinity"
SOFT_ANTI_AFFINITY = "soft-anti-affinity"
HARD = [ANTI_AFFINITY, AFFINITY]
ALL = [*HARD, SOFT_ANTI_AFFINITY, SOFT_AFFINITY]

_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$",
}
_POSITIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "minLength": 1}


def _policies_schema(allowed: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "name": _NAME,
            "policies": {
                "type": "array",
                "items": [{"type": "string", "enum": allowed}],
                "uniqueItems": True,
                "minItems": 1,
                "maxItems": 1,
                "additionalItems": False,
            },
        },
        "required": ["name", "policies"],
        "additionalProperties": False,
    }


CREATE_V21 = _policies_schema(HARD)
CREATE_V215 = _policies_schema(ALL)
CREATE_V264 = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "policy": {"type": "string", "enum": ALL},
        "rules": {
            "type": "object",
            "properties": {"max_server_per_host": _POSITIVE},
            "additionalProperties": False,
        },
    },
    "required": ["name", "policy"],
    "additionalProperties": False,
}


# --- for the scheduler and the servers module -------------------------------------------------


def members_hosts(session: Session, group_id: str) -> dict[str, int]:
    """How many of the group's (not deleted) servers each host holds."""
    rows = session.execute(
        select(models.Server.host, func.count())
        .join(models.ServerGroupMember, models.ServerGroupMember.server_id == models.Server.id)
        .where(
            models.ServerGroupMember.group_id == group_id,
            models.Server.deleted.is_(False),
            models.Server.host.is_not(None),
        )
        .group_by(models.Server.host)
    ).all()
    return {host or "": int(count) for host, count in rows}


def group_of(session: Session, server_id: str) -> models.ServerGroup | None:
    """The group a server was booted into, if any (2.71 shows it in the server)."""
    return session.scalar(
        select(models.ServerGroup)
        .join(models.ServerGroupMember, models.ServerGroupMember.group_id == models.ServerGroup.id)
        .where(models.ServerGroupMember.server_id == server_id)
    )


def add_member(session: Session, group_id: str, server_id: str, *, admin: bool = False) -> None:
    """Put a new server (its row already added to ``session``) into a group, as Nova's
    server create does: 400 for a group the server's project cannot see (admins see all),
    403 when the group already holds ``server_group_members`` servers."""
    server = session.get(models.Server, server_id)
    group = session.get(models.ServerGroup, group_id)
    if server is None:
        raise errors.server_not_found(server_id)
    if group is None or (not admin and group.project_id != server.project_id):
        raise errors.bad_request(f"Instance group {group_id} could not be found.")
    quotas.check_server_group_members(session, server.project_id, server.user_id, group_id)
    session.add(models.ServerGroupMember(group_id=group_id, server_id=server_id))
    session.flush()


def remove_member(session: Session, server_id: str) -> None:
    """A deleted server leaves its group (Nova drops the membership with the instance),
    so it no longer counts against ``server_group_members``."""
    session.execute(
        delete(models.ServerGroupMember).where(models.ServerGroupMember.server_id == server_id)
    )


# --- API ------------------------------------------------------------------------------------


def _members(session: Session, group_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {group_id: [] for group_id in group_ids}
    for group_id, server_id in session.execute(
        select(models.ServerGroupMember.group_id, models.ServerGroupMember.server_id)
        .join(models.Server, models.Server.id == models.ServerGroupMember.server_id)
        .where(
            models.ServerGroupMember.group_id.in_(group_ids),
            models.Server.deleted.is_(False),
        )
        .order_by(models.Server.created_at, models.Server.id)
    ):
        found[group_id].append(server_id)
    return found


def _render(
    request: rest.ApiRequest, group: models.ServerGroup, members: list[str]
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": group.id, "name": group.name}
    if microversions.at_least(request, "server_group_policy_rules"):
        body["policy"] = group.policy
        rules = group.rules or {}
        body["rules"] = (
            {"max_server_per_host": int(rules["max_server_per_host"])}
            if "max_server_per_host" in rules
            else {}
        )
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    body["members"] = members
    if microversions.at_least(request, "server_group_project_user"):
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body


def _get(request: rest.ApiRequest, session: Session) -> models.ServerGroup:
    group_id = request.path_params["group_id"]
    group = session.get(models.ServerGroup, group_id)
    ctx = request.context
    if group is None or (group.project_id != ctx.project_id and not common.is_admin(ctx)):
        raise errors.not_found(f"Instance group {group_id} could not be found.")
    return group


def _offset_limit(request: rest.ApiRequest) -> tuple[int, int]:
    offset = common.query_int(request, "offset") or 0
    limit = common.query_int(request, "limit") or 1000
    return offset, min(limit, 1000)


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    common.enforce(request, "os_compute_api:os-server-groups:index")
    if microversions.at_least(request, "strict_param_validation"):
        services.reject_unknown_query(request, {"all_projects", "limit", "offset"})
    query = select(models.ServerGroup).order_by(
        models.ServerGroup.created_at, models.ServerGroup.id
    )
    if request.has_arg("all_projects") and common.is_admin(ctx):
        common.enforce(request, "os_compute_api:os-server-groups:index:all_projects")
    else:
        query = query.where(models.ServerGroup.project_id == ctx.project_id)
    offset, limit = _offset_limit(request)
    groups = list(session.scalars(query.offset(offset).limit(limit)))
    members = _members(session, [g.id for g in groups])
    return {"server_groups": [_render(request, g, members[g.id]) for g in groups]}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    group = _get(request, session)
    common.enforce(
        request, "os_compute_api:os-server-groups:show", {"project_id": group.project_id}
    )
    return {"server_group": _render(request, group, _members(session, [group.id])[group.id])}


def create(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    project_id, user_id = ctx.project_id or "", ctx.user_id or ""
    common.enforce(request, "os_compute_api:os-server-groups:create")
    if microversions.at_least(request, "server_group_policy_rules"):
        body = common.body_of(request, "server_group", CREATE_V264)
        policy = body["policy"]
        rules = body.get("rules") or {}
        if policy != ANTI_AFFINITY and rules:
            raise errors.bad_request("Only anti-affinity policy supports rules.")
        rules = {key: int(value) for key, value in rules.items()}
    else:
        schema = CREATE_V215 if microversions.at_least(request, "soft_affinity") else CREATE_V21
        body = common.body_of(request, "server_group", schema)
        policy, rules = body["policies"][0], {}
    quotas.check_server_groups(session, project_id, user_id)
    group = models.ServerGroup(
        id=common.new_id(),
        name=body["name"],
        project_id=project_id,
        user_id=user_id,
        policy=policy,
        rules=rules,
        # Microseconds keep the listing in creation order (Nova lists by creation).
        created_at=datetime.datetime.now(datetime.UTC).replace(tzinfo=None),
    )
    session.add(group)
    session.flush()
    return {"server_group": _render(request, group, [])}


def delete_group(request: rest.ApiRequest, session: Session) -> None:
    group = _get(request, session)
    common.enforce(
        request, "os_compute_api:os-server-groups:delete", {"project_id": group.project_id}
    )
    session.delete(group)
    return None


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-server-groups", index),
    rest.Route("POST", "/v2.1/os-server-groups", create),
    rest.Route("GET", "/v2.1/os-server-groups/{group_id}", show),
    rest.Route("DELETE", "/v2.1/os-server-groups/{group_id}", delete_group),
]
