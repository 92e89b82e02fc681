"""POST /servers, the request: Nova's body per microversion, parsed into an ``Ask``,
with the checks that need no database (policy, multi-create rules)."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import re
import secrets
import string
from typing import Any
from urllib.parse import urlsplit

from stackbox import rest
from stackbox.compute import common, errors, microversions, network_glue, runtime, server_schema

TRUE_STRINGS = ("true", "1", "on", "yes")
VOLUMES_UNAVAILABLE = (
    "Block Device Mapping is Invalid: volumes are not available (no Block Storage service)."
)


def bool_from(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in TRUE_STRINGS)


def sanitize_hostname(name: str) -> str:
    """Nova's sanitize_hostname: RFC 952/1123 characters, lower case, at most 63."""
    text = name.encode("latin-1", "ignore").decode("latin-1")[:63]
    text = re.sub(r"[ _\.]", "-", text)
    text = re.sub(r"[^\w.-]+", "", text)
    return text.lower().strip(".-")


def generate_password(length: int = 12) -> str:
    """Nova's generate_password: one of each symbol group, then any, shuffled."""
    groups = (string.digits, string.ascii_uppercase, string.ascii_lowercase)
    chars = [secrets.choice(g) for g in groups]
    symbols = "".join(groups)
    chars += [secrets.choice(symbols) for _ in range(length - len(chars))]
    for i in range(len(chars) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def reservation_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "r-" + "".join(secrets.choice(alphabet) for _ in range(8))


def normalized_ip(value: str | None) -> str | None:
    """An address as Nova stores it (compact IPv6: "::babe:dc0c:1602")."""
    return None if value is None else str(ipaddress.ip_address(value))


def href_id(ref: Any) -> str:
    """Nova's get_id_from_href: the last path segment of a URL, or the value itself."""
    return urlsplit(str(ref)).path.split("/")[-1]


# --- the parsed request ---------------------------------------------------------------------


@dataclasses.dataclass
class Ask:
    """A create request, parsed and checked."""

    name: str
    description: str | None
    hostname: str | None
    password: str
    flavor_ref: str
    image_ref: str
    user_data: str | None
    key_name: str | None
    config_drive: str
    security_groups: list[str] | None
    hints: dict[str, Any]
    min_count: int
    max_count: int
    zone: str | None
    forced_host: str | None
    forced_node: str | None
    requested_host: str | None
    requested_node: str | None
    networks: str | list[network_glue.Request] | None
    metadata: dict[str, str]
    tags: list[str]
    trusted_certs: list[str] | None
    bdms: list[dict[str, Any]]
    access_v4: str | None
    access_v6: str | None
    auto_disk_config: bool | None
    reservation: bool
    # Injected files (before 2.57): (path, contents); Nova checks them against quotas.
    personality: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)


def _networks(request: rest.ApiRequest, raw: Any) -> str | list[network_glue.Request] | None:
    """Nova's _get_requested_networks (the schema already checked the shapes)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    out: list[network_glue.Request] = []
    ports: list[str] = []
    for item in raw:
        port = item.get("port")
        fixed = item.get("fixed_ip")
        tag = item.get("tag")
        if port:
            if port in ports:
                raise errors.bad_request(
                    f"Port ID '{port}' was specified twice: you cannot attach a port "
                    "multiple times."
                )
            if fixed is not None:
                raise errors.bad_request(
                    f"Specified Fixed IP '{fixed}' cannot be used with port '{port}': the "
                    "two cannot be specified together."
                )
            ports.append(port)
            out.append(network_glue.Request(port_id=port, tag=tag))
            continue
        if "uuid" not in item:
            raise errors.bad_request("Bad network format: missing 'uuid'")
        net_id = item["uuid"]
        if not server_schema.is_uuid_like(net_id):
            raise errors.bad_request(
                f"Bad networks format: network uuid is not in proper format ({net_id})"
            )
        out.append(network_glue.Request(network_id=net_id, fixed_ip=fixed, tag=tag))
    return out


def _zone(request: rest.ApiRequest, raw: str | None) -> tuple[str | None, str | None, str | None]:
    """Nova's parse_availability_zone: "az", "az:host", "az:host:node", "az::node"."""
    host = node = None
    zone = raw
    if raw and ":" in raw:
        parts = raw.count(":")
        if parts == 1:
            zone, host = raw.split(":")
        elif parts == 2:
            if "::" in raw:
                zone, node = raw.split("::")
            else:
                zone, host, node = raw.split(":")
        else:
            raise errors.bad_request("Unable to parse availability_zone")
    return zone or runtime.get().settings.default_schedule_zone or None, host or None, node or None


def _bdms(server: dict[str, Any]) -> list[dict[str, Any]]:
    """Block device mappings: image-to-local (and local blank disks) only until volumes
    exist; anything with a volume is Nova's InvalidBDM (400)."""
    legacy = server.get("block_device_mapping") or []
    v2 = server.get("block_device_mapping_v2") or []
    if legacy and v2:
        raise errors.bad_request(
            "Using different block_device_mapping syntaxes is not allowed in the same request."
        )
    if legacy:
        raise errors.bad_request(VOLUMES_UNAVAILABLE)
    out = []
    for bdm in v2:
        source = bdm.get("source_type")
        destination = bdm.get("destination_type") or ("local" if source != "volume" else "volume")
        if (
            destination == "volume"
            or source in ("volume", "snapshot")
            or bdm.get("volume_id")
            or bdm.get("snapshot_id")
        ):
            raise errors.bad_request(VOLUMES_UNAVAILABLE)
        if source == "image" and not (bdm.get("uuid") or bdm.get("image_id")):
            raise errors.bad_request("Block Device Mapping is Invalid: missing image id.")
        out.append({**bdm, "destination_type": destination})
    return out


