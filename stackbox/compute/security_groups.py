"""The deprecated security group proxy (``os-security-groups``, ``os-security-group-rules``,
up to 2.35) and a server's security groups (``/servers/{id}/os-security-groups``, every
version): the Networking service's groups as Nova shows them.

Changes go through the Networking service's own handlers in-process with the caller's
context (Neutron's policy, quotas, default group and in-use rules apply), as Nova calls
Neutron with the user's token; reads use its visibility rules. Nova's body keeps only
ingress rules: ``ip_protocol``, ``from_port``/``to_port`` (1-65535 or -1 when Neutron
has no range), ``ip_range.cidr`` or ``group {name, tenant_id}`` of the remote group.
Neutron's refusals become Nova's statuses: a group in use or the default group cannot
be deleted (400), a rule Neutron refuses for a limit or a duplicate is 403.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.compute import common, errors, proxy_calls, server_validation
from stackbox.db import session as db_session
from stackbox.network import models as net
from stackbox.network import security_group_rules as net_rules
from stackbox.network import security_groups as net_groups

POLICY = "os_compute_api:os-security-groups:"
_TEXT = {"type": "string", "minLength": 0, "maxLength": 255}
GROUP = {
    "type": "object",
    "properties": {
        "security_group": {
            "type": "object",
            "properties": {"name": _TEXT, "description": _TEXT},
            "required": ["name", "description"],
        }
    },
    "required": ["security_group"],
}
RULE = {
    "type": "object",
    "properties": {
        "security_group_rule": {
            "type": "object",
            "properties": {
                "group_id": {"type": ["string", "null"], "format": "uuid"},
                "parent_group_id": {"type": "string", "format": "uuid"},
            },
            "required": ["parent_group_id"],
        }
    },
    "required": ["security_group_rule"],
}
MAX_LIMIT = 1000


# --- Neutron's rows as Nova's bodies ------------------------------------------------------------


def _remote(
    session: Session, ctx: context.RequestContext, cache: dict[str, dict[str, str] | None], gid: str
) -> dict[str, str] | None:
    """The ``group`` of a rule naming ``gid``: None when the caller may not see it (Nova
    then leaves the rule out)."""
    if gid not in cache:
        found = net_rules.group_visible(session, ctx, gid)
        cache[gid] = None if found is None else {"name": found.name, "tenant_id": found.project_id}
    return cache[gid]


def rule_view(rule: net.SecurityGroupRule, group: dict[str, str] | None) -> dict[str, Any]:
    low, high = rule.port_range_min, rule.port_range_max
    if rule.protocol and low is None and high is None:
        low, high = (1, 65535) if rule.protocol.upper() in ("TCP", "UDP") else (-1, -1)
    view: dict[str, Any] = {
        "id": rule.id,
        "parent_group_id": rule.security_group_id,
        "ip_protocol": rule.protocol,
        "from_port": low,
        "to_port": high,
        "group": {},
        "ip_range": {},
    }
    if rule.remote_group_id:
        view["group"] = group or {}
    else:
        view["ip_range"] = {"cidr": rule.remote_ip_prefix or "0.0.0.0/0"}
    return view


def render(
    session: Session, ctx: context.RequestContext, groups: list[net.SecurityGroup]
) -> list[dict[str, Any]]:
    R = net.SecurityGroupRule
    ids = [g.id for g in groups]
    cache: dict[str, dict[str, str] | None] = {
        g.id: {"name": g.name, "tenant_id": g.project_id} for g in groups
    }
    rules: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        for rule in session.scalars(
            select(R)
            .where(R.security_group_id.in_(ids[start : start + 500]), R.direction == "ingress")
            .order_by(R.created_at, R.id)
        ):
            remote = None
            if rule.remote_group_id:
                remote = _remote(session, ctx, cache, rule.remote_group_id)
                if remote is None:
                    continue
            rules[rule.security_group_id].append(rule_view(rule, remote))
    return [
        {
            "id": g.id,
            "name": g.name,
            "description": g.description or "",
            "tenant_id": g.project_id,
            "rules": rules[g.id],
        }
        for g in groups
    ]


def _sorted(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(bodies, key=lambda b: (b["tenant_id"], b["name"]))


# --- lookups and errors ---------------------------------------------------------------------


def _valid_id(value: str) -> str:
    if not server_validation.is_uuid_like(value):
        raise errors.bad_request("Security group id should be uuid")
    return value


def _group(session: Session, request: rest.ApiRequest, group_id: str) -> net.SecurityGroup:
    try:
        return net_groups.get_visible(session, request.context, group_id)
    except rest.NotFound as exc:
        raise errors.not_found(exc.message) from None


def _call(statuses: dict[int, int], handler: Any, *args: Any) -> Any:
    """A Networking handler, its errors in Nova's statuses."""
    try:
        return handler(*args)
    except rest.ApiError as exc:
        raise proxy_calls.nova_error(exc, statuses) from None
    except policy.PolicyNotAuthorized as exc:
        raise errors.forbidden(str(exc)) from None


