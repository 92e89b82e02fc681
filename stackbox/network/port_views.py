"""Port bodies as the API shows them, built for many ports at once: each kind of
child row (addresses, security groups, address pairs, DHCP options, tags) is
loaded with one query per 500 ports, never one per port."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.network import common, models, port_schema

CHUNK = 500


def _by_port(
    session: Session, model: Any, columns: Iterable[Any], ids: list[str]
) -> dict[str, list[tuple[Any, ...]]]:
    """Child rows as plain tuples of ``columns`` (no ORM objects: a listing loads
    thousands), grouped by port and in the order of the columns."""
    wanted = list(columns)
    found: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for start in range(0, len(ids), CHUNK):
        query = (
            select(model.port_id, *wanted)
            .where(model.port_id.in_(ids[start : start + CHUNK]))
            .order_by(*wanted)
        )
        for row in session.execute(query):
            found[row[0]].append(tuple(row[1:]))
    return found


def hostname_for(address: str) -> str:
    return "host-" + address.replace(".", "-").replace(":", "-")


def dns_assignment(
    dns_name: str | None, addresses: list[dict[str, str]], domain: str
) -> list[dict[str, str]]:
    """Neutron's dns_assignment: one hostname and FQDN per fixed IP."""
    result = []
    for item in addresses:
        if dns_name:
            hostname = dns_name
            fqdn = hostname if hostname.endswith(".") else f"{hostname}.{domain}"
        else:
            hostname = hostname_for(item["ip_address"])
            fqdn = f"{hostname}.{domain}" if domain else hostname
        result.append({"ip_address": item["ip_address"], "hostname": hostname, "fqdn": fqdn})
    return result


def render_many(session: Session, ports: Sequence[Any]) -> list[dict[str, Any]]:
    """Bodies of ``ports`` (ORM rows, or Core rows of net_port's columns)."""
    ids = [p.id for p in ports]
    A = models.IPAllocation
    addresses = _by_port(session, A, (A.ip_address, A.subnet_id), ids)
    groups = _by_port(
        session, models.PortSecurityGroup, (models.PortSecurityGroup.security_group_id,), ids
    )
    P = models.AllowedAddressPair
    pairs = _by_port(session, P, (P.ip_address, P.mac_address), ids)
    D = models.ExtraDhcpOpt
    opts = _by_port(session, D, (D.opt_name, D.ip_version, D.opt_value), ids)
    tags = common.tags_of(session, port_schema.RESOURCE, ids)
    domain = port_schema.dns_domain()
    return [
        _view(p, addresses[p.id], groups[p.id], pairs[p.id], opts[p.id], tags[p.id], domain)
        for p in ports
    ]


def render(session: Session, port: models.Port) -> dict[str, Any]:
    return render_many(session, [port])[0]


@dataclasses.dataclass
class Children:
    """The child rows a port was just created with, as ``_by_port`` would read them."""

    addresses: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    groups: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    pairs: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    opts: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)


def render_fresh(port: models.Port, children: Children) -> dict[str, Any]:
    """The body of a port created in this transaction, from what was written rather
    than read back (a create's four child queries were a sixth of its time)."""
    return _view(
        port,
        sorted(children.addresses),
        sorted(children.groups),
        sorted(children.pairs),
        sorted(children.opts, key=lambda o: (o[0], o[1], str(o[2]))),
        [],
        port_schema.dns_domain(),
    )


def _view(
    port: Any,
    addresses: list[tuple[Any, ...]],
    groups: list[tuple[Any, ...]],
    pairs: list[tuple[Any, ...]],
    opts: list[tuple[Any, ...]],
    tags: list[str],
    domain: str,
) -> dict[str, Any]:
    fixed_ips = [{"subnet_id": subnet, "ip_address": ip} for ip, subnet in addresses]
    body = common.standard(port, tags)
    body.update(
        {
            "name": port.name,
            "network_id": port.network_id,
            "admin_state_up": port.admin_state_up,
            "status": port.status,
            "mac_address": port.mac_address,
            "fixed_ips": fixed_ips,
            "device_id": port.device_id,
            "device_owner": port.device_owner,
            "port_security_enabled": port.port_security_enabled,
            "security_groups": [g for (g,) in groups],
            "allowed_address_pairs": [{"ip_address": ip, "mac_address": mac} for ip, mac in pairs],
            "extra_dhcp_opts": [
                {"opt_name": name, "opt_value": value, "ip_version": version}
                for name, version, value in opts
            ],
            "binding:host_id": port.binding_host_id or "",
            "binding:vnic_type": port.binding_vnic_type,
            "binding:vif_type": port.binding_vif_type,
            "binding:vif_details": dict(port.binding_vif_details or {}),
            "binding:profile": dict(port.binding_profile or {}),
            "dns_name": port.dns_name or "",
            "dns_assignment": dns_assignment(port.dns_name, fixed_ips, domain),
            "propagate_uplink_status": port.propagate_uplink_status,
        }
    )
    return body


# --- what a caller may read ---------------------------------------------------------------


def target(
    project_id: str,
    network_project_id: str | None,
    device_owner: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """A port's policy target, with the facts Neutron's custom checks read."""
    owner = device_owner or ""
    return {
        "project_id": project_id,
        "network:project_id": network_project_id,
        "device_owner": owner,
        "network_device": str(owner.startswith("network:")),
        "compute_device": str(owner.startswith("compute:")),
        **extra,
    }


def target_of(port: Any, network_project_id: str | None) -> dict[str, Any]:
    return target(port.project_id, network_project_id, port.device_owner)


class Reader:
    """Decides, per policy target, whether a port is readable and which guarded
    attributes it shows; remembers each answer, since a listing of a thousand
    ports has only a few distinct targets."""

    def __init__(self, allowed: Callable[[str, dict[str, Any]], bool], guarded: list[str]):
        self._allowed = allowed
        self._guarded = guarded
        self._seen: dict[tuple[Any, ...], tuple[bool, tuple[str, ...]]] = {}

    def _decide(self, facts: dict[str, Any]) -> tuple[bool, tuple[str, ...]]:
        key = tuple(facts.items())
        if key not in self._seen:
            readable = self._allowed("get_port", facts)
            hidden = tuple(a for a in self._guarded if not self._allowed(f"get_port:{a}", facts))
            self._seen[key] = (readable, hidden)
        return self._seen[key]

    def readable(self, facts: dict[str, Any]) -> bool:
        return self._decide(facts)[0]

    def shown(self, facts: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        for name in self._decide(facts)[1]:
            body.pop(name, None)
        return body

    def visible(self, facts: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | None:
        """The body as this caller sees it, or None if it may not see the port."""
        readable, hidden = self._decide(facts)
        if not readable:
            return None
        for name in hidden:
            body.pop(name, None)
        return body
