"""Server bodies per microversion, as Nova's server view builder draws them.

Everything a body needs beyond the server row (metadata, tags, the newest fault, the
server group, ports' addresses and security groups, host status) is loaded for many
servers at once (``load``), so a detailed listing costs a handful of queries whatever
its length. Which optional parts a caller sees is decided once per request
(``Viewer``): the flavor's extra specs (2.47+), the admin-only ``OS-EXT-SRV-ATTR:*``
attributes and ``host_status`` (2.16+) follow their policy rules.

Other modules use:

    render(session, request, server, purpose="show" | "update" | "rebuild") -> dict
        One server's body (the value of ``{"server": ...}``). ``update`` and ``rebuild``
        draw what Nova's PUT and rebuild answers hold (all attributes from 2.75; before,
        the basic ones). A rebuild's caller adds ``adminPass`` and, from 2.57,
        ``user_data`` itself, as Nova's rebuild does.
    render_many(session, request, servers) -> list[dict]   (GET /servers/detail)
    minimal(request, servers) -> list[dict]                (GET /servers)
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, liveness, microversions, models, network_glue, runtime, states

PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")
FAULT_STATUSES = ("ERROR", "DELETED")
COMPUTE_BINARY = "nova-compute"
CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class Viewer:
    """What the caller may see, and the request's version gates (decided once per
    request: a listing draws a thousand bodies)."""

    admin: bool
    extra_specs: bool
    extended_attrs: bool
    # None: never shown; False: any status; True: only when UNKNOWN.
    host_status_unknown_only: bool | None
    flavor_embedded: bool = False
    attrs_more: bool = False  # 2.3
    locked: bool = False  # 2.9
    description: bool = False  # 2.19
    tags: bool = False  # 2.26
    trusted_certs: bool = False  # 2.63
    lock_reason: bool = False  # 2.73
    hostname: bool = False  # 2.90
    pinned_zone: bool = False  # 2.96
    base: str = ""  # .../compute


def viewer(request: rest.ApiRequest, project_id: str | None = None) -> Viewer:
    target = {"project_id": project_id} if project_id else None
    unknown_only: bool | None = None
    if microversions.at_least(request, "host_status"):
        if common.allowed(request, "os_compute_api:servers:show:host_status", target):
            unknown_only = False
        elif common.allowed(
            request, "os_compute_api:servers:show:host_status:unknown-only", target
        ):
            unknown_only = True
    return Viewer(
        admin=common.is_admin(request.context),
        extra_specs=microversions.at_least(request, "flavor_embedded")
        and common.allowed(request, "os_compute_api:servers:show:flavor-extra-specs", target),
        extended_attrs=common.allowed(
            request, "os_compute_api:os-extended-server-attributes", target
        ),
        host_status_unknown_only=unknown_only,
        flavor_embedded=microversions.at_least(request, "flavor_embedded"),
        attrs_more=microversions.at_least(request, "extended_server_attrs_more"),
        locked=microversions.at_least(request, "server_locked"),
        description=microversions.at_least(request, "server_description"),
        tags=microversions.at_least(request, "server_tags"),
        trusted_certs=microversions.at_least(request, "trusted_certs"),
        lock_reason=microversions.at_least(request, "lock_reason"),
        hostname=microversions.at_least(request, "hostname"),
        pinned_zone=microversions.at_least(request, "pinned_availability_zone"),
        base=_base(),
    )


# --- what hangs off the rows ----------------------------------------------------------------------


@dataclasses.dataclass
class Loaded:
    metadata: dict[str, dict[str, str]]
    tags: dict[str, list[str]]
    faults: dict[str, models.ServerFault]
    groups: dict[str, str]
    net: network_glue.NetView
    host_status: dict[str, str]


def _chunks(ids: Sequence[str]) -> Any:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def host_statuses(session: Session, hosts: set[str]) -> dict[str, str]:
    """Nova's host_status per host: UP, DOWN (forced down), MAINTENANCE (disabled),
    UNKNOWN (not reporting), "" (no compute service)."""
    S = models.Service
    out = {host: "" for host in hosts}
    if not hosts:
        return out
    down_time = runtime.get().settings.service_down_time
    now = common.now()
    for service in session.scalars(
        select(S).where(S.host.in_(sorted(hosts)), S.binary == COMPUTE_BINARY)
    ):
        if service.forced_down:
            out[service.host] = "DOWN"
        elif service.disabled:
            out[service.host] = "MAINTENANCE"
        else:
            out[service.host] = "UP" if liveness.is_up(service, now, down_time) else "UNKNOWN"
    return out


def load(
    session: Session,
    servers: Sequence[models.Server],
    *,
    tags: bool = True,
    groups: bool = True,
    host_status: bool = True,
) -> Loaded:
    ids = [s.id for s in servers]
    metadata: dict[str, dict[str, str]] = {}
    tag_map: dict[str, list[str]] = {}
    faults: dict[str, models.ServerFault] = {}
    group_map: dict[str, str] = {}
    M = models.ServerMetadata
    T = models.ServerTag
    F = models.ServerFault
    G = models.ServerGroupMember
    errored = [s.id for s in servers if s.deleted or s.vm_state in (states.ERROR, states.DELETED)]
    for chunk in _chunks(ids):
        for server_id, key, value in session.execute(
            select(M.server_id, M.key, M.value).where(M.server_id.in_(chunk))
        ):
            metadata.setdefault(server_id, {})[key] = value
        if tags:
            for server_id, tag in session.execute(
                select(T.server_id, T.tag).where(T.server_id.in_(chunk)).order_by(T.tag)
            ):
                tag_map.setdefault(server_id, []).append(tag)
        if groups:
            group_map.update(
                session.execute(select(G.server_id, G.group_id).where(G.server_id.in_(chunk))).all()
            )
    for chunk in _chunks(errored):
        for fault in session.scalars(select(F).where(F.server_id.in_(chunk)).order_by(F.id)):
            faults[fault.server_id] = fault  # the newest wins
    hosts = {s.host for s in servers if s.host}
    return Loaded(
        metadata=metadata,
        tags=tag_map,
        faults=faults,
        groups=group_map,
        net=network_glue.load(session, servers),
        host_status=host_statuses(session, hosts) if host_status else {},
    )


# --- pieces of a body ----------------------------------------------------------------------------


def isotime(moment: Any) -> str | None:
    """``common.isotime``'s format, faster (a listing formats thousands)."""
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


