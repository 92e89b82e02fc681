"""What servers ask of the networking service, in-process and in the caller's transaction:
which networks a boot may use, its ports (created or taken over, bound to the host),
releasing them, and the addresses and security groups a server body shows.

Records of what a server holds live in ``server.requested_networks`` (a list; the
string ``"none"`` for a server booted with no network), one dict per port, in NIC order,
shaped like Nova's network request:

    {"uuid": network id, "port": the port id if the user brought it else None,
     "port_id": the port's id, "preexisting": bool, "fixed_ip": str | None,
     "tag": str | None}

A ``preexisting`` port (``port`` set) was the user's before the server took it: it is
only unbound when the server lets it go; other ports are deleted. Network errors come back in Nova's
wording and statuses (400 for what cannot be found, 409 PortInUse, 403 for external
networks), never in Neutron's body.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.compute import models as cmodels
from stackbox.network import floatingips, models, port_rows, ports, rbac, security_groups

# Ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class Request:
    """One NIC of a boot request: a network (with an optional fixed IP) or a port."""

    network_id: str | None = None
    port_id: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None


# --- errors in Nova's words ------------------------------------------------------------------


def _nova(exc: rest.ApiError) -> rest.ApiError:
    """A networking error as the compute API reports it (no Neutron type names)."""
    if exc.kind == "OverQuota":
        return rest.Forbidden("Maximum number of ports exceeded")
    if exc.kind in ("IpAddressAlreadyAllocated", "IpAddressInUse"):
        return rest.BadRequest(exc.message)
    if isinstance(exc, rest.NotFound):
        return rest.BadRequest(exc.message)
    error = type(exc)(exc.message)
    error.status = exc.status
    return error


def system_context() -> context.RequestContext:
    """The compute service acting on ports by itself (release after a delete)."""
    return context.RequestContext(
        request_id=f"req-{uuid.uuid4()}", user_id="stackbox-compute", roles=("admin",)
    )


# --- which networks a boot may use ------------------------------------------------------------


def available_networks(session: Session, project_id: str) -> list[models.Network]:
    """Networks a project's boot may pick by itself: its own and those shared with it."""
    N = models.Network
    return list(
        session.scalars(
            select(N)
            .where(
                or_(N.project_id == project_id, rbac.granted("network", rbac.SHARED, project_id))
            )
            .order_by(N.created_at, N.id)
        )
    )


def _visible_network(
    session: Session, ctx: context.RequestContext, network_id: str
) -> models.Network:
    N = models.Network
    query = select(N).where(N.id == network_id)
    if "admin" not in ctx.roles:
        query = query.where(rbac.network_clause(ctx))
    network = session.scalars(query).first()
    if network is None:
        raise rest.BadRequest(f"Network {network_id} could not be found.")
    return network


def _has_subnet(session: Session, network_id: str) -> bool:
    S = models.Subnet
    return session.scalar(select(S.id).where(S.network_id == network_id).limit(1)) is not None


def _check_network(session: Session, ctx: context.RequestContext, network: models.Network) -> None:
    project = ctx.project_id or ""
    if (
        network.external
        and "admin" not in ctx.roles
        and network.project_id != project
        and not rbac.can_use_network(session, ctx, network)
    ):
        raise rest.Forbidden(
            f"It is not allowed to create an interface on external network {network.id}"
        )
    if not _has_subnet(session, network.id):
        raise rest.BadRequest(
            f"Network {network.id} requires a subnet in order to boot instances on."
        )


def _usable_port(session: Session, ctx: context.RequestContext, port_id: str) -> models.Port:
    try:
        port = ports.get_visible(session, ctx, port_id)
    except rest.NotFound:
        raise rest.BadRequest(f"Port id {port_id} could not be found.") from None
    if port.device_id:
        raise rest.Conflict(f"Port {port_id} is still in use.")
    has_ip = session.scalar(
        select(models.IPAllocation.port_id).where(models.IPAllocation.port_id == port.id).limit(1)
    )
    if has_ip is None:
        raise rest.BadRequest(f"Port {port_id} requires a FixedIP in order to be used.")
    return port


def _check_fixed_ip(session: Session, network_id: str, address: str) -> None:
    A = models.IPAllocation
    holder = session.scalars(
        select(A.port_id).where(A.network_id == network_id, A.ip_address == address)
    ).first()
    if holder is None:
        return
    port = session.get(models.Port, holder)
    raise rest.BadRequest(
        f"Fixed IP address {address} is already in use on instance "
        f"{port.device_id if port is not None else ''}."
    )


