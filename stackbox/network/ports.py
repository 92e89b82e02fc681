"""Ports: the API (create, bulk create, list, show, update, delete) and the
functions other networking modules use to own ports.

Contract for other modules (routers, floating IPs, DHCP, agents, compute):

    create_port_row(session, ctx, network, spec, *, project_id=None, check_quota=True)
        -> models.Port
        Creates a port on ``network`` with no API policy check (the caller did its own).
        ``spec`` holds port attributes as the API takes them, any subset: name,
        description, admin_state_up, mac_address (None: generated), fixed_ips (absent
        or None: IPAM's automatic choice; []: no address; else [{subnet_id?,
        ip_address?}]), device_id, device_owner, security_groups (absent or None: the
        project's default group, unless device_owner starts with "network:", which
        gets none), port_security_enabled (None: the network's), allowed_address_pairs,
        extra_dhcp_opts, binding:host_id, binding:vnic_type, binding:profile, dns_name,
        propagate_uplink_status, and also id and status ("DOWN" unless given, e.g.
        "N/A" for floating IP ports). ``project_id``: the owner (default
        ctx.project_id; "" for ports no project owns, like router gateways). Raises
        Neutron's errors (MacAddressInUse, IPAM's, SecurityGroupNotFound, OverQuota);
        flushes; queues the agents' nudge.
    update_port_row(session, ctx, port, changes) -> models.Port
        PUT's semantics (fixed_ips add/remove, MAC, bindings, port security rules,
        address pairs, extra DHCP options) without policy checks; ``changes`` holds
        only the attributes to change.
    delete_port_row(session, port) -> None
        Disassociates floating IPs, releases addresses, drops tags, nudges, deletes.
        No policy check and no "owned by a router" check.
    set_status(session, port_id, status) -> models.Port | None
        An agent's report (ACTIVE / DOWN / BUILD / ERROR); None if the port is gone.
    render(session, port) -> dict;  render_many(session, ports) -> list[dict]
        The API bodies (all attributes, before per-caller policy filtering).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.network import attributes as A
from stackbox.network import (
    common,
    errors,
    extensions,
    models,
    networks,
    port_bindings,
    port_rows,
    port_schema,
    port_views,
    rbac,
)

RESOURCE = port_schema.RESOURCE
ATTRS = port_schema.ATTRS

create_port_row = port_rows.create
update_port_row = port_rows.update
delete_port_row = port_rows.delete
set_status = port_bindings.set_status
render = port_views.render
render_many = port_views.render_many

extensions.EXTENSIONS.update(
    {
        "binding": (
            "Port Binding",
            "Expose port bindings of a virtual port to external application",
        ),
        "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
        "extra_dhcp_opt": (
            "Neutron Extra DHCP options",
            "Extra options configuration for DHCP. For example PXE boot options to DHCP "
            "clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)",
        ),
        "dns-integration": ("DNS Integration", "Provides integration with DNS."),
        "port-mac-address-regenerate": (
            "Neutron Port MAC address regenerate",
            "Network port MAC address regenerate",
        ),
        "uplink-status-propagation": (
            "Uplink status propagation extension",
            "Provides ability to propagate port uplink status.",
        ),
        "ip-substring-filtering": (
            "IP address substring filtering",
            "Provides IP address substring filtering when listing ports",
        ),
        "port-security-groups-filtering": (
            "Port filtering on security groups",
            "Provides security groups filtering when listing ports",
        ),
    }
)

# Attributes whose reading a get_port:<attr> rule guards (the binding details).
GUARDED = [name for name, attr in ATTRS.items() if attr.policy]


# --- visibility and policy ------------------------------------------------------------------


def sees_all(ctx: context.RequestContext) -> bool:
    return common.is_admin(ctx) or "service" in ctx.roles or "advsvc" in ctx.roles


def visible_clause(ctx: context.RequestContext) -> ColumnElement[bool]:
    """SQL: ports the caller's project owns or that sit on its networks."""
    project = ctx.project_id or ""
    return or_(
        models.Port.project_id == project,
        models.Port.network_id.in_(
            select(models.Network.id).where(models.Network.project_id == project)
        ),
    )


def _reader(request: rest.ApiRequest) -> port_views.Reader:
    ctx = request.context

    def allowed(action: str, facts: dict[str, Any]) -> bool:
        if ":" in action and not policy.has_rule(common.SERVICE, action):
            return True  # Neutron shows attributes no rule guards
        full = {"tenant_id": facts.get("project_id"), **facts}
        return policy.allowed(ctx, action, full, service=common.SERVICE)

    return port_views.Reader(allowed, GUARDED)


