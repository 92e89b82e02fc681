"""Migrations: ``os-migrations`` (every resize and move, admin/manager) and a server's
in-progress live migrations (``/servers/{id}/migrations``, 2.23+).

Resizes write the ``compute_migration`` rows (the server actions); this module
only lists them. ``old_instance_type_id``/``new_instance_type_id`` are the
flavors' internal integer ids, as in Nova. stackbox has no live migration yet, so
a server's in-progress list is empty unless such rows exist; force-complete and
abort answer as Nova does when there is nothing to act on.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, models, services

LIVE = "live-migration"
LIVE_IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")
TYPES = ("migration", "resize", LIVE, "evacuation")
MAX_LIMIT = 1000


def _flavor_ids(session: Session, rows: list[models.Migration]) -> dict[str, int]:
    """Internal ids of the flavors the rows name (by their public flavor id)."""
    wanted = {f for row in rows for f in (row.old_flavor_id, row.new_flavor_id) if f}
    if not wanted:
        return {}
    found: dict[str, int] = {
        flavorid: internal
        for flavorid, internal in session.execute(
            select(models.Flavor.flavorid, models.Flavor.id).where(
                models.Flavor.flavorid.in_(wanted)
            )
        )
    }
    # A deleted flavor: keep a numeric id as it was.
    for flavor in wanted - set(found):
        if flavor.isdigit():
            found[flavor] = int(flavor)
    return found


def _time(moment: datetime.datetime | None) -> str | None:
    return common.isotime_micro(moment)


def _row(
    request: rest.ApiRequest,
    row: models.Migration,
    flavors: dict[str, int],
    *,
    with_host: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "created_at": _time(row.created_at),
        "dest_compute": row.dest_compute if with_host else None,
        "dest_host": row.dest_host if with_host else None,
        "dest_node": row.dest_node if with_host else None,
        "id": row.id,
        "instance_uuid": row.server_id,
        "new_instance_type_id": flavors.get(row.new_flavor_id or ""),
        "old_instance_type_id": flavors.get(row.old_flavor_id or ""),
        "source_compute": row.source_compute if with_host else None,
        "source_node": row.source_node if with_host else None,
        "status": row.status,
        "updated_at": _time(row.updated_at),
    }
    if microversions.at_least(request, "migrations_list_type"):
        body["migration_type"] = row.migration_type
        if row.migration_type == LIVE and row.status in LIVE_IN_PROGRESS:
            body["links"] = common.link(request, f"servers/{row.server_id}/migrations/{row.id}")
    if microversions.at_least(request, "migrations_paging"):
        body["uuid"] = row.uuid
    if microversions.at_least(request, "migrations_user_project"):
        body["user_id"] = row.user_id
        body["project_id"] = row.project_id
    return body


def _allowed_query(request: rest.ApiRequest) -> set[str]:
    allowed = {"hidden", "host", "instance_uuid", "source_compute", "status", "migration_type"}
    allowed |= {"limit", "marker", "changes-since"}
    if microversions.at_least(request, "changes_before"):
        allowed.add("changes-before")
    if microversions.at_least(request, "migrations_user_project"):
        allowed |= {"user_id", "project_id"}
    return allowed


def _changes(request: rest.ApiRequest, query: Any) -> Any:
    since = before = None
    if request.arg("changes-since") is not None:
        since = common.parse_time(request.arg("changes-since") or "", "changes-since")
        query = query.where(models.Migration.updated_at >= since)
    if microversions.at_least(request, "changes_before") and request.arg("changes-before"):
        before = common.parse_time(request.arg("changes-before") or "", "changes-before")
        if since is not None and before < since:
            raise errors.bad_request(
                "The value of changes-since must be less than or equal to changes-before."
            )
        query = query.where(models.Migration.updated_at <= before)
    return query


def _filtered(request: rest.ApiRequest) -> Any:
    query = select(models.Migration)
    statuses = request.query.get("status")
    if statuses:
        query = query.where(models.Migration.status.in_(statuses))
    if request.arg("host") is not None:
        host = request.arg("host")
        query = query.where(
            or_(models.Migration.source_compute == host, models.Migration.dest_compute == host)
        )
    elif request.arg("source_compute") is not None:
        query = query.where(models.Migration.source_compute == request.arg("source_compute"))
    if request.arg("migration_type") is not None:
        query = query.where(models.Migration.migration_type == request.arg("migration_type"))
    if request.arg("instance_uuid") is not None:
        query = query.where(models.Migration.server_id == request.arg("instance_uuid"))
    if request.arg("user_id") is not None:
        query = query.where(models.Migration.user_id == request.arg("user_id"))
    if request.arg("project_id") is not None:
        query = query.where(models.Migration.project_id == request.arg("project_id"))
    hidden = request.arg("hidden")
    if hidden is not None and services.as_bool(hidden):
        # No migration is hidden here (Nova hides the internal halves of cross-cell moves).
        query = query.where(models.Migration.id.is_(None))
    return query


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    common.enforce(request, "os_compute_api:os-migrations:index")
    project_id = request.arg("project_id")
    if not project_id or project_id != ctx.project_id:
        common.enforce(request, "os_compute_api:os-migrations:index:all_projects")
    with_host = common.allowed(request, "os_compute_api:os-migrations:index:host")
    paging = microversions.at_least(request, "migrations_paging")
    query = _filtered(request)
    if paging:
        services.reject_unknown_query(request, _allowed_query(request))
        query = _changes(request, query)
        limit = common.query_int(request, "limit")
        limit = MAX_LIMIT if limit is None else min(limit, MAX_LIMIT)
        marker = request.arg("marker")
        if marker is not None:
            after = session.scalar(select(models.Migration).where(models.Migration.uuid == marker))
            if after is None:
                raise errors.bad_request(f"Marker {marker} could not be found.")
            query = query.where(
                or_(
                    models.Migration.created_at < after.created_at,
                    and_(
                        models.Migration.created_at == after.created_at,
                        models.Migration.id < after.id,
                    ),
                )
            )
        query = query.order_by(models.Migration.created_at.desc(), models.Migration.id.desc())
        query = query.limit(limit)
    else:
        query = query.order_by(models.Migration.id)
    rows = list(session.scalars(query))
    flavors = _flavor_ids(session, rows)
    body: dict[str, Any] = {
        "migrations": [_row(request, row, flavors, with_host=with_host) for row in rows]
    }
    if paging and limit and len(rows) == limit:
        body["migrations_links"] = [common.next_link(request, rows[-1].uuid)]
    return body


# --- a server's live migrations -------------------------------------------------------------


def _server_row(
    request: rest.ApiRequest, row: models.Migration, *, with_host: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "created_at": _time(row.created_at),
        "dest_compute": row.dest_compute if with_host else None,
        "dest_host": row.dest_host if with_host else None,
        "dest_node": row.dest_node if with_host else None,
        # No live migration reports progress yet.
        "disk_processed_bytes": None,
        "disk_remaining_bytes": None,
        "disk_total_bytes": None,
        "id": row.id,
        "memory_processed_bytes": None,
        "memory_remaining_bytes": None,
        "memory_total_bytes": None,
        "server_uuid": row.server_id,
        "source_compute": row.source_compute if with_host else None,
        "source_node": row.source_node if with_host else None,
        "status": row.status,
        "updated_at": _time(row.updated_at or row.created_at),
    }
    if microversions.at_least(request, "migrations_paging"):
        body["uuid"] = row.uuid
    if microversions.at_least(request, "migrations_user_project"):
        body["user_id"] = row.user_id
        body["project_id"] = row.project_id
    return body


def _in_progress(session: Session, server_id: str) -> list[models.Migration]:
    return list(
        session.scalars(
            select(models.Migration)
            .where(
                models.Migration.server_id == server_id,
                models.Migration.migration_type == LIVE,
                models.Migration.status.in_(LIVE_IN_PROGRESS),
            )
            .order_by(models.Migration.id)
        )
    )


def server_index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    microversions.require(request, "server_migrations_list")
    server = common.get_server(session, request, request.path_params["server_id"])
    target = common.server_target(server)
    common.enforce(request, "os_compute_api:servers:migrations:index", target)
    with_host = common.allowed(request, "os_compute_api:servers:migrations:index:host", target)
    return {
        "migrations": [
            _server_row(request, row, with_host=with_host)
            for row in _in_progress(session, server.id)
        ]
    }


def _live_migration(session: Session, server: models.Server, raw_id: str) -> models.Migration:
    try:
        number = int(raw_id)
    except ValueError:
        number = -1
    row = session.get(models.Migration, number) if number >= 0 else None
    if row is None or row.server_id != server.id:
        raise errors.not_found(
            f"In-progress live migration {raw_id} is not found for server {server.id}."
        )
    if row.migration_type != LIVE:
        raise errors.not_found(f"Migration {raw_id} for server {server.id} is not live-migration.")
    if row.status not in LIVE_IN_PROGRESS:
        raise errors.not_found(
            f"Live migration {raw_id} for server {server.id} is not in progress."
        )
    return row


def server_show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    microversions.require(request, "server_migrations_list")
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, "os_compute_api:servers:migrations:show", common.server_target(server))
    row = _live_migration(session, server, request.path_params["migration_id"])
    return {"migration": _server_row(request, row, with_host=True)}


def _not_migrating(server: models.Server, action: str) -> rest.ApiError:
    return errors.invalid_state(server.id, "task_state", server.task_state, action)


FORCE_COMPLETE = {
    "type": "object",
    "properties": {"force_complete": {"type": "null"}},
    "required": ["force_complete"],
    "additionalProperties": False,
}


def _moving(request: rest.ApiRequest, session: Session, rule: str, action: str) -> None:
    """Nova's order: the server, the policy, then the server must be live migrating (409),
    then the migration must be its in-progress live migration (404)."""
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(
        request, f"os_compute_api:servers:migrations:{rule}", common.server_target(server)
    )
    if server.task_state != "migrating":
        raise errors.invalid_state(server.id, "task_state", server.task_state, action)
    _live_migration(session, server, request.path_params["migration_id"])
    # Unreachable until live migration exists: nothing ever sets task_state migrating.
    raise errors.conflict(f"Cannot '{action}': live migration is not supported.")


def force_complete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    microversions.require(request, "live_migration_force_complete")
    common.body_of(request, None, FORCE_COMPLETE)
    _moving(request, session, "force_complete", "force_complete")
    return rest.ApiResponse(status=202)


def abort(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    microversions.require(request, "abort_live_migration")
    _moving(request, session, "delete", "abort live migration")
    return rest.ApiResponse(status=202)


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-migrations", index),
    rest.Route("GET", "/v2.1/servers/{server_id}/migrations", server_index),
    rest.Route("GET", "/v2.1/servers/{server_id}/migrations/{migration_id}", server_show),
    rest.Route(
        "POST", "/v2.1/servers/{server_id}/migrations/{migration_id}/action", force_complete
    ),
    rest.Route("DELETE", "/v2.1/servers/{server_id}/migrations/{migration_id}", abort),
]
