"""Subnet allocation: the rules of subnet pools (prefixes, prefix length bounds, one
default per IP version, address scope membership) and carving subnets out of them.

Carving (``allocate_cidr``) locks the pool's row, so concurrent subnet creates on
PostgreSQL take prefixes one after another and never overlap; on SQLite the writes
of the process are serialized already.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.db import session as db_session
from stackbox.network import address_scopes, errors, models
from stackbox.network import ip_ranges as R

# (default min_prefixlen, longest prefix) per IP version; quotas count /32 or /64 units.
BOUNDS = {4: (8, 32), 6: (64, 128)}
QUOTA_UNIT = {4: 32, 6: 64}


def prefixes_of(session: Session, pool_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {i: [] for i in pool_ids}
    X = models.SubnetPoolPrefix
    for start in range(0, len(pool_ids), 500):
        for row in session.scalars(
            select(X).where(X.subnetpool_id.in_(pool_ids[start : start + 500]))
        ):
            found[row.subnetpool_id].append(row.cidr)
    return {i: R.collapse(cidrs) for i, cidrs in found.items()}


def version_of(prefixes: list[str]) -> int:
    if not prefixes:
        raise errors.bad_request("Empty subnet pool prefix list.", kind="EmptySubnetPoolPrefixList")
    versions = {R.version_of(p) for p in prefixes}
    if len(versions) > 1:
        raise errors.bad_request(
            "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.", kind="PrefixVersionMismatch"
        )
    return versions.pop()


def _bounds_error(kind: str, value: int, base_kind: str, base: int) -> rest.ApiError:
    return errors.bad_request(
        f"Illegal prefix bounds: {kind}={value}, {base_kind}={base}.",
        kind="IllegalSubnetPoolPrefixBounds",
    )


def bounds(version: int, spec: dict[str, Any]) -> tuple[int, int, int]:
    """(min, max, default) prefix lengths: given or defaulted, then checked (Neutron's order)."""
    low_default, longest = BOUNDS[version]
    low = spec.get("min_prefixlen")
    low = low_default if low is None else low
    high = spec.get("max_prefixlen")
    high = longest if high is None else high
    default = spec.get("default_prefixlen")
    default = low if default is None else default
    if low > high:
        raise _bounds_error("min_prefixlen", low, "max_prefixlen", high)
    if high > longest:
        raise _bounds_error("max_prefixlen", high, "ip_version_max", longest)
    if default < low:
        raise _bounds_error("default_prefixlen", default, "min_prefixlen", low)
    if default > high:
        raise _bounds_error("default_prefixlen", default, "max_prefixlen", high)
    return low, high, default


def check_one_default(session: Session, version: int, pool_id: str | None) -> None:
    db_session.advisory_lock(session, f"default-subnetpool-{version}")
    P = models.SubnetPool
    other = session.scalar(
        select(P.id).where(P.is_default.is_(True), P.ip_version == version, P.id != (pool_id or ""))
    )
    if other is not None:
        raise errors.invalid_input(
            "A default subnetpool for this IP family has already been set. Only one default "
            "may exist per IP family"
        )


def check_scope(
    session: Session,
    ctx: context.RequestContext,
    scope_id: str | None,
    pool_id: str,
    prefixes: list[str],
    version: int,
) -> None:
    """Whether the pool may join the address scope (Neutron's _validate_address_scope_id)."""
    if scope_id is None:
        return
    scope = address_scopes.get_visible(session, ctx, scope_id)
    if scope.ip_version != version:
        raise errors.bad_request(
            f"Illegal subnetpool association: subnetpool {pool_id} cannot associate with "
            f"address scope {scope_id} because subnetpool ip_version is not {scope.ip_version}.",
            kind="IllegalSubnetPoolIpVersionAssociationToAddressScope",
        )
    S = models.Subnet
    rescoped = list(session.execute(select(S.id, S.network_id).where(S.subnetpool_id == pool_id)))
    if rescoped:
        others = session.scalar(
            select(S.id).where(
                S.network_id.in_({n for _, n in rescoped}),
                S.ip_version == version,
                S.id.not_in([i for i, _ in rescoped]),
            )
        )
        if others is not None:
            raise errors.bad_request(
                "Subnets of the same address family hosted on the same network must all "
                "participate in the same address scope.",
                kind="NetworkAddressScopeAffinityError",
            )
    db_session.advisory_lock(session, f"address-scope-{scope_id}")
    P = models.SubnetPool
    members = list(
        session.scalars(select(P.id).where(P.address_scope_id == scope_id, P.id != pool_id))
    )
    taken = [c for cidrs in prefixes_of(session, members).values() for c in cidrs]
    if R.overlaps(prefixes, taken):
        raise errors.conflict(
            "AddressScopePrefixConflict",
            "Failed to associate address scope: subnetpools within an address scope must have "
            "unique prefixes.",
        )


def set_prefixes(session: Session, pool: models.SubnetPool, prefixes: list[str]) -> None:
    X = models.SubnetPoolPrefix
    session.query(X).filter(X.subnetpool_id == pool.id).delete()
    session.flush()
    for cidr in prefixes:
        session.add(X(subnetpool_id=pool.id, cidr=cidr))


# --- carving subnets ------------------------------------------------------------------------


def allocate_cidr(
    session: Session,
    pool: models.SubnetPool,
    project_id: str,
    cidr: str | None,
    prefixlen: int | None,
) -> str:
    """A free prefix of the pool: ``cidr`` itself if free, else the first free one of
    ``prefixlen`` (default: the pool's) in the smallest block that holds it."""
    session.execute(
        select(models.SubnetPool.id).where(models.SubnetPool.id == pool.id).with_for_update()
    )
    length = (
        R.network_of(cidr).prefixlen
        if cidr
        else (prefixlen if prefixlen is not None else pool.default_prefixlen)
    )
    if length > pool.max_prefixlen:
        raise errors.bad_request(
            f"Unable to allocate subnet with prefix length {length}, maximum allowed prefix is "
            f"{pool.max_prefixlen}.",
            kind="MaxPrefixSubnetAllocationError",
        )
    if length < pool.min_prefixlen:
        raise errors.bad_request(
            f"Unable to allocate subnet with prefix length {length}, minimum allowed prefix is "
            f"{pool.min_prefixlen}.",
            kind="MinPrefixSubnetAllocationError",
        )
    S = models.Subnet
    allocated = list(
        session.execute(select(S.cidr, S.project_id).where(S.subnetpool_id == pool.id))
    )
    if pool.default_quota:
        unit = QUOTA_UNIT[pool.ip_version]
        used = sum(
            2.0 ** (unit - R.network_of(c).prefixlen)
            for c, owner in allocated
            if owner == project_id
        )
        if used + 2.0 ** (unit - length) > pool.default_quota:
            raise errors.conflict(
                "SubnetPoolQuotaExceeded", "Per-project subnet pool prefix quota exceeded."
            )
    free = R.subtract(prefixes_of(session, [pool.id])[pool.id], [c for c, _ in allocated])
    if cidr:
        wanted = R.network_of(cidr)
        if any(R.contains(block, wanted) for block in free):
            return str(wanted)
        raise _allocation_error(
            "Cannot allocate requested subnet from the available set of prefixes"
        )
    for block in sorted(free, key=lambda b: (-b.prefixlen, int(b.network_address))):
        if block.prefixlen <= length:
            return str(next(block.subnets(new_prefix=length)))
    raise _allocation_error(f"Insufficient prefix space to allocate subnet size /{length}")


def _allocation_error(reason: str) -> rest.ApiError:
    # Neutron's SubnetAllocationError is unmapped there (a 500); it is the pool's state
    # that refuses the request, so it is a 409 here.
    return errors.conflict("SubnetAllocationError", f"Failed to allocate subnet: {reason}.")


def default_pool(session: Session, version: int) -> models.SubnetPool | None:
    P = models.SubnetPool
    return session.scalars(select(P).where(P.is_default.is_(True), P.ip_version == version)).first()