def _network_owners(session: Session, network_ids: set[str]) -> dict[str, str]:
    ids = list(network_ids)
    owners: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        owners.update(
            session.execute(
                select(models.Network.id, models.Network.project_id).where(
                    models.Network.id.in_(ids[start : start + 500])
                )
            ).all()
        )
    return owners


def get_visible(session: Session, ctx: context.RequestContext, port_id: str) -> models.Port:
    """The port if ``ctx`` may see it; 404 (PortNotFound) otherwise."""
    query = select(models.Port).where(models.Port.id == port_id)
    if not sees_all(ctx):
        query = query.where(visible_clause(ctx))
    port = session.scalars(query).first()
    if port is None:
        raise errors.resource_not_found(RESOURCE, port_id)
    return port


def _granted(session: Session, ctx: context.RequestContext, network: models.Network) -> bool:
    R = models.RbacPolicy
    return (
        session.scalar(
            select(R.id).where(
                R.object_type == "network",
                R.object_id == network.id,
                R.action == rbac.SHARED,
                R.target_project.in_((ctx.project_id or "", rbac.WILDCARD)),
            )
        )
        is not None
    )


def _enforce(
    request: rest.ApiRequest,
    action: str,
    facts: dict[str, Any],
    item: dict[str, Any],
    create: bool,
) -> None:
    """``action``, then ``action:attr`` for each guarded attribute the request sets, and
    ``action:attr:key`` for the keys of list-of-dict values (fixed_ips, address pairs)."""
    given = [
        name
        for name, value in item.items()
        if name in ATTRS and ATTRS[name].policy and port_schema.explicitly_set(name, value, create)
    ]
    common.enforce(request, action, facts, ATTRS, given)
    for name in given:
        value = item[name]
        if isinstance(value, list):
            keys = sorted({k for entry in value if isinstance(entry, dict) for k in entry})
            for key in keys:
                common.enforce(request, f"{action}:{name}:{key}", facts)


# --- handlers -------------------------------------------------------------------------------


def _create_one(
    request: rest.ApiRequest, session: Session, item: dict[str, Any]
) -> tuple[models.Port, models.Network, port_views.Children]:
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    ctx = request.context
    network = networks.get_visible(session, ctx, spec["network_id"])
    project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
    owner = spec.get("device_owner") or ""
    facts = port_views.target(
        project_id, network.project_id, owner, shared=str(_granted(session, ctx, network))
    )
    _enforce(request, "create_port", facts, item, create=True)
    children = port_views.Children()
    port = port_rows.create(session, ctx, network, spec, project_id=project_id, children=children)
    return port, network, children


def _shown(
    request: rest.ApiRequest,
    session: Session,
    port: models.Port,
    body: dict[str, Any],
    network: models.Network | None = None,
) -> dict[str, Any]:
    if network is None:
        network = session.get(models.Network, port.network_id)
    facts = port_views.target_of(port, network.project_id if network else None)
    return _reader(request).shown(facts, body)


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    body = request.body
    if isinstance(body, dict) and "ports" in body and RESOURCE not in body:
        items = body["ports"]
        if not isinstance(items, list) or not items:
            raise errors.bad_request("Resources required")
        made = []
        for item in items:
            if not isinstance(item, dict):
                raise errors.bad_request(f"Bad {RESOURCE}s request: Resource body required.")
            made.append(_create_one(request, session, item))
        return rest.ApiResponse(
            201,
            {
                "ports": [
                    _shown(request, session, p, port_views.render_fresh(p, c), n)
                    for p, n, c in made
                ]
            },
        )
    port, network, children = _create_one(request, session, A.body_of(request, RESOURCE))
    body = port_views.render_fresh(port, children)
    return rest.ApiResponse(201, {RESOURCE: _shown(request, session, port, body, network)})


def _kvp(values: list[str]) -> dict[str, list[str]]:
    """``fixed_ips=ip_address=10.0.0.3`` filters as Neutron's convert_kvp_list_to_dict."""
    result: dict[str, list[str]] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise errors.invalid_input(f"'{value}' is not of the form <key>=[value]")
        result.setdefault(key, []).append(wanted)
    return result


def _match_fixed_ips(item: dict[str, Any], values: list[str]) -> bool:
    wanted = _kvp(values)
    addresses = item.get("fixed_ips") or []
    ips = {a["ip_address"] for a in addresses}
    subnets = {a["subnet_id"] for a in addresses}
    if "ip_address" in wanted and not ips & set(wanted["ip_address"]):
        return False
    if "subnet_id" in wanted and not subnets & set(wanted["subnet_id"]):
        return False
    parts = wanted.get("ip_address_substr", [])
    return not parts or any(part in ip for part in parts for ip in ips)