def parse(request: rest.ApiRequest) -> Ask:
    data = server_schema.body(request, server_schema.create_schema(request))
    server = data["server"]
    name = server["name"]
    description = (
        server.get("description") if microversions.at_least(request, "server_description") else name
    )
    hostname = server.get("hostname") if microversions.at_least(request, "hostname") else None
    min_count = int(server.get("min_count", 1))
    max_count = int(server.get("max_count", min_count))
    if min_count > max_count:
        raise errors.bad_request("min_count must be <= max_count")
    hints = data.get("os:scheduler_hints") or data.get("OS-SCH-HNT:scheduler_hints") or {}
    hints = {k: v for k, v in hints.items() if not k.startswith("_nova")}
    zone, host, node = _zone(request, server.get("availability_zone"))
    requested_host = server.get("host")
    requested_node = server.get("hypervisor_hostname")
    bdms = _bdms(server)
    image_ref = server.get("imageRef") or ""
    if not image_ref:
        root = next(
            (
                b
                for b in bdms
                if str(b.get("boot_index", "")) == "0" and b.get("source_type") == "image"
            ),
            None,
        )
        if root is not None:
            image_ref = root.get("uuid") or root.get("image_id") or ""
        elif not bdms:
            raise errors.bad_request("Missing imageRef attribute")
    groups = server.get("security_groups")
    disk_config = server.get("OS-DCF:diskConfig")
    return Ask(
        name=name,
        description=description,
        hostname=hostname,
        password=server["adminPass"] if "adminPass" in server else generate_password(),
        flavor_ref=href_id(server["flavorRef"]),
        image_ref=href_id(image_ref) if image_ref else "",
        user_data=server.get("user_data"),
        key_name=server.get("key_name"),
        config_drive="True" if bool_from(server.get("config_drive")) else "",
        security_groups=(
            list(dict.fromkeys(g["name"] for g in groups if g.get("name")))
            if groups is not None
            else None
        ),
        hints=hints,
        min_count=min_count,
        max_count=max_count,
        zone=zone,
        forced_host=host,
        forced_node=node,
        requested_host=requested_host,
        requested_node=requested_node,
        networks=_networks(request, server.get("networks")),
        metadata=dict(server.get("metadata") or {}),
        tags=list(dict.fromkeys(server.get("tags") or [])),
        trusted_certs=server.get("trusted_image_certificates") or None,
        bdms=bdms,
        access_v4=normalized_ip(server.get("accessIPv4")),
        access_v6=normalized_ip(server.get("accessIPv6")),
        auto_disk_config=None if disk_config is None else disk_config == "AUTO",
        reservation=bool_from(server.get("return_reservation_id", False)),
        personality=[
            (item.get("path", ""), base64.b64decode(item.get("contents", "")))
            for item in server.get("personality") or []
        ],
    )


# --- checks that need no database -----------------------------------------------------------


def check_policies(request: rest.ApiRequest, ask: Ask) -> None:
    ctx = request.context
    target = {"project_id": ctx.project_id, "user_id": ctx.user_id, "availability_zone": ask.zone}
    common.enforce(request, "os_compute_api:servers:create", target)
    if ask.trusted_certs:
        common.enforce(request, "os_compute_api:servers:create:trusted_certs", target)
    if ask.forced_host or ask.forced_node:
        common.enforce(request, "os_compute_api:servers:create:forced_host", target)
    if ask.requested_host or ask.requested_node:
        common.enforce(request, "compute:servers:create:requested_destination", target)
        if ask.forced_host or ask.forced_node:
            raise errors.bad_request(
                "One mechanism with host and/or hypervisor_hostname and another mechanism "
                "with zone:host:node are mutually exclusive."
            )
    if ask.bdms:
        common.enforce(request, "os_compute_api:servers:create:attach_volume", target)
    if ask.networks is not None and ask.networks != "none" and ask.networks != []:
        common.enforce(request, "os_compute_api:servers:create:attach_network", target)


def check_request(request: rest.ApiRequest, ask: Ask) -> None:
    if ask.max_count > 1 and isinstance(ask.networks, list):
        if any(n.network_id and n.fixed_ip for n in ask.networks):
            raise errors.bad_request(
                "max_count cannot be greater than 1 if an fixed_ip is specified."
            )
        if any(n.port_id for n in ask.networks):
            raise errors.bad_request(
                "Unable to launch multiple instances with a single configured port ID. "
                "Please launch your instance one by one with different ports."
            )
    if ask.hostname and ask.max_count > 1:
        raise errors.bad_request("Unable to allocate a single hostname to multiple instances")
    if ask.user_data is not None:
        try:
            base64.b64decode(ask.user_data.encode(), validate=True)
        except ValueError:
            raise errors.bad_request("User data needs to be valid base 64.") from None
