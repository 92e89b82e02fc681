"""How subnets are seen: who may see which (visibility, policy targets with their
network's facts) and their API bodies, loaded in batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from stackbox import context
from stackbox.network import common, errors, ipam, models, rbac

RESOURCE = "subnet"


@dataclasses.dataclass(frozen=True)
class NetworkFacts:
    """What policy and rendering need to know of a subnet's network."""

    project_id: str
    shared: bool
    external: bool


def network_facts(session: Session, network_ids: Iterable[str]) -> dict[str, NetworkFacts]:
    ids = list(dict.fromkeys(network_ids))
    shared = rbac.wildcards(session, "network", rbac.SHARED, ids)
    N = models.Network
    found = {}
    for start in range(0, len(ids), 500):
        for network_id, project_id, external in session.execute(
            select(N.id, N.project_id, N.external).where(N.id.in_(ids[start : start + 500]))
        ):
            found[network_id] = NetworkFacts(project_id, network_id in shared, bool(external))
    return found


def target(subnet_project: str, facts: NetworkFacts) -> dict[str, Any]:
    return {
        "project_id": subnet_project,
        "network:project_id": facts.project_id,
        "shared": str(facts.shared),
        "external": str(facts.external),
    }


def visible_clause(ctx: context.RequestContext) -> Any:
    """SQL: subnets of ``ctx``'s project, or on networks it may see."""
    S, N = models.Subnet, models.Network
    return or_(
        S.project_id == (ctx.project_id or ""),
        S.network_id.in_(select(N.id).where(rbac.network_clause(ctx))),
    )


def get_visible(session: Session, ctx: context.RequestContext, subnet_id: str) -> models.Subnet:
    """The subnet if ``ctx`` may see it; 404 SubnetNotFound otherwise."""
    query = select(models.Subnet).where(models.Subnet.id == subnet_id)
    if not common.is_admin(ctx):
        query = query.where(visible_clause(ctx))
    subnet = session.scalars(query).first()
    if subnet is None:
        raise errors.resource_not_found(RESOURCE, subnet_id)
    return subnet


def _children(session: Session, ids: list[str]) -> dict[str, dict[str, list[Any]]]:
    found: dict[str, dict[str, list[Any]]] = {
        i: {"dns": [], "routes": [], "types": []} for i in ids
    }
    D, H, T = models.DnsNameserver, models.HostRoute, models.SubnetServiceType
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for dns in session.scalars(select(D).where(D.subnet_id.in_(chunk)).order_by(D.order)):
            found[dns.subnet_id]["dns"].append(dns.address)
        for route in session.scalars(
            select(H).where(H.subnet_id.in_(chunk)).order_by(H.destination, H.nexthop)
        ):
            found[route.subnet_id]["routes"].append(
                {"destination": route.destination, "nexthop": route.nexthop}
            )
        for row in session.scalars(select(T).where(T.subnet_id.in_(chunk))):
            found[row.subnet_id]["types"].append(row.service_type)
    return found


def render_many(session: Session, subnets: list[models.Subnet]) -> list[dict[str, Any]]:
    ids = [s.id for s in subnets]
    pools = ipam.pools_of(session, ids)
    children = _children(session, ids)
    tags = common.tags_of(session, RESOURCE, ids)
    facts = network_facts(session, [s.network_id for s in subnets])
    bodies = []
    for subnet in subnets:
        body = common.standard(subnet, tags[subnet.id])
        more = children[subnet.id]
        body.update(
            {
                "name": subnet.name,
                "network_id": subnet.network_id,
                "ip_version": subnet.ip_version,
                "subnetpool_id": subnet.subnetpool_id,
                "enable_dhcp": subnet.enable_dhcp,
                "ipv6_ra_mode": subnet.ipv6_ra_mode,
                "ipv6_address_mode": subnet.ipv6_address_mode,
                "gateway_ip": subnet.gateway_ip,
                "cidr": subnet.cidr,
                "allocation_pools": [p.as_dict() for p in pools[subnet.id]],
                "host_routes": more["routes"],
                "dns_nameservers": more["dns"],
                "service_types": sorted(more["types"]),
                "segment_id": subnet.segment_id,
                "router:external": facts[subnet.network_id].external,
            }
        )
        bodies.append(body)
    return bodies