def host_id(server: models.Server) -> str:
    """Nova's hostId: an obfuscated host per project ("" when unplaced)."""
    if not server.host:
        return ""
    return hashlib.sha224((server.project_id + server.host).encode()).hexdigest()


def status(server: models.Server) -> str:
    if server.deleted:
        return "DELETED"
    return states.status(server.vm_state, server.task_state)


def instance_name(server: models.Server) -> str:
    return f"instance-{server.id[:8]}"


def _base() -> str:
    return f"{runtime.get().base_url}/compute"


def _bookmark(base: str, kind: str, ident: str) -> list[dict[str, str]]:
    return [{"rel": "bookmark", "href": f"{base}/{kind}/{ident}"}]


def flavor_body(flavor: dict[str, Any], view: Viewer) -> dict[str, Any]:
    if not flavor:
        return {}
    if view.flavor_embedded:
        body: dict[str, Any] = {
            "vcpus": flavor.get("vcpus", 0),
            "ram": flavor.get("memory_mb", 0),
            "disk": flavor.get("root_gb", 0),
            "ephemeral": flavor.get("ephemeral_gb", 0),
            "swap": flavor.get("swap", 0),
            "original_name": flavor.get("name", ""),
        }
        if view.extra_specs:
            body["extra_specs"] = dict(flavor.get("extra_specs") or {})
        return body
    flavor_id = str(flavor.get("id", ""))
    return {"id": flavor_id, "links": _bookmark(view.base, "flavors", flavor_id)}


def image_body(server: models.Server, base: str) -> dict[str, Any] | str:
    if not server.image_ref:
        return ""
    image_id = server.image_ref.rstrip("/").rsplit("/", 1)[-1]
    return {"id": image_id, "links": _bookmark(base, "images", image_id)}


def links(base: str, server_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/v2.1/servers/{server_id}"},
        {"rel": "bookmark", "href": f"{base}/servers/{server_id}"},
    ]


def fault_body(fault: models.ServerFault, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": fault.code,
        "created": common.isotime(fault.created_at),
        "message": fault.message,
    }
    if fault.details and (admin or fault.code != 500):
        body["details"] = fault.details
    return body


def _addresses(
    server: models.Server, loaded: Loaded, extended: bool
) -> dict[str, list[dict[str, Any]]]:
    if server.vm_state == states.BUILDING:
        return {}  # Nova hides addresses while a server builds
    found = loaded.net.addresses.get(server.id, {})
    if extended:
        return {label: [dict(e) for e in entries] for label, entries in found.items()}
    return {
        label: [{"version": e["version"], "addr": e["addr"]} for e in entries]
        for label, entries in found.items()
    }


@dataclasses.dataclass(frozen=True)
class Parts:
    """Which optional parts a body has (Nova's show_* flags)."""

    full: bool = True  # AZ, config drive, usage, security groups, statuses, volumes
    keypair: bool = True
    extended: bool | None = None  # None: as the viewer may
    host_status: bool = True
    server_groups: bool = False
    user_data: bool = True


