"""Availability zones as host aggregates make them, and Nova's rules that keep each
host in one zone.

A host's zone is the ``availability_zone`` metadata of its aggregates, else the
default zone. A new zone for an aggregate must not be empty, must not clash with
the zones its hosts have through other aggregates, and must not move servers; a
host with servers may not join or leave a zoned aggregate if that changes its
zone (Nova's is_safe_to_update_az and the instance checks of add/remove host).

``aggregates`` re-exports the readers (``host_zone``, ``host_zones``,
``host_aggregates``, ``default_zone``) other modules call.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import errors, models, runtime

ZONE_KEY = "availability_zone"
_MOVING = (
    "Changing the AZ of an existing instance is not supported by this action. Move the "
    "instances away from this host then try again. If you need to move the instances "
    "between AZs then you can use shelve_offload and unshelve to achieve this"
)


# --- readers --------------------------------------------------------------------------------


def host_zones(session: Session) -> dict[str, str]:
    """The zone of every host that some zoned aggregate holds (others: the default)."""
    rows = session.execute(
        select(models.AggregateHost.host, models.AggregateMetadata.value)
        .join(
            models.AggregateMetadata,
            models.AggregateMetadata.aggregate_id == models.AggregateHost.aggregate_id,
        )
        .where(models.AggregateMetadata.key == ZONE_KEY)
    ).all()
    zones: dict[str, set[str]] = defaultdict(set)
    for host, zone in rows:
        zones[host].add(zone)
    # Nova joins the zones of a host that (against its own checks) ended up in several.
    return {host: ",".join(sorted(names)) for host, names in zones.items()}


def default_zone() -> str:
    return runtime.get().settings.default_availability_zone


def host_zone(session: Session, host: str) -> str:
    """The availability zone of ``host``: its aggregates' zone, else the default zone."""
    zones = session.scalars(
        select(models.AggregateMetadata.value)
        .join(
            models.AggregateHost,
            models.AggregateHost.aggregate_id == models.AggregateMetadata.aggregate_id,
        )
        .where(models.AggregateHost.host == host, models.AggregateMetadata.key == ZONE_KEY)
    ).all()
    return ",".join(sorted(set(zones))) if zones else default_zone()


def host_aggregates(session: Session) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Every aggregated host's aggregates as (name, metadata), for the scheduler."""
    metadata = metadata_of(session, None)
    names = dict(session.execute(select(models.Aggregate.id, models.Aggregate.name)).all())
    result: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
    for aggregate_id, host in session.execute(
        select(models.AggregateHost.aggregate_id, models.AggregateHost.host).order_by(
            models.AggregateHost.aggregate_id
        )
    ):
        result[host].append((names[aggregate_id], dict(metadata.get(aggregate_id, {}))))
    return dict(result)


def remove_host_everywhere(session: Session, host: str) -> None:
    """Take ``host`` out of every aggregate (its compute service is being deleted)."""
    session.execute(delete(models.AggregateHost).where(models.AggregateHost.host == host))


def metadata_of(session: Session, ids: list[int] | None) -> dict[int, dict[str, str]]:
    """Metadata of the given aggregates (all when ``ids`` is None)."""
    query = select(
        models.AggregateMetadata.aggregate_id,
        models.AggregateMetadata.key,
        models.AggregateMetadata.value,
    )
    if ids is not None:
        query = query.where(models.AggregateMetadata.aggregate_id.in_(ids))
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for aggregate_id, key, value in session.execute(query):
        found[aggregate_id][key] = value
    return found


# --- rules ----------------------------------------------------------------------------------


def zone_of(session: Session, aggregate: models.Aggregate) -> str | None:
    return session.scalar(
        select(models.AggregateMetadata.value).where(
            models.AggregateMetadata.aggregate_id == aggregate.id,
            models.AggregateMetadata.key == ZONE_KEY,
        )
    )


def hosts_of(session: Session, aggregate: models.Aggregate) -> list[str]:
    return list(
        session.scalars(
            select(models.AggregateHost.host).where(
                models.AggregateHost.aggregate_id == aggregate.id
            )
        )
    )