def plan(
    session: Session,
    ctx: context.RequestContext,
    requested: str | list[Request] | None,
) -> list[Request]:
    """Check a boot's network request (Nova's validate_networks) and say which NICs
    each server gets. ``requested``: "none", "auto", None (before 2.37: as "auto" but
    booting with no NIC when the project has no network) or explicit NICs."""
    if requested == "none":
        return []
    project = ctx.project_id or ""
    if requested is None or requested == "auto" or not requested:
        nets = available_networks(session, project)
        if len(nets) > 1:
            raise rest.Conflict(
                "Multiple possible networks found, use a Network ID to be more specific."
            )
        if not nets:
            if requested == "auto":
                raise rest.BadRequest(
                    f"Unable to automatically allocate a network for project {project}"
                )
            return []
        return [Request(network_id=nets[0].id)]
    assert isinstance(requested, list)
    out: list[Request] = []
    for item in requested:
        if item.port_id:
            port = _usable_port(session, ctx, item.port_id)
            out.append(dataclasses.replace(item, network_id=port.network_id))
            continue
        assert item.network_id is not None
        network = _visible_network(session, ctx, item.network_id)
        _check_network(session, ctx, network)
        if item.fixed_ip:
            _check_fixed_ip(session, network.id, item.fixed_ip)
        out.append(item)
    return out


# --- security groups ---------------------------------------------------------------------------


def resolve_security_groups(
    session: Session, ctx: context.RequestContext, project_id: str, names: Sequence[str]
) -> list[str]:
    """Group ids for the names (or ids) a boot asks for, as Nova's validate_name:
    a name of the project's groups, else an id the project may use; 400 if neither,
    409 if a name matches several groups."""
    G = models.SecurityGroup
    found: list[str] = []
    for name in dict.fromkeys(names):
        if name == "default":
            found.append(security_groups.ensure_default(session, project_id))
            continue
        matches = list(
            session.scalars(select(G.id).where(G.project_id == project_id, G.name == name))
        )
        if len(matches) > 1:
            raise rest.Conflict(
                f"Multiple security groups found matching '{name}'. Use an ID to be more specific."
            )
        if matches:
            found.append(matches[0])
            continue
        group = session.get(G, name)
        usable = group is not None and (
            "admin" in ctx.roles
            or group.project_id == project_id
            or bool(rbac.shared_with(session, "security_group", [group.id], project_id))
        )
        if not usable:
            raise rest.BadRequest(f"Security group {name} not found.")
        found.append(name)
    return found


# --- ports for a server ---------------------------------------------------------------------


def _record(port: models.Port, preexisting: bool, item: Request) -> dict[str, Any]:
    return {
        "uuid": port.network_id,
        "port": port.id if preexisting else None,
        "port_id": port.id,
        "preexisting": preexisting,
        "fixed_ip": item.fixed_ip,
        "tag": item.tag,
    }


def create_port(
    session: Session,
    ctx: context.RequestContext,
    server: cmodels.Server,
    item: Request,
    group_ids: list[str] | None,
) -> dict[str, Any]:
    """A new port for ``server`` on ``item.network_id``, bound to the server's host."""
    network = session.get(models.Network, item.network_id)
    if network is None:
        raise rest.BadRequest(f"Network {item.network_id} could not be found.")
    spec: dict[str, Any] = {
        "device_id": server.id,
        "device_owner": f"compute:{server.availability_zone or 'nova'}",
        "binding:host_id": server.host or "",
        "dns_name": server.hostname,
    }
    if group_ids is not None:
        spec["security_groups"] = group_ids
    if item.fixed_ip:
        spec["fixed_ips"] = [{"ip_address": item.fixed_ip}]
    try:
        port = port_rows.create(session, ctx, network, spec, project_id=server.project_id)
    except rest.ApiError as exc:
        raise _nova(exc) from None
    return _record(port, False, item)


def bind_existing_port(
    session: Session, ctx: context.RequestContext, server: cmodels.Server, item: Request
) -> dict[str, Any]:
    """Take over the user's port ``item.port_id`` for ``server`` (409 if it is in use)."""
    assert item.port_id is not None
    port = _usable_port(session, ctx, item.port_id)
    changes = {
        "device_id": server.id,
        "device_owner": f"compute:{server.availability_zone or 'nova'}",
        "binding:host_id": server.host or "",
    }
    try:
        port_rows.update(session, ctx, port, changes)
    except rest.ApiError as exc:
        raise _nova(exc) from None
    return _record(port, True, item)


def allocate(
    session: Session,
    ctx: context.RequestContext,
    server: cmodels.Server,
    nics: Sequence[Request],
    group_ids: list[str] | None,
) -> list[dict[str, Any]]:
    """Ports for every NIC of a placed server, in order; returns the records."""
    records = []
    for item in nics:
        if item.port_id:
            records.append(bind_existing_port(session, ctx, server, item))
        else:
            records.append(create_port(session, ctx, server, item, group_ids))
    return records


def rebind(session: Session, server: cmodels.Server) -> None:
    """Point the server's ports at its (new) host, after a move."""
    ctx = system_context()
    for port in session.scalars(select(models.Port).where(models.Port.device_id == server.id)):
        if port.binding_host_id != (server.host or ""):
            port_rows.update(session, ctx, port, {"binding:host_id": server.host or ""})


