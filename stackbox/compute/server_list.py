"""GET /servers and /servers/detail: Nova's filters, sorting and paging.

Exact filters (project, user, image, states, host, locked, deleted, changes-since /
-before) run in SQL; the regular-expression ones (name, hostname, key_name, zone ...),
ip / ip6 (substrings of fixed addresses, as Nova asks Neutron), flavor and tags run on
the rows. Filters a caller may not use are dropped (Nova's remove_invalid_options),
except that ``_*`` and joined-table names are 400s; from 2.75 unknown parameters are
400s. Sorting defaults to newest first; ``marker`` continues after a server in that
order; ``servers_links`` has a next link whenever a page is full.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, defer

from stackbox import rest
from stackbox.compute import (
    common,
    errors,
    microversions,
    models,
    network_glue,
    server_query_schema,
    server_validation,
    server_views,
    states,
)

MAX_LIMIT = 1000
PAGING = ("sort_key", "sort_dir", "limit", "marker")
JOINED = (
    "block_device_mapping",
    "services",
    "metadata",
    "system_metadata",
    "info_cache",
    "security_groups",
    "pci_devices",
)
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
TRUE = ("1", "t", "true", "on", "y", "yes")
FALSE = ("0", "f", "false", "off", "n", "no")

# Regular-expression filters and the server attribute each one reads.
REGEX_FILTERS: dict[str, Callable[[models.Server], Any]] = {
    "name": lambda s: s.name,
    "display_name": lambda s: s.name,
    "description": lambda s: s.description,
    "display_description": lambda s: s.description,
    "hostname": lambda s: s.hostname,
    "key_name": lambda s: s.key_name,
    "reservation_id": lambda s: s.reservation_id,
    "availability_zone": lambda s: s.availability_zone,
    "node": lambda s: s.node,
    "power_state": lambda s: s.power_state,
    "config_drive": lambda s: s.config_drive,
    "access_ip_v4": lambda s: s.access_ip_v4,
    "access_ip_v6": lambda s: s.access_ip_v6,
    "progress": lambda s: s.progress,
    "root_device_name": lambda s: s.root_device_name,
    "locked_by": lambda s: s.locked_by,
    "auto_disk_config": lambda s: int(s.auto_disk_config),
    "launched_at": lambda s: s.launched_at,
    "terminated_at": lambda s: s.terminated_at,
    "created_at": lambda s: s.created_at,
    "kernel_id": lambda s: "",
    "ramdisk_id": lambda s: "",
}

# Sort keys and how to read them (Nova's column names).
SORTERS: dict[str, Callable[[models.Server], Any]] = {
    "access_ip_v4": lambda s: s.access_ip_v4,
    "access_ip_v6": lambda s: s.access_ip_v6,
    "auto_disk_config": lambda s: s.auto_disk_config,
    "availability_zone": lambda s: s.availability_zone,
    "config_drive": lambda s: s.config_drive,
    "created_at": lambda s: s.created_at,
    "display_description": lambda s: s.description,
    "display_name": lambda s: s.name,
    "host": lambda s: s.host,
    "hostname": lambda s: s.hostname,
    "image_ref": lambda s: s.image_ref,
    "instance_type_id": lambda s: str((s.flavor or {}).get("id", "")),
    "kernel_id": lambda s: "",
    "key_name": lambda s: s.key_name,
    "launch_index": lambda s: s.launch_index,
    "launched_at": lambda s: s.launched_at,
    "locked": lambda s: s.locked,
    "locked_by": lambda s: s.locked_by,
    "node": lambda s: s.node,
    "power_state": lambda s: s.power_state,
    "progress": lambda s: s.progress,
    "project_id": lambda s: s.project_id,
    "ramdisk_id": lambda s: "",
    "root_device_name": lambda s: s.root_device_name,
    "task_state": lambda s: s.task_state,
    "terminated_at": lambda s: s.terminated_at,
    "updated_at": lambda s: s.updated_at,
    "user_id": lambda s: s.user_id,
    "uuid": lambda s: s.id,
    "vm_state": lambda s: s.vm_state,
}


def _user_filters(request: rest.ApiRequest) -> set[str]:
    """The filters Nova lets a non-admin use, by version."""
    names = {"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since"}
    names.add("all_tenants")
    if microversions.at_least(request, "server_ip_filter_v6"):
        names.add("ip6")
    if microversions.at_least(request, "server_tags"):
        names.update(TAG_FILTERS)
    if microversions.at_least(request, "changes_before"):
        names.add("changes-before")
    if microversions.at_least(request, "lock_reason"):
        names.add("locked")
    if microversions.at_least(request, "server_list_more_filters"):
        names.update(
            [
                "availability_zone",
                "config_drive",
                "key_name",
                "created_at",
                "launched_at",
                "terminated_at",
                "power_state",
                "task_state",
                "vm_state",
                "progress",
                "user_id",
            ]
        )
    if microversions.at_least(request, "hostname"):
        names.add("hostname")
    return names


def _bool(value: str, *, strict: bool, default: bool = False) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    if strict:
        raise errors.bad_request(
            f"Unrecognized value '{value}', acceptable values are: '0', '1', 'f', 'false', "
            "'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        )
    return default


def _states_for(statuses: list[str]) -> tuple[set[str], set[str | None], bool]:
    """Nova's task_and_vm_state_from_status: vm states, task states, and whether any
    task state goes (a status that is a vm state's default)."""
    wanted = {s.lower() for s in statuses}
    vm: set[str] = set()
    tasks: set[str | None] = set()
    any_task = False
    for vm_state, by_task in states._STATUS.items():
        for task, name in by_task.items():
            if name.lower() in wanted:
                vm.add(vm_state)
                if task is None:
                    any_task = True
                else:
                    tasks.add(task)
    return vm, tasks, any_task


class Query:
    """The parsed listing request."""

    def __init__(self, request: rest.ApiRequest) -> None:
        self.request = request
        ctx = request.context
        self.admin = common.is_admin(ctx)
        opts: dict[str, str] = {k: v[-1] for k, v in request.query.items() if v}
        self.statuses = list(request.query.get("status", []))
        if common.allowed(request, "os_compute_api:servers:allow_all_filters"):
            for key in PAGING:
                opts.pop(key, None)
        else:
            allowed = _user_filters(request)
            opts = {k: v for k, v in opts.items() if k in allowed}
            if "status" not in allowed:
                self.statuses = []
        for name in opts:
            if name in JOINED or name.startswith("_"):
                raise errors.bad_request(f"Invalid filter field: {name}.")
        opts.pop("status", None)
        self.opts = opts


def _time(opts: dict[str, str], name: str) -> datetime.datetime | None:
    if name not in opts:
        return None
    moment = server_validation.parse_isotime(opts[name])
    if moment is None:
        raise errors.bad_request(f"Invalid filter field: {name}.")
    return moment


def _sort_params(request: rest.ApiRequest, admin: bool) -> list[tuple[str, bool]]:
    keys = [k.strip() for k in request.query.get("sort_key", [])] or ["created_at"]
    dirs = [d.strip() for d in request.query.get("sort_dir", [])] or ["desc"]
    for given in dirs:
        if given not in ("asc", "desc"):
            raise errors.bad_request("Unknown sort direction, must be 'desc' or 'asc'")
    ignored = set(server_query_schema.IGNORED_SORT_KEYS)
    if microversions.at_least(request, "lock_reason"):
        ignored.discard("locked")
    pairs: list[tuple[str, str | None]] = []
    for i, key in enumerate(keys):
        direction = dirs[i] if i < len(dirs) else None
        if key in ignored:
            continue
        if key in ("host", "node") and not admin:
            raise errors.forbidden(f"Only administrators can sort servers by {key}")
        pairs.append((key, direction))
    if len(dirs) > len(keys):
        raise errors.bad_request("Sort direction size exceeds sort key size")
    default = pairs[0][1] if pairs and pairs[0][1] else "desc"
    out = [(k, (d or default) == "desc") for k, d in pairs]
    names = [k for k, _ in out]
    for extra in ("created_at", "launch_index", "uuid"):
        if extra not in names:
            out.append((extra, default == "desc"))
    return out


def _sort(servers: list[models.Server], order: list[tuple[str, bool]]) -> list[models.Server]:
    for key, descending in reversed(order):
        get = SORTERS.get(key, lambda s: None)

        def sort_key(server: models.Server, get: Callable[[models.Server], Any] = get) -> Any:
            value = get(server)
            return (value is not None, value if value is not None else 0)

        servers.sort(key=sort_key, reverse=descending)
    return servers


def _regex_match(pattern: str, value: Any) -> bool:
    if value is None:
        return False
    try:
        return re.search(pattern, str(value)) is not None
    except re.error:
        return False


def _tags_ok(tags: set[str], opts: dict[str, list[str]]) -> bool:
    if "tags" in opts and not set(opts["tags"]) <= tags:
        return False
    if "tags-any" in opts and not set(opts["tags-any"]) & tags:
        return False
    if "not-tags" in opts and set(opts["not-tags"]) <= tags:
        return False
    return not ("not-tags-any" in opts and set(opts["not-tags-any"]) & tags)


def _ip_servers(session: Session, opts: dict[str, str]) -> set[str] | None:
    """Servers with a fixed address containing the ip / ip6 filter (Neutron's substring
    filtering, as Nova uses it)."""
    found: set[str] | None = None
    for name, version in (("ip", 4), ("ip6", 6)):
        if name not in opts:
            continue
        wanted = opts[name]
        ids = network_glue.servers_with_ip(session, lambda a, w=wanted: w in a, version)
        found = ids if found is None else found | ids
    return found


def _listed(request: rest.ApiRequest, session: Session, detail: bool) -> list[models.Server] | None:
    query = Query(request)
    opts = query.opts
    S = models.Server
    # Bodies never read these JSON columns: leave them undecoded.
    stmt = select(S).options(
        defer(S.new_flavor),
        defer(S.old_flavor),
        defer(S.block_device_mapping),
        defer(S.scheduler_hints),
        defer(S.driver_state),
        defer(S.security_groups),
        defer(S.key_data),
        defer(S.admin_password),
    )
    if query.statuses:
        vm, tasks, any_task = _states_for(query.statuses)
        if not vm:
            if microversions.at_least(request, "invalid_status_filter_400"):
                raise errors.bad_request("Invalid status value")
            return None
        stmt = stmt.where(S.vm_state.in_(sorted(vm)))
        if not any_task:
            stmt = stmt.where(S.task_state.in_(sorted(t for t in tasks if t)))
        if vm == {states.DELETED}:
            if not query.admin:
                raise errors.forbidden("Only administrators may list deleted instances")
            opts["deleted"] = "true"
    since = _time(opts, "changes-since")
    before = _time(opts, "changes-before")
    if since and before and before < since:
        raise errors.bad_request(
            "The value of changes-since must be less than or equal to changes-before."
        )
    if "deleted" in opts:
        stmt = stmt.where(S.deleted.is_(_bool(opts["deleted"], strict=False)))
    elif since is None and before is None:
        stmt = stmt.where(S.deleted.is_(False))
    if since is not None:
        stmt = stmt.where(S.updated_at >= since)
    if before is not None:
        stmt = stmt.where(S.updated_at <= before)
    if "all_tenants" in opts:
        all_tenants = _bool(opts["all_tenants"], strict=True) if opts["all_tenants"] else True
    else:
        all_tenants = False
    if all_tenants:
        rule = "detail:get_all_tenants" if detail else "index:get_all_tenants"
        common.enforce(request, f"os_compute_api:servers:{rule}")
        project = opts.get("project_id") or opts.get("tenant_id")
        if project:
            stmt = stmt.where(S.project_id == project)
    else:
        stmt = stmt.where(S.project_id == (request.context.project_id or ""))
    if "locked" in opts:
        stmt = stmt.where(S.locked.is_(_bool(opts["locked"], strict=True)))
    for name, column in (
        ("user_id", S.user_id),
        ("image", S.image_ref),
        ("image_ref", S.image_ref),
        ("host", S.host),
        ("uuid", S.id),
    ):
        if name in opts:
            stmt = stmt.where(column == opts[name])
    for name, column in (("vm_state", S.vm_state), ("task_state", S.task_state)):
        if name in opts:
            values = request.query.get(name, [])
            stmt = stmt.where(
                or_(column.in_([v for v in values if v != "None"]), column.is_(None))
                if "None" in values
                else column.in_(values)
            )
    servers = list(session.scalars(stmt))
    tag_opts = {
        name: [t for t in opts[name].split(",") if t] for name in TAG_FILTERS if name in opts
    }
    if tag_opts:
        T = models.ServerTag
        tags: dict[str, set[str]] = {}
        for server_id, tag in session.execute(select(T.server_id, T.tag)):
            tags.setdefault(server_id, set()).add(tag)
        servers = [s for s in servers if _tags_ok(tags.get(s.id, set()), tag_opts)]
    if "flavor" in opts:
        servers = [s for s in servers if str((s.flavor or {}).get("id")) == opts["flavor"]]
    for name, get in REGEX_FILTERS.items():
        if name in opts:
            servers = [s for s in servers if _regex_match(opts[name], get(s))]
    ip_ids = _ip_servers(session, opts)
    if ip_ids is not None:
        servers = [s for s in servers if s.id in ip_ids]
    return _sort(servers, _sort_params(request, query.admin))


def _page(
    request: rest.ApiRequest, session: Session, servers: list[models.Server]
) -> tuple[list[models.Server], bool]:
    limit = common.query_int(request, "limit")
    limit = MAX_LIMIT if limit is None else min(limit, MAX_LIMIT)
    marker = request.arg("marker")
    if marker is not None:
        ids = [s.id for s in servers]
        if marker in ids:
            servers = servers[ids.index(marker) + 1 :]
        else:
            found = session.get(models.Server, marker)
            if found is None or (
                found.project_id != request.context.project_id
                and not common.is_admin(request.context)
            ):
                raise errors.bad_request(f"marker [{marker}] not found")
            order = _sort_params(request, common.is_admin(request.context))
            merged = _sort([*servers, found], order)
            position = merged.index(found)
            servers = merged[position + 1 :]
    chunk = servers[:limit] if limit else []
    return chunk, bool(limit) and len(chunk) == limit


def _listing(request: rest.ApiRequest, session: Session, detail: bool) -> dict[str, Any]:
    server_query_schema.check_query(request)
    common.enforce(request, f"os_compute_api:servers:{'detail' if detail else 'index'}")
    servers = _listed(request, session, detail)
    if servers is None:
        return {"servers": []}
    chunk, full = _page(request, session, servers)
    bodies = (
        server_views.render_many(session, request, chunk)
        if detail
        else server_views.minimal(request, chunk)
    )
    result: dict[str, Any] = {"servers": bodies}
    if full:
        result["servers_links"] = [common.next_link(request, chunk[-1].id)]
    return result


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _listing(request, session, detail=False)


def detail(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _listing(request, session, detail=True)


ROUTES = [
    rest.Route("GET", "/v2.1/servers", index),
    rest.Route("GET", "/v2.1/servers/detail", detail),
]
