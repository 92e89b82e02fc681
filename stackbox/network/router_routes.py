"""Extra routes of routers (extraroute, extraroute-atomic): checking a route list,
checking next hops against the router's connected subnets, and the atomic
add/remove merges."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.network import attributes as A
from stackbox.network import models, router_ports

Route = dict[str, str]


def _route_cidr(value: Any) -> str:
    if not isinstance(value, str) or "/" not in value:
        raise A.Invalid(f"'{value}' is not a valid CIDR")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise A.Invalid(f"'{value}' is not a valid CIDR") from None
    if network.is_loopback:
        raise A.Invalid(f"'{value}' is not a routable CIDR")
    return str(network)


def _keys_message(given: Any) -> str:
    expected = {"destination", "nexthop"}
    if not isinstance(given, dict):
        return (
            f"Invalid input. '{given}' must be a dictionary with keys: ['destination', 'nexthop']"
        )
    return (
        "Validation of dictionary's keys failed. "
        f"Expected keys: {expected} Provided keys: {set(given)}"
    )


def validate(value: Any) -> list[Route]:
    """Neutron's ``type:hostroutes``; ``None`` means no routes."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise A.Invalid(f"Invalid data format for hostroute: '{value}'")
    routes: list[Route] = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise A.Invalid(_keys_message(item))
        route = {
            "destination": _route_cidr(item["destination"]),
            "nexthop": A.ip_address(item["nexthop"]),
        }
        if route in routes:
            raise A.Invalid(f"Duplicate hostroute '{item}'")
        routes.append(route)
    return routes


def invalid_routes(routes: list[Route], reason: str) -> rest.BadRequest:
    return rest.BadRequest(f"Invalid format for routes: {routes}, {reason}", kind="InvalidRoutes")


def current(session: Session, router_id: str) -> list[Route]:
    rows = session.scalars(
        select(models.RouterRoute)
        .where(models.RouterRoute.router_id == router_id)
        .order_by(models.RouterRoute.destination, models.RouterRoute.nexthop)
    )
    return [{"destination": r.destination, "nexthop": r.nexthop} for r in rows]


def routes_of(session: Session, router_ids: list[str]) -> dict[str, list[Route]]:
    found: dict[str, list[Route]] = {i: [] for i in router_ids}
    for start in range(0, len(router_ids), 500):
        for row in session.scalars(
            select(models.RouterRoute)
            .where(models.RouterRoute.router_id.in_(router_ids[start : start + 500]))
            .order_by(models.RouterRoute.destination, models.RouterRoute.nexthop)
        ):
            found[row.router_id].append({"destination": row.destination, "nexthop": row.nexthop})
    return found


def check_nexthops(
    session: Session, router: models.Router, routes: list[Route], gateway_network: str | None
) -> None:
    """Each next hop must be on a connected subnet and not be the router's own address.

    ``gateway_network`` is the external network the router's gateway will be on
    (its subnets count as connected), or None for the router's current gateway.
    """
    if not routes:
        return
    held = router_ports.router_ports(session, router.id)
    if gateway_network is not None:
        held = [p for p in held if p.id != router.gw_port_id]
    addresses = router_ports.addresses(session, [p.id for p in held])
    own_ips = {ip for pairs in addresses.values() for _, ip in pairs}
    subnet_ids = [subnet for pairs in addresses.values() for subnet, _ in pairs]
    networks = [ipaddress.ip_network(s.cidr) for s in router_ports.subnets_of(session, subnet_ids)]
    if gateway_network:
        networks += [
            ipaddress.ip_network(s.cidr)
            for s in router_ports.network_subnets(session, gateway_network)
        ]
    for route in routes:
        hop = ipaddress.ip_address(route["nexthop"])
        if not any(hop in net for net in networks if net.version == hop.version):
            raise invalid_routes(routes, "the nexthop is not connected with router")
        if route["nexthop"] in own_ips:
            raise invalid_routes(routes, "the nexthop is used by router")


def replace(session: Session, router_id: str, routes: list[Route]) -> bool:
    """Store exactly ``routes``; True when anything changed."""
    old = current(session, router_id)
    added = [r for r in routes if r not in old]
    removed = [r for r in old if r not in routes]
    for route in removed:
        session.query(models.RouterRoute).filter(
            models.RouterRoute.router_id == router_id,
            models.RouterRoute.destination == route["destination"],
            models.RouterRoute.nexthop == route["nexthop"],
        ).delete()
    for route in added:
        session.add(models.RouterRoute(router_id=router_id, **route))
    session.flush()
    return bool(added or removed)


def merged(old: list[Route], add: list[Route]) -> list[Route]:
    """Old plus new routes; exact duplicates once (extraroute-atomic)."""
    result = list(old)
    for route in add:
        if route not in result:
            result.append(route)
    return result


def without(old: list[Route], remove: list[Route]) -> list[Route]:
    """Old routes minus the given ones; removing a missing route is fine."""
    return [r for r in old if r not in remove]


def blocking_subnet(routes: list[Route], cidr: str) -> bool:
    """Whether some route's next hop lies on ``cidr`` (so its interface must stay)."""
    network = ipaddress.ip_network(cidr)
    for route in routes:
        hop = ipaddress.ip_address(route["nexthop"])
        if hop.version == network.version and hop in network:
            return True
    return False