def _body(server: models.Server, loaded: Loaded, view: Viewer, parts: Parts) -> dict[str, Any]:
    access4 = server.access_ip_v4
    access6 = server.access_ip_v6
    state = status(server)
    server_id = server.id
    body: dict[str, Any] = {
        "accessIPv4": str(access4) if access4 is not None else "",
        "accessIPv6": str(access6) if access6 is not None else "",
        "addresses": _addresses(server, loaded, parts.full),
        "created": isotime(server.created_at),
        "flavor": flavor_body(server.flavor, view),
        "hostId": host_id(server),
        "id": server_id,
        "image": image_body(server, view.base),
        "links": links(view.base, server_id),
        "metadata": dict(loaded.metadata.get(server_id, {})),
        "name": server.name,
        "status": state,
        "tenant_id": server.project_id or "",
        "user_id": server.user_id or "",
        "updated": isotime(server.updated_at),
        "OS-DCF:diskConfig": "AUTO" if server.auto_disk_config else "MANUAL",
    }
    if state in FAULT_STATUSES and server_id in loaded.faults:
        body["fault"] = fault_body(loaded.faults[server_id], view.admin)
    if state in PROGRESS_STATUSES:
        body["progress"] = server.progress or 0
    if parts.full:
        body["OS-EXT-AZ:availability_zone"] = server.availability_zone or ""
        body["config_drive"] = server.config_drive
    if parts.keypair:
        body["key_name"] = server.key_name
    if parts.full:
        body["OS-SRV-USG:launched_at"] = common.isotime_micro(server.launched_at)
        body["OS-SRV-USG:terminated_at"] = common.isotime_micro(server.terminated_at)
        names = loaded.net.groups.get(server_id)
        if names:
            body["security_groups"] = [{"name": n} for n in names]
    extended = view.extended_attrs if parts.extended is None else parts.extended
    if extended:
        body["OS-EXT-SRV-ATTR:host"] = server.host
        body["OS-EXT-SRV-ATTR:instance_name"] = instance_name(server)
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = server.node
        if view.attrs_more:
            body["OS-EXT-SRV-ATTR:hostname"] = server.hostname
            body["OS-EXT-SRV-ATTR:kernel_id"] = ""
            body["OS-EXT-SRV-ATTR:launch_index"] = server.launch_index
            body["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
            body["OS-EXT-SRV-ATTR:reservation_id"] = server.reservation_id
            body["OS-EXT-SRV-ATTR:root_device_name"] = server.root_device_name
            if parts.user_data:
                body["OS-EXT-SRV-ATTR:user_data"] = server.user_data
    if parts.full:
        body["OS-EXT-STS:task_state"] = server.task_state
        body["OS-EXT-STS:vm_state"] = server.vm_state
        body["OS-EXT-STS:power_state"] = server.power_state
        body["os-extended-volumes:volumes_attached"] = []
    if view.locked:
        body["locked"] = bool(server.locked)
    if parts.full and parts.host_status and view.host_status_unknown_only is not None:
        value = loaded.host_status.get(server.host or "", "") if server.host else ""
        if not view.host_status_unknown_only or value == "UNKNOWN":
            body["host_status"] = value
    if view.description:
        body["description"] = server.description
    if view.tags:
        body["tags"] = list(loaded.tags.get(server_id, []))
    if view.trusted_certs:
        body["trusted_image_certificates"] = server.trusted_image_certificates or None
    if parts.server_groups:
        group = loaded.groups.get(server_id)
        body["server_groups"] = [group] if group else []
    if view.lock_reason:
        body["locked_reason"] = server.locked_reason
    if view.hostname and not extended:
        body["OS-EXT-SRV-ATTR:hostname"] = server.hostname
    if parts.full and view.pinned_zone:
        body["pinned_availability_zone"] = server.requested_availability_zone
    return body


def _parts(request: rest.ApiRequest, purpose: str) -> Parts:
    groups = microversions.at_least(request, "server_groups_in_server")
    if purpose == "show":
        return Parts(server_groups=groups)
    # From 2.75 PUT and rebuild answer with every attribute, as GET does.
    everything = microversions.at_least(request, "update_rebuild_full_body")
    if purpose == "rebuild":
        return Parts(
            full=everything,
            keypair=everything or microversions.at_least(request, "rebuild_key_name"),
            extended=None if everything else False,
            host_status=everything,
            server_groups=groups,
            user_data=False,
        )
    return Parts(
        full=everything,
        keypair=everything,
        extended=None if everything else False,
        host_status=everything,
        server_groups=groups,
    )


def render(
    session: Session, request: rest.ApiRequest, server: models.Server, *, purpose: str = "show"
) -> dict[str, Any]:
    """One server's body for GET (``show``), PUT (``update``) or rebuild (``rebuild``)."""
    parts = _parts(request, purpose)
    loaded = load(
        session,
        [server],
        tags=microversions.at_least(request, "server_tags"),
        groups=parts.server_groups,
        host_status=microversions.at_least(request, "host_status"),
    )
    return _body(server, loaded, viewer(request, server.project_id), parts)


def render_many(
    session: Session, request: rest.ApiRequest, servers: Sequence[models.Server]
) -> list[dict[str, Any]]:
    """Detailed bodies of a listing (no server groups, as Nova's detail view)."""
    view = viewer(request)
    loaded = load(
        session,
        servers,
        tags=microversions.at_least(request, "server_tags"),
        groups=False,
        host_status=view.host_status_unknown_only is not None,
    )
    parts = Parts()
    return [_body(server, loaded, view, parts) for server in servers]


def minimal(request: rest.ApiRequest, servers: Sequence[models.Server]) -> list[dict[str, Any]]:
    """The bodies of GET /servers: id, name, links."""
    base = _base()
    return [{"id": s.id, "name": s.name, "links": links(base, s.id)} for s in servers]