def _gate(request: rest.ApiRequest, rule: str) -> None:
    proxy_calls.require_proxy(request)
    common.enforce(request, POLICY + rule)


# --- os-security-groups -----------------------------------------------------------------------


def index(request: rest.ApiRequest, db: db_session.Database) -> dict[str, Any]:
    _gate(request, "get")
    offset = common.query_int(request, "offset") or 0
    limit = common.query_int(request, "limit")
    ctx = request.context
    project = ctx.project_id
    # Neutron lists a project's groups only after making its default one.
    if project and db.run(lambda s: net_groups.default_id(s, project), write=False) is None:
        db.run(lambda s: net_groups.ensure_default(s, project), write=True)

    def read(session: Session) -> dict[str, Any]:
        G = net.SecurityGroup
        query = net_groups.visible_query(ctx).order_by(G.created_at, G.id)
        if not (common.is_admin(ctx) and request.has_arg("all_tenants")):
            query = query.where(G.project_id == (project or ""))
        groups = list(session.scalars(query))
        count = min(limit or MAX_LIMIT, MAX_LIMIT)  # Nova's limited(): 0 means no limit
        page = groups[offset : offset + count]
        return {"security_groups": _sorted(render(session, ctx, page))}

    return db.run(read, write=False)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _gate(request, "show")
    group = _group(session, request, _valid_id(request.path_params["group_id"]))
    return {"security_group": render(session, request.context, [group])[0]}


