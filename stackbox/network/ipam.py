"""IP address management: which address a port gets on which subnet.

Contract (used by ports, routers, floating IPs):

    allocate(session, network, port, requested) -> list[models.IPAllocation]
        requested: None (Neutron's automatic choice: one address from the IPv4
        subnets of the network (the first with room), one from its stateful IPv6
        subnets, plus an EUI-64 address from each SLAAC/stateless IPv6 subnet), or
        the port's "fixed_ips" list of {"subnet_id"?, "ip_address"?} (EUI-64
        addresses of SLAAC/stateless subnets are added as Neutron does; subnets the
        port already has an address on are left alone). ``port`` must be flushed.
        Raises Neutron's errors (IpAddressGenerationFailure 409 when the subnets are
        full, IpAddressAlreadyAllocated 409 for a taken address, InvalidIpForSubnet /
        InvalidIpForNetwork 400, InvalidInput 400). Never hands one address out
        twice, on SQLite or PostgreSQL: the primary key of net_ip_allocation decides,
        and the loser of a race takes the next free address.
    release(session, port_id, subnet_ids=None) -> None
    release_addresses(session, port_id, [(subnet_id, ip_address), ...]) -> None

Addresses come from a subnet's allocation pools, lowest free first; the gateway
is never handed out unasked. The address arithmetic lives in ``ip_ranges``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox.db import session as db_session
from stackbox.network import errors, models
from stackbox.network import ip_ranges as R

DHCP_OWNER = "network:dhcp"


def is_auto_address(subnet: models.Subnet) -> bool:
    return R.is_auto_address(subnet.ipv6_ra_mode, subnet.ipv6_address_mode)


# --- allocation -----------------------------------------------------------------------------


def pools_of(session: Session, subnet_ids: Iterable[str]) -> dict[str, list[R.Range]]:
    wanted = list(subnet_ids)
    found: dict[str, list[R.Range]] = {i: [] for i in wanted}
    P = models.AllocationPool
    for start in range(0, len(wanted), 500):
        for pool in session.scalars(select(P).where(P.subnet_id.in_(wanted[start : start + 500]))):
            found[pool.subnet_id].append(R.Range.of(pool.first_ip, pool.last_ip))
    for ranges in found.values():
        ranges.sort()
    return found


def _service_types(session: Session, subnet_ids: list[str]) -> dict[str, set[str]]:
    T = models.SubnetServiceType
    found: dict[str, set[str]] = {i: set() for i in subnet_ids}
    for row in session.scalars(select(T).where(T.subnet_id.in_(subnet_ids))):
        found[row.subnet_id].add(row.service_type)
    return found


def candidate_subnets(session: Session, network_id: str, device_owner: str) -> list[models.Subnet]:
    """The network's subnets a port of ``device_owner`` may take addresses from.

    Subnets with service types serve only those device owners (and DHCP ports where
    DHCP is on); subnets without serve everyone; the typed ones come first.
    """
    subnets = list(
        session.scalars(
            select(models.Subnet)
            .where(models.Subnet.network_id == network_id)
            .order_by(models.Subnet.created_at, models.Subnet.id)
        )
    )
    types = _service_types(session, [s.id for s in subnets])
    eligible = [
        s
        for s in subnets
        if not types[s.id]
        or device_owner in types[s.id]
        or (device_owner == DHCP_OWNER and s.enable_dhcp)
    ]
    if subnets and not eligible:
        raise errors.conflict(
            "IpAddressGenerationFailureNoMatchingSubnet",
            f"No valid service subnet for the given device owner, network {network_id}, "
            f"service type {device_owner}.",
        )
    return sorted(eligible, key=lambda s: not types[s.id])


@dataclasses.dataclass
class _Want:
    subnets: list[models.Subnet]
    ip: str | None = None


def _resolve_fixed(
    session: Session,
    network_id: str,
    port: models.Port,
    fixed: dict[str, Any],
    subnets: list[models.Subnet],
) -> _Want | None:
    """One requested fixed IP as a want (None: left to the auto-address pass)."""
    if not subnets:
        raise errors.invalid_input("IP allocation requires subnets for network")
    owner = port.device_owner or ""
    ip = fixed.get("ip_address")
    if ip is not None:
        ip = R.canonical(ip)
    subnet_id = fixed.get("subnet_id")
    if subnet_id:
        subnet = next((s for s in subnets if s.id == subnet_id), None)
        if subnet is None:
            if session.get(models.Subnet, subnet_id) is None:
                raise errors.resource_not_found("subnet", subnet_id)
            raise errors.invalid_input(
                f"Failed to create port on network {network_id}, because fixed_ips included "
                f"invalid subnet {subnet_id}"
            )
        if ip is not None and not R.valid_on_subnet(subnet.cidr, ip, owner):
            raise errors.bad_request(
                f"IP address {ip} is not a valid IP for the specified subnet.",
                kind="InvalidIpForSubnet",
            )
    elif ip is not None:
        subnet = next((s for s in subnets if R.valid_on_subnet(s.cidr, ip, owner)), None)
        if subnet is None:
            raise errors.bad_request(
                f"IP address {ip} is not a valid IP for any of the subnets on the specified "
                "network.",
                kind="InvalidIpForNetwork",
            )
    else:
        raise errors.invalid_input("IP allocation requires subnet_id or ip_address")
    auto = is_auto_address(subnet)
    if ip is not None:
        if (
            auto
            and owner not in R.ROUTER_INTERFACE_OWNERS
            and ip != R.eui64(subnet.cidr, port.mac_address)
        ):
            raise _auto_address_refused(ip, subnet.id)
        return _Want([subnet], ip)
    if auto and owner not in R.ROUTER_INTERFACE_OWNERS_SNAT:
        return None
    return _Want([subnet])


def _auto_address_refused(ip: str, subnet_id: str) -> Exception:
    return errors.bad_request(
        f"IPv6 address {ip} cannot be directly assigned to a port on subnet {subnet_id} as "
        "the subnet is configured for automatic addresses",
        kind="AllocationOnAutoAddressSubnet",
    )


def allocate(
    session: Session,
    network: models.Network,
    port: models.Port,
    requested: list[dict[str, Any]] | None,
    *,
    new_port: bool = False,
) -> list[models.IPAllocation]:
    """Give ``port`` its addresses on ``network`` (see the module's contract);
    ``new_port``: the port was inserted in this transaction and holds none yet."""
    owner = port.device_owner or ""
    subnets = candidate_subnets(session, network.id, owner)
    wants: list[_Want] = []
    if requested is None:
        v4 = [s for s in subnets if s.ip_version == 4]
        v6 = [s for s in subnets if s.ip_version == 6 and not is_auto_address(s)]
        wants = [_Want(group) for group in (v4, v6) if group]
    else:
        for fixed in requested:
            want = _resolve_fixed(session, network.id, port, fixed, subnets)
            if want is not None:
                wants.append(want)
    held: set[str] = set()
    if not new_port:
        held.update(
            session.scalars(
                select(models.IPAllocation.subnet_id).where(models.IPAllocation.port_id == port.id)
            )
        )
    handled = held | {w.subnets[0].id for w in wants if len(w.subnets) == 1}
    if owner not in R.ROUTER_INTERFACE_OWNERS_SNAT:
        for subnet in subnets:
            if subnet.ip_version == 6 and is_auto_address(subnet) and subnet.id not in handled:
                wants.append(_Want([subnet], R.eui64(subnet.cidr, port.mac_address)))
    # Specific addresses first, so that an automatic choice cannot take one asked for.
    wants.sort(key=lambda w: w.ip is None)
    made = []
    for want in wants:
        if want.ip is not None:
            made.append(_take(session, want.subnets[0], want.ip, port))
        else:
            made.append(_take_any(session, network.id, want.subnets, port))
    return made


def _take(
    session: Session, subnet: models.Subnet, ip: str, port: models.Port
) -> models.IPAllocation:
    row = _insert(session, subnet, ip, port)
    if row is None:
        raise errors.conflict(
            "IpAddressAlreadyAllocated",
            f"IP address {ip} already allocated in subnet {subnet.id}",
        )
    return row


def _take_any(
    session: Session, network_id: str, subnets: list[models.Subnet], port: models.Port
) -> models.IPAllocation:
    pools = pools_of(session, [s.id for s in subnets])
    for subnet in subnets:
        while True:
            candidate = _first_free(session, subnet, pools[subnet.id])
            if candidate is None:
                break
            row = _insert(session, subnet, candidate, port)
            if row is not None:
                return row
            # Another transaction took it first: look again, the next one is ours to try.
    raise errors.conflict(
        "IpAddressGenerationFailure", f"No more IP addresses available on network {network_id}."
    )


def _first_free(session: Session, subnet: models.Subnet, pools: list[R.Range]) -> str | None:
    A = models.IPAllocation
    taken = {
        R.number(ip) for ip in session.scalars(select(A.ip_address).where(A.subnet_id == subnet.id))
    }
    if subnet.gateway_ip:
        taken.add(R.number(subnet.gateway_ip))
    ordered = sorted(taken)
    for pool in pools:
        candidate, last = pool.first, pool.last
        for used in ordered:
            if used < candidate:
                continue
            if used > candidate:
                break
            candidate += 1
        if candidate <= last:
            return R.text(pool.version, candidate)
    return None


def _insert(
    session: Session, subnet: models.Subnet, ip: str, port: models.Port
) -> models.IPAllocation | None:
    """Insert the allocation in a savepoint; None if the address is already someone's.

    A plain INSERT, not the ORM's: a row of the same key that this session happens to
    hold must show up as the database's duplicate-key error, like any other.
    """
    A = models.IPAllocation
    session.flush()  # so that only this insert can fail in the savepoint
    values = {
        "subnet_id": subnet.id,
        "ip_address": ip,
        "port_id": port.id,
        "network_id": port.network_id,
    }
    # RETURNING hands back the row as an ORM object without reading it again.
    statement = insert(A).returning(A).execution_options(populate_existing=True)
    try:
        if db_session.writers_serialized(session):
            # A failed INSERT undoes only itself there; no savepoint is needed.
            row = session.scalars(statement, [values]).one()
        else:
            with session.begin_nested():
                row = session.scalars(statement, [values]).one()
    except IntegrityError as exc:
        if not _is_duplicate(exc):
            # The subnet (or port) went away under us.
            raise errors.resource_not_found("subnet", subnet.id) from None
        return None
    return row


def _is_duplicate(exc: IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    message = str(exc.orig)
    return "UNIQUE constraint failed" in message or "PRIMARY KEY" in message.upper()


def release(session: Session, port_id: str, subnet_ids: Iterable[str] | None = None) -> None:
    """Free the port's addresses (on ``subnet_ids`` only, when given)."""
    A = models.IPAllocation
    query = delete(A).where(A.port_id == port_id)
    if subnet_ids is not None:
        query = query.where(A.subnet_id.in_(list(subnet_ids)))
    session.execute(query)


def release_addresses(session: Session, port_id: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Free particular (subnet_id, ip_address) pairs of the port."""
    A = models.IPAllocation
    for subnet_id, ip in pairs:
        session.execute(
            delete(A).where(
                A.port_id == port_id, A.subnet_id == subnet_id, A.ip_address == R.canonical(ip)
            )
        )


def add_auto_addresses(session: Session, subnet: models.Subnet) -> list[models.Port]:
    """Give the network's ports an EUI-64 address on a new SLAAC/stateless subnet.

    Router interfaces are left out (they are given addresses explicitly), as are ports
    the subnet's service types exclude. Returns the ports that got one.
    """
    types = _service_types(session, [subnet.id])[subnet.id]
    ports = list(
        session.scalars(
            select(models.Port).where(
                models.Port.network_id == subnet.network_id,
                models.Port.device_owner.not_in(R.ROUTER_INTERFACE_OWNERS_SNAT),
            )
        )
    )
    changed = []
    for port in ports:
        if types and port.device_owner not in types:
            continue
        if _insert(session, subnet, R.eui64(subnet.cidr, port.mac_address), port) is not None:
            changed.append(port)
    return changed


def used_counts(session: Session, subnet_ids: Iterable[str]) -> dict[str, int]:
    """How many addresses each subnet has handed out."""
    wanted = list(subnet_ids)
    counts = dict.fromkeys(wanted, 0)
    A = models.IPAllocation
    for start in range(0, len(wanted), 500):
        for subnet_id, count in session.execute(
            select(A.subnet_id, func.count())
            .where(A.subnet_id.in_(wanted[start : start + 500]))
            .group_by(A.subnet_id)
        ):
            counts[subnet_id] = int(count)
    return counts