def _preexisting(server: cmodels.Server) -> set[str]:
    records = server.requested_networks if isinstance(server.requested_networks, list) else []
    return {str(r["port"]) for r in records if isinstance(r, dict) and r.get("port")}


def release_port(session: Session, server: cmodels.Server, port: models.Port) -> None:
    """Let one port go: unbind it if the user brought it, else delete it."""
    ctx = system_context()
    if port.id in _preexisting(server):
        port_rows.update(
            session, ctx, port, {"device_id": "", "device_owner": "", "binding:host_id": ""}
        )
        return
    floatingips.port_deleting(session, ctx, port.id)
    port_rows.delete(session, port)


def release_ports(session: Session, server: cmodels.Server) -> None:
    """Free every port of a server going away (created ones deleted, the user's unbound)."""
    for port in list(
        session.scalars(select(models.Port).where(models.Port.device_id == server.id))
    ):
        release_port(session, server, port)


# --- what a server body shows ---------------------------------------------------------------------


@dataclasses.dataclass
class NetView:
    """Addresses (Nova's ``addresses``: label -> entries) and group names per server."""

    addresses: dict[str, dict[str, list[dict[str, Any]]]]
    groups: dict[str, list[str]]


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _ip_version(address: str) -> int:
    return 6 if ":" in address else 4


def load(session: Session, servers: Sequence[cmodels.Server]) -> NetView:
    """Addresses and security groups of many servers: three joined queries per chunk
    of servers (ports with their addresses and networks, floating IPs, group names)."""
    P = models.Port
    A = models.IPAllocation
    N = models.Network
    F = models.FloatingIP
    PSG = models.PortSecurityGroup
    G = models.SecurityGroup
    ports: dict[str, Any] = {}
    fixed: dict[str, list[str]] = defaultdict(list)
    floating: dict[str, list[str]] = defaultdict(list)
    group_names: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks([s.id for s in servers]):
        for row in session.execute(
            select(
                P.id,
                P.device_id,
                P.mac_address,
                P.created_at,
                N.id.label("net"),
                N.name,
                A.ip_address,
            )
            .join(N, N.id == P.network_id)
            .outerjoin(A, A.port_id == P.id)
            .where(P.device_id.in_(chunk))
        ):
            ports.setdefault(row.id, row)
            if row.ip_address is not None:
                fixed[row.id].append(row.ip_address)
        for port_id, address in session.execute(
            select(F.fixed_port_id, F.floating_ip_address)
            .join(P, P.id == F.fixed_port_id)
            .where(P.device_id.in_(chunk))
        ):
            floating[port_id or ""].append(address)
        for port_id, name in session.execute(
            select(PSG.port_id, G.name)
            .join(G, G.id == PSG.security_group_id)
            .join(P, P.id == PSG.port_id)
            .where(P.device_id.in_(chunk))
        ):
            group_names[port_id].append(name)
    addresses: dict[str, dict[str, list[dict[str, Any]]]] = {}
    groups: dict[str, list[str]] = {}
    if not ports:
        return NetView(addresses, groups)
    order: dict[str, int] = {}
    for server in servers:
        records = server.requested_networks
        if isinstance(records, list):
            for i, record in enumerate(records):
                if isinstance(record, dict) and record.get("port_id"):
                    order[record["port_id"]] = i
    for row in sorted(ports.values(), key=lambda r: (order.get(r.id, 1 << 30), r.created_at, r.id)):
        label = row.name or row.net
        entries = addresses.setdefault(row.device_id, {}).setdefault(label, [])
        for address in sorted(fixed.get(row.id, ()), key=lambda a: (_ip_version(a), a)):
            entries.append(_entry(address, "fixed", row.mac_address))
        for address in floating.get(row.id, ()):
            entries.append(_entry(address, "floating", row.mac_address))
        seen = groups.setdefault(row.device_id, [])
        for name in group_names.get(row.id, ()):
            if name not in seen:
                seen.append(name)
    return NetView(addresses, groups)


def _entry(address: str, kind: str, mac: str) -> dict[str, Any]:
    return {
        "version": _ip_version(address),
        "addr": address,
        "OS-EXT-IPS:type": kind,
        "OS-EXT-IPS-MAC:mac_addr": mac,
    }


def servers_with_ip(session: Session, pattern_check: Any, version: int) -> set[str]:
    """Ids of servers with a fixed address of ``version`` that ``pattern_check`` accepts."""
    A = models.IPAllocation
    P = models.Port
    found: set[str] = set()
    for device_id, address in session.execute(
        select(P.device_id, A.ip_address)
        .join(A, A.port_id == P.id)
        .where(P.device_owner.like("compute:%"))
    ):
        if _ip_version(address) == version and pattern_check(address):
            found.add(device_id)
    return found