def servers_on(session: Session, hosts: list[str]) -> int:
    if not hosts:
        return 0
    return int(
        session.scalar(
            select(func.count())
            .select_from(models.Server)
            .where(models.Server.host.in_(hosts), models.Server.deleted.is_(False))
        )
        or 0
    )


def check_zone_change(
    session: Session,
    aggregate: models.Aggregate,
    metadata: dict[str, Any],
    hosts: list[str],
    *,
    what: str,
    check_servers: bool,
) -> None:
    """Nova's is_safe_to_update_az: a new zone must not be empty, must not clash with the
    zones the hosts have through other aggregates, and (for updates) must not move
    servers to another zone."""
    if ZONE_KEY not in metadata:
        return
    zone = metadata[ZONE_KEY]
    if not zone:
        raise invalid(
            what,
            aggregate,
            f"Aggregate {aggregate.name} does not support empty named availability zone",
        )
    if hosts:
        clashing = sorted(
            set(
                session.scalars(
                    select(models.AggregateMetadata.value)
                    .join(
                        models.AggregateHost,
                        models.AggregateHost.aggregate_id == models.AggregateMetadata.aggregate_id,
                    )
                    .where(
                        models.AggregateHost.host.in_(hosts),
                        models.AggregateMetadata.key == ZONE_KEY,
                        models.AggregateMetadata.aggregate_id != aggregate.id,
                        models.AggregateMetadata.value != zone,
                    )
                )
            )
        )
        if clashing:
            raise invalid(
                what, aggregate, f"One or more hosts already in availability zone(s) {clashing}"
            )
    if check_servers and zone_of(session, aggregate) != zone and servers_on(session, hosts):
        raise invalid(what, aggregate, "One or more hosts contain instances in this zone")


_WHAT = {
    "add": "Cannot add host to aggregate",
    "remove": "Cannot remove host from aggregate",
    "update": "Cannot update aggregate",
    "metadata": "Cannot update metadata of aggregate",
}


def invalid(what: str, aggregate: models.Aggregate, reason: str) -> rest.ApiError:
    message = f"{_WHAT[what]} {aggregate.id}. Reason: {reason}."
    # Host changes answer 409, metadata and update 400 (Nova maps InvalidAggregateAction
    # differently per action).
    if what in ("add", "remove"):
        return errors.conflict(message)
    return errors.bad_request(message)


def check_host_joins(session: Session, aggregate: models.Aggregate, host: str) -> None:
    """``host`` may join ``aggregate``: no zone clash, and no server changes zone."""
    zone = zone_of(session, aggregate)
    if zone is None:
        return
    check_zone_change(session, aggregate, {ZONE_KEY: zone}, [host], what="add", check_servers=False)
    servers = servers_on(session, [host])
    current = host_zones(session).get(host)
    if servers and current != zone:
        raise invalid(
            "add",
            aggregate,
            "The host cannot be added to the aggregate as the availability zone of the host "
            f"would change from '{current}' to '{zone}' but the host already has {servers} "
            f"instance(s). {_MOVING}",
        )


def check_host_leaves(session: Session, aggregate: models.Aggregate, host: str) -> None:
    """``host`` may leave ``aggregate``: none of its servers changes zone."""
    zone = zone_of(session, aggregate)
    servers = servers_on(session, [host])
    if zone is None or not servers:
        return
    others = {
        value
        for agg_id, value in session.execute(
            select(models.AggregateMetadata.aggregate_id, models.AggregateMetadata.value)
            .join(
                models.AggregateHost,
                models.AggregateHost.aggregate_id == models.AggregateMetadata.aggregate_id,
            )
            .where(models.AggregateHost.host == host, models.AggregateMetadata.key == ZONE_KEY)
        )
        if agg_id != aggregate.id
    }
    remaining = sorted(others)[0] if others else None
    if remaining != zone:
        raise invalid(
            "remove",
            aggregate,
            "The host cannot be removed from the aggregate as the availability zone of the "
            f"host would change from '{zone}' to '{remaining}' but the host already has "
            f"{servers} instance(s). {_MOVING}",
        )
