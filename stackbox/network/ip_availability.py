"""GET /v2.0/network-ip-availabilities: how many addresses each network and each of its
subnets has, and how many are handed out (for admins: Neutron's
network-ip-availability extension).

A subnet's total is the size of its allocation pools (its whole CIDR when it has
none); its used count is every address held on it, pools or not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import policy, rest
from stackbox.network import attributes as A
from stackbox.network import common, errors, ipam, models
from stackbox.network import ip_ranges as R

ACTION = "get_network_ip_availability"
ATTRS = A.spec(
    A.Attr("network_id", sort=True),
    A.Attr("network_name"),
    A.Attr("project_id"),
    A.Attr("tenant_id"),
    A.Attr("total_ips", filter=False),
    A.Attr("used_ips", filter=False),
    A.Attr("subnet_ip_availability", filter=False),
)


def _ip_versions(request: rest.ApiRequest) -> set[int] | None:
    wanted = request.query.get("ip_version")
    if not wanted:
        return None
    try:
        return {int(v) for value in wanted for v in value.split(",") if v}
    except ValueError:
        raise errors.invalid_input(f"Invalid ip_version filter: {wanted}") from None


def availabilities(
    session: Session, networks: list[models.Network], versions: set[int] | None
) -> list[dict[str, Any]]:
    ids = [n.id for n in networks]
    S = models.Subnet
    subnets: list[models.Subnet] = []
    for start in range(0, len(ids), 500):
        query = select(S).where(S.network_id.in_(ids[start : start + 500]))
        if versions is not None:
            query = query.where(S.ip_version.in_(versions))
        subnets.extend(session.scalars(query.order_by(S.created_at, S.id)))
    pools = ipam.pools_of(session, [s.id for s in subnets])
    used = ipam.used_counts(session, [s.id for s in subnets])
    per_network: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for subnet in subnets:
        ranges = pools[subnet.id]
        total = sum(r.size for r in ranges) if ranges else R.network_of(subnet.cidr).num_addresses
        per_network[subnet.network_id].append(
            {
                "subnet_id": subnet.id,
                "subnet_name": subnet.name,
                "cidr": subnet.cidr,
                "ip_version": subnet.ip_version,
                "total_ips": total,
                "used_ips": used[subnet.id],
            }
        )
    bodies = []
    for network in networks:
        entries = per_network[network.id]
        if versions is not None and not entries:
            continue  # filtered by IP version: only networks with such subnets
        bodies.append(
            {
                "network_id": network.id,
                "network_name": network.name,
                "project_id": network.project_id,
                "tenant_id": network.project_id,
                "total_ips": sum(e["total_ips"] for e in entries),
                "used_ips": sum(e["used_ips"] for e in entries),
                "subnet_ip_availability": entries,
            }
        )
    return bodies


def _allowed(request: rest.ApiRequest, body: dict[str, Any]) -> bool:
    rules = {"project_id": body["project_id"], "tenant_id": body["project_id"]}
    return policy.allowed(request.context, ACTION, rules, service=common.SERVICE)


def list_availabilities(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    versions = _ip_versions(request)
    networks = list(session.scalars(select(models.Network)))
    bodies = [b for b in availabilities(session, networks, versions) if _allowed(request, b)]
    return common.collection(
        request,
        "network_ip_availabilities",
        bodies,
        ATTRS,
        special={"ip_version": lambda item, values: True},
    )


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    network_id = request.path_params["network_id"]
    network = session.get(models.Network, network_id)
    found = availabilities(session, [network], None) if network is not None else []
    if not found or not _allowed(request, found[0]):
        raise errors.resource_not_found("network", network_id)
    return {"network_ip_availability": common.fields_wanted(request, found[0])}


ROUTES = [
    rest.Route("GET", "/v2.0/network-ip-availabilities", list_availabilities),
    rest.Route("GET", "/v2.0/network-ip-availabilities/{network_id}", show),
]