def _match_groups(item: dict[str, Any], values: list[str]) -> bool:
    wanted = {v for value in values for v in value.split(",") if v}
    return bool(wanted & set(item.get("security_groups") or []))


def _match_mac(item: dict[str, Any], values: list[str]) -> bool:
    return str(item.get("mac_address", "")).lower() in {v.lower() for v in values}


SPECIAL = {
    "fixed_ips": _match_fixed_ips,
    "security_groups": _match_groups,
    "mac_address": _match_mac,
}
# Filters also applied in SQL, so that a narrow listing renders only what it returns.
COLUMN_FILTERS = {
    "id": models.Port.id,
    "network_id": models.Port.network_id,
    "device_id": models.Port.device_id,
    "device_owner": models.Port.device_owner,
    "name": models.Port.name,
    "status": models.Port.status,
    "project_id": models.Port.project_id,
    "tenant_id": models.Port.project_id,
}


def list_ports(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    # Plain rows rather than ORM objects: a listing may hold thousands.
    query = select(*models.Port.__table__.columns)
    if not sees_all(ctx):
        query = query.where(visible_clause(ctx))
    for key, column in COLUMN_FILTERS.items():
        values = request.query.get(key)
        if values:
            query = query.where(column.in_(values))
    if request.query.get("mac_address"):
        query = query.where(
            func.lower(models.Port.mac_address).in_(
                [v.lower() for v in request.query["mac_address"]]
            )
        )
    ports = session.execute(query).all()
    owners = _network_owners(session, {p.network_id for p in ports})
    reader = _reader(request)
    bodies = []
    for port, body in zip(ports, render_many(session, ports), strict=True):
        shown = reader.visible(port_views.target_of(port, owners.get(port.network_id)), body)
        if shown is not None:
            bodies.append(shown)
    return common.collection(request, "ports", bodies, ATTRS, special=SPECIAL)


def _check_readable(request: rest.ApiRequest, session: Session, port: models.Port) -> None:
    network = session.get(models.Network, port.network_id)
    facts = port_views.target_of(port, network.project_id if network else None)
    if not _reader(request).readable(facts):
        raise errors.resource_not_found(RESOURCE, port.id)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    port = get_visible(session, request.context, request.path_params["port_id"])
    _check_readable(request, session, port)
    body = _shown(request, session, port, render(session, port))
    return {RESOURCE: common.fields_wanted(request, body)}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    item = A.body_of(request, RESOURCE)
    changes = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    ctx = request.context
    port = get_visible(session, ctx, request.path_params["port_id"])
    _check_readable(request, session, port)
    network = session.get(models.Network, port.network_id)
    owner = changes.get("device_owner", port.device_owner) or ""
    facts = port_views.target(
        port.project_id,
        network.project_id if network else None,
        owner,
        shared=str(network is not None and _granted(session, ctx, network)),
    )
    _enforce(request, "update_port", facts, item, create=False)
    common.check_revision(request, port)
    port_rows.update(session, ctx, port, changes)
    return {RESOURCE: _shown(request, session, port, render(session, port))}


def _check_l3_owner(session: Session, port: models.Port) -> None:
    """Router and floating IP ports go with their router or floating IP."""
    if port.device_owner not in port_rows.L3_OWNERS:
        return
    if port.device_owner == "network:floatingip":
        exists = session.get(models.FloatingIP, port.device_id) is not None
    else:
        exists = session.get(models.Router, port.device_id) is not None
    if exists:
        raise errors.in_use(
            "ServicePortInUse",
            f"Port {port.id} cannot be deleted directly via the port API: has device owner "
            f"{port.device_owner}.",
        )


def delete(request: rest.ApiRequest, session: Session) -> None:
    ctx = request.context
    port = get_visible(session, ctx, request.path_params["port_id"])
    _check_readable(request, session, port)
    network = session.get(models.Network, port.network_id)
    facts = port_views.target_of(port, network.project_id if network else None)
    common.enforce(request, "delete_port", facts)
    common.check_revision(request, port)
    _check_l3_owner(session, port)
    # Imported here: floating IPs build on ports.
    from stackbox.network import floatingips

    floatingips.port_deleting(session, ctx, port.id)
    port_rows.delete(session, port)


ROUTES = [
    rest.Route("POST", "/v2.0/ports", create),
    rest.Route("GET", "/v2.0/ports", list_ports),
    rest.Route("GET", "/v2.0/ports/{port_id}", show),
    rest.Route("PUT", "/v2.0/ports/{port_id}", update),
    rest.Route("DELETE", "/v2.0/ports/{port_id}", delete),
]
