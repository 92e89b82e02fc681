"""Availability zones (``os-availability-zone``), derived from the registered services.

A compute host's zone is its aggregates' ``availability_zone``, else the default
zone; other services are in the ``internal`` zone, which only the detailed
(admin) listing shows. A zone is available while some service in it is enabled;
a zone whose services are all disabled is listed as unavailable. Zones of
aggregates without hosts do not appear (as in Nova: zones come from services).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import aggregates, common, liveness, models, os_hosts, services


def _zoned_services(session: Session) -> list[tuple[str, models.Service]]:
    zones = aggregates.host_zones(session)
    rows = session.scalars(
        select(models.Service)
        .where(models.Service.binary.not_in(services.API_BINARIES))
        .order_by(models.Service.id)
    )
    return [(services.zone_of(service, zones), service) for service in rows]


def _split(zoned: list[tuple[str, models.Service]]) -> tuple[list[str], list[str]]:
    available = sorted({zone for zone, service in zoned if not service.disabled})
    unavailable = sorted(
        {zone for zone, service in zoned if service.disabled and zone not in available}
    )
    return available, unavailable


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-availability-zone:list")
    available, unavailable = _split(_zoned_services(session))
    info = [
        {"zoneName": zone, "zoneState": {"available": state}, "hosts": None}
        for zones, state in ((available, True), (unavailable, False))
        for zone in zones
        if zone != services.INTERNAL_ZONE
    ]
    return {"availabilityZoneInfo": info}


def detail(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-availability-zone:detail")
    zoned = _zoned_services(session)
    available, unavailable = _split(zoned)
    now = common.now()
    down_time = services.down_time()
    hosts: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for zone, service in zoned:
        if service.disabled:
            continue
        hosts[zone].setdefault(service.host, {})[service.binary] = {
            "available": liveness.is_up(service, now, down_time),
            "active": True,
            "updated_at": common.isotime_micro(services.updated_time(service)),
        }
    info: list[dict[str, Any]] = [
        {"zoneName": zone, "zoneState": {"available": True}, "hosts": dict(hosts.get(zone, {}))}
        for zone in available
    ]
    info.extend(
        {"zoneName": zone, "zoneState": {"available": False}, "hosts": None} for zone in unavailable
    )
    return {"availabilityZoneInfo": info}


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-availability-zone", index),
    rest.Route("GET", "/v2.1/os-availability-zone/detail", detail),
    # The deprecated os-hosts API (hosts by zone) has no module in api.py: served here.
    *os_hosts.ROUTES,
]
