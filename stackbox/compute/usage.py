"""Simple tenant usage (``os-simple-tenant-usage``): hours of servers in a time window.

A server counts from ``launched_at`` to ``terminated_at`` (deleted servers stay in
the table, so past usage keeps counting); servers that never launched count
nothing. Each project's totals are vCPU-, MB- and GB-hours over its servers, with
one ``server_usages`` entry per server for detailed listings. Pages (2.40+) walk
the servers in (project, server id) order, the marker being a server id; the
listing is capped at 1000 servers per page in every version, as in Nova.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, models, services

MAX_LIMIT = 1000
_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _moment(text: str | None, now: datetime.datetime) -> datetime.datetime:
    if not text:
        return now
    for fmt in _FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise errors.bad_request("Invalid datetime string: Datetime is in invalid format")


def _window(request: rest.ApiRequest) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    start = _moment(request.arg("start"), now)
    stop = _moment(request.arg("end"), now)
    if not start < stop:
        raise errors.bad_request(
            "Invalid start time. The start time cannot occur after the end time."
        )
    return start, min(stop, now)


def _paging(request: rest.ApiRequest) -> tuple[int, str | None]:
    if not microversions.at_least(request, "usage_paging"):
        return MAX_LIMIT, None
    limit = common.query_int(request, "limit")
    return (MAX_LIMIT if limit is None else min(limit, MAX_LIMIT)), request.arg("marker")


def _servers(
    session: Session,
    start: datetime.datetime,
    stop: datetime.datetime,
    project_id: str | None,
    limit: int,
    marker: str | None,
) -> list[models.Server]:
    # A deleted server that was never marked terminated ended when it was deleted.
    ended = func.coalesce(models.Server.terminated_at, models.Server.deleted_at)
    query = select(models.Server).where(
        or_(ended.is_(None), ended > start),
        models.Server.launched_at < stop,
    )
    if project_id is not None:
        query = query.where(models.Server.project_id == project_id)
    if marker is not None:
        after = session.get(models.Server, marker)
        if after is None:
            raise errors.bad_request(f"Marker {marker} could not be found.")
        query = query.where(
            or_(
                models.Server.project_id > after.project_id,
                and_(models.Server.project_id == after.project_id, models.Server.id > after.id),
            )
        )
    query = query.order_by(models.Server.project_id, models.Server.id).limit(limit)
    return list(session.scalars(query))


def _ended(server: models.Server) -> datetime.datetime | None:
    if server.terminated_at is not None:
        return server.terminated_at
    return server.deleted_at if server.deleted else None


def _hours(server: models.Server, start: datetime.datetime, stop: datetime.datetime) -> float:
    launched, ended = server.launched_at, _ended(server)
    if launched is None or launched > stop or (ended is not None and ended < start):
        return 0.0
    span = min(stop, ended) if ended is not None else stop
    return (span - max(launched, start)).total_seconds() / 3600.0


def _server_usage(
    server: models.Server,
    start: datetime.datetime,
    stop: datetime.datetime,
    now: datetime.datetime,
) -> dict[str, Any]:
    flavor = server.flavor or {}
    ended = _ended(server)
    launched = server.launched_at or now
    info: dict[str, Any] = {
        "hours": _hours(server, start, stop),
        "flavor": flavor.get("name", ""),
        "instance_id": server.id,
        "name": server.name,
        "tenant_id": server.project_id,
    }
    if flavor:
        info["memory_mb"] = int(flavor.get("memory_mb", 0))
        info["local_gb"] = int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0))
        info["vcpus"] = int(flavor.get("vcpus", 0))
    info["started_at"] = common.isotime_micro(server.launched_at)
    info["ended_at"] = common.isotime_micro(ended)
    info["state"] = "terminated" if ended is not None else server.vm_state
    info["uptime"] = max(0, int(((ended or now) - launched).total_seconds()))
    return info


def _summaries(
    servers: list[models.Server],
    start: datetime.datetime,
    stop: datetime.datetime,
    *,
    detailed: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    totals: OrderedDict[str, dict[str, Any]] = OrderedDict()
    every: list[dict[str, Any]] = []
    for server in servers:
        info = _server_usage(server, start, stop, now)
        summary = totals.get(server.project_id)
        if summary is None:
            summary = {
                "tenant_id": server.project_id,
                "total_local_gb_usage": 0,
                "total_vcpus_usage": 0,
                "total_memory_mb_usage": 0,
                "total_hours": 0,
                "start": common.isotime_micro(start),
                "stop": common.isotime_micro(stop),
            }
            if detailed:
                summary["server_usages"] = []
            totals[server.project_id] = summary
        hours = info["hours"]
        summary["total_local_gb_usage"] += info.get("local_gb", 0) * hours
        summary["total_vcpus_usage"] += info.get("vcpus", 0) * hours
        summary["total_memory_mb_usage"] += info.get("memory_mb", 0) * hours
        summary["total_hours"] += hours
        every.append(info)
        if detailed:
            summary["server_usages"].append(info)
    return list(totals.values()), every


def _links(
    request: rest.ApiRequest, usages: list[dict[str, Any]], limit: int
) -> list[dict[str, str]]:
    """Nova's rule: a next link whenever the page is full."""
    if limit and len(usages) == limit:
        return [common.next_link(request, usages[-1]["instance_id"])]
    return []


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    if request.path.endswith("/"):
        # ".../os-simple-tenant-usage/" names a project with an empty id: none such.
        raise errors.not_found("The resource could not be found.")
    common.enforce(request, "os_compute_api:os-simple-tenant-usage:list")
    if microversions.at_least(request, "strict_param_validation"):
        services.reject_unknown_query(request, {"start", "end", "detailed", "limit", "marker"})
    start, stop = _window(request)
    detailed = request.arg("detailed", "0") == "1"
    limit, marker = _paging(request)
    servers = _servers(session, start, stop, None, limit, marker)
    usages, every = _summaries(servers, start, stop, detailed=detailed)
    body: dict[str, Any] = {"tenant_usages": usages}
    if microversions.at_least(request, "usage_paging"):
        links = _links(request, every, limit)
        if links:
            body["tenant_usages_links"] = links
    return body


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    project_id = request.path_params["project_id"]
    common.enforce(
        request, "os_compute_api:os-simple-tenant-usage:show", {"project_id": project_id}
    )
    if microversions.at_least(request, "strict_param_validation"):
        services.reject_unknown_query(request, {"start", "end", "limit", "marker"})
    start, stop = _window(request)
    limit, marker = _paging(request)
    servers = _servers(session, start, stop, project_id, limit, marker)
    usages, every = _summaries(servers, start, stop, detailed=True)
    body: dict[str, Any] = {"tenant_usage": usages[0] if usages else {}}
    if microversions.at_least(request, "usage_paging"):
        links = _links(request, every, limit)
        if links:
            body["tenant_usage_links"] = links
    return body


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-simple-tenant-usage", index),
    rest.Route("GET", "/v2.1/os-simple-tenant-usage/{project_id}", show),
]