def create(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _gate(request, "create")
    given = server_validation.body(request, GROUP)["security_group"]
    sub = proxy_calls.sub_request(
        request,
        body={"security_group": {"name": given["name"], "description": given["description"]}},
    )
    # Neutron's 409 (a second "default", over quota) is Nova's SecurityGroupLimitExceeded.
    answer = _call({409: 403}, net_groups.create, sub, session)
    group = session.get(net.SecurityGroup, answer.body["security_group"]["id"])
    assert group is not None
    return {"security_group": render(session, request.context, [group])[0]}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _gate(request, "update")
    group = _group(session, request, _valid_id(request.path_params["group_id"]))
    given = server_validation.body(request, GROUP)["security_group"]
    sub = proxy_calls.sub_request(
        request,
        path_params={"security_group_id": group.id},
        body={"security_group": {"name": given["name"], "description": given["description"]}},
    )
    _call({409: 400}, net_groups.update, sub, session)
    session.refresh(group)
    return {"security_group": render(session, request.context, [group])[0]}


def delete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    _gate(request, "delete")
    group = _group(session, request, _valid_id(request.path_params["group_id"]))
    sub = proxy_calls.sub_request(request, path_params={"security_group_id": group.id})
    # In use, or the default group: Nova reports Neutron's 409 as Invalid (400).
    _call({409: 400}, net_groups.delete, sub, session)
    return rest.ApiResponse(202)


def no_id(request: rest.ApiRequest, session: Session) -> None:
    """``DELETE /os-security-groups/`` names no group: Nova has no such route (404)."""
    raise errors.not_found("The resource could not be found.")


# --- os-security-group-rules ------------------------------------------------------------------


def _ports(protocol: str, low: Any, high: Any) -> tuple[int, int]:
    """Nova's checks of a rule's port range (or ICMP type and code)."""
    try:
        first, last = int(low), int(high)
    except (TypeError, ValueError):
        reason = (
            "Type and Code must be integers for ICMP protocol type"
            if protocol.upper() == "ICMP"
            else "To and From ports must be integers"
        )
        raise errors.bad_request(f"Invalid input received: {reason}") from None
    upper = protocol.upper()
    if upper not in ("TCP", "UDP", "ICMP"):
        raise errors.bad_request(f"Invalid IP protocol {protocol}.")
    message = None
    if upper in ("TCP", "UDP") and first > last:
        message = "Former value cannot be greater than the later"
    elif upper in ("TCP", "UDP") and (first < 1 or last > 65535):
        message = f"Valid {upper} ports should be between 1-65535"
    elif upper == "ICMP" and not (-1 <= first <= 255 and -1 <= last <= 255):
        message = "For ICMP, the type:code must be valid"
    if message:
        raise errors.bad_request(f"Invalid port range {first}:{last}. {message}")
    return first, last


def _cidr(value: Any) -> str:
    if not value:
        return "0.0.0.0/0"
    text = urllib.parse.unquote(str(value))
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        interface = None
    if interface is None or "/" not in text:
        raise errors.bad_request(f"{text} is not a valid IP network.")
    # An address other than "any" with a /0 prefix is a mistake Nova refuses.
    if str(interface.ip) not in ("0.0.0.0", "::") and interface.network.prefixlen == 0:
        raise errors.bad_request(f"Bad prefix for network in cidr {text}")
    return text


def new_rule(given: dict[str, Any]) -> dict[str, Any] | None:
    """Nova's rule from the request (None: not enough to make one): ``group_id`` or
    ``cidr``, and ``protocol``/``from_port``/``to_port`` once all three are given."""
    protocol = given.get("ip_protocol")
    low, high = given.get("from_port"), given.get("to_port")
    values: dict[str, Any] = {}
    if given.get("group_id") is not None:
        values["group_id"] = given["group_id"]
        upper = str(protocol).upper() if protocol else ""
        if low is None and high is None:
            if upper == "ICMP":
                low, high = -1, -1
            elif upper in ("TCP", "UDP"):
                low, high = 1, 65535
    else:
        values["cidr"] = _cidr(given.get("cidr"))
    if protocol and low is not None and high is not None:
        protocol = str(protocol)
        values["from_port"], values["to_port"] = _ports(protocol, low, high)
        values["protocol"] = protocol
    elif "cidr" in values:
        return None
    return values


def _exists(session: Session, group: net.SecurityGroup, wanted: dict[str, Any]) -> bool:
    R = net.SecurityGroupRule
    for rule in session.scalars(
        select(R).where(R.security_group_id == group.id, R.direction == "ingress")
    ):
        have = rule_view(rule, None)
        mine = {
            "group_id": rule.remote_group_id,
            "cidr": rule.remote_ip_prefix or "0.0.0.0/0",
            "from_port": have["from_port"],
            "to_port": have["to_port"],
            "protocol": rule.protocol,
        }
        if all(mine[k] == wanted.get(k) for k in mine):
            return True
    return False


def _neutron_rule(group: net.SecurityGroup, rule: dict[str, Any]) -> dict[str, Any]:
    cidr = rule.get("cidr")
    body: dict[str, Any] = {
        "security_group_id": group.id,
        "direction": "ingress",
        "protocol": rule.get("protocol"),
        "ethertype": "IPv6"
        if cidr and ipaddress.ip_network(cidr, strict=False).version == 6
        else "IPv4",
        "remote_ip_prefix": cidr,
        "remote_group_id": rule.get("group_id"),
    }
    if rule.get("from_port", -1) != -1:
        body["port_range_min"] = rule["from_port"]
    if rule.get("to_port", -1) != -1:
        body["port_range_max"] = rule["to_port"]
    return body


def create_rule(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _gate(request, "rule:create")
    given = server_validation.body(request, RULE)["security_group_rule"]
    group = _group(session, request, given["parent_group_id"])
    source = None
    if given.get("group_id") is not None:
        found = _group(session, request, given["group_id"])
        source = {"name": found.name, "tenant_id": found.project_id}
    rule = new_rule(given)
    if rule is None:
        raise errors.bad_request("Not enough parameters to build a valid rule.")
    if _exists(session, group, rule):
        raise errors.bad_request(f"This rule already exists in group {group.id}")
    sub = proxy_calls.sub_request(request, body={"security_group_rule": _neutron_rule(group, rule)})
    # A limit or a rule Neutron already has: Nova's SecurityGroupLimitExceeded (403).
    answer = _call({409: 403}, net_rules.create, sub, session)
    created = session.get(net.SecurityGroupRule, answer.body["security_group_rule"]["id"])
    assert created is not None
    return {"security_group_rule": rule_view(created, source)}


def delete_rule(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    _gate(request, "rule:delete")
    rule_id = _valid_id(request.path_params["rule_id"])
    try:
        net_rules.get_visible(session, request.context, rule_id)
    except rest.NotFound as exc:
        raise errors.not_found(exc.message) from None
    sub = proxy_calls.sub_request(request, path_params={"rule_id": rule_id})
    _call({409: 409}, net_rules.delete, sub, session)
    return rest.ApiResponse(202)


# --- a server's groups ------------------------------------------------------------------------


def server_groups(session: Session, ctx: context.RequestContext, server_id: str) -> list[Any]:
    """The groups on the server's ports that ``ctx`` may see, in Nova's order."""
    P, PSG = net.Port, net.PortSecurityGroup
    ids = list(
        dict.fromkeys(
            session.scalars(
                select(PSG.security_group_id)
                .join(P, P.id == PSG.port_id)
                .where(P.device_id == server_id)
                .order_by(P.created_at, P.id)
            )
        )
    )
    found = [net_rules.group_visible(session, ctx, i) for i in ids]
    return [g for g in found if g is not None]


def list_for_server(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, POLICY + "list", {"project_id": server.project_id})
    groups = server_groups(session, request.context, server.id)
    return {"security_groups": _sorted(render(session, request.context, groups))}


_ONE = "/v2.1/os-security-groups/{group_id}"
ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-security-groups", index, manual_tx=True),
    rest.Route("POST", "/v2.1/os-security-groups", create),
    rest.Route("DELETE", "/v2.1/os-security-groups", no_id),
    rest.Route("GET", _ONE, show),
    rest.Route("PUT", _ONE, update),
    rest.Route("DELETE", _ONE, delete),
    rest.Route("POST", "/v2.1/os-security-group-rules", create_rule),
    rest.Route("DELETE", "/v2.1/os-security-group-rules/{rule_id}", delete_rule),
    rest.Route("GET", "/v2.1/servers/{server_id}/os-security-groups", list_for_server),
]
