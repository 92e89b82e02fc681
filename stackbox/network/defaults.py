"""What DevStack creates on first start, through the API's own handlers.

Once per state dir (a marker file records it, so a deleted ``private`` network
does not come back at the next start): the external network ``public`` (flat on
physical network ``public``, 172.24.4.0/24, gateway .1, pool .2-.254, no DHCP),
the shared default subnet pools (IPv4 10.0.0.0/22 handing out /26s, IPv6
fd00:5b0c::/56 handing out /64s), and the demo project's ``private`` network
(10.0.0.0/26 from the default pool) with ``router1``: gateway on ``public``,
interface on ``private-subnet``. Every step goes through the same handler an API
call would, so the defaults obey the same checks as anything a user makes.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.config import NetworkSettings
from stackbox.network import networks, router_interfaces, routers, subnetpools, subnets

MARKER = ".network-defaults"
V4_POOL = "10.0.0.0/22"
V6_POOL = "fd00:5b0c::/56"


def _call(
    handler: Callable[[rest.ApiRequest, Session], Any],
    session: Session,
    project_id: str,
    body: dict[str, Any],
    **params: str,
) -> dict[str, Any]:
    """Run an API handler as an administrator of ``project_id``; return its body."""
    ctx = context.RequestContext(
        request_id=f"req-{uuid.uuid4()}",
        user_id="stackbox-defaults",
        project_id=project_id,
        roles=("admin", "member", "reader"),
    )
    request = rest.ApiRequest(
        method="POST",
        path="",
        path_params=params,
        query={},
        headers={},
        body=body,
        context=ctx,
        base_url="",
        url="",
    )
    result = handler(request, session)
    return dict(result.body if isinstance(result, rest.ApiResponse) else result)


def create(
    session: Session, settings: NetworkSettings, admin_project: str, demo_project: str
) -> list[str]:
    """Create the defaults (in the caller's transaction); return what was made, for `up`."""
    public_net = ipaddress.ip_network(settings.public_cidr)
    hosts = list(public_net.hosts())
    public = _call(
        networks.create,
        session,
        admin_project,
        {
            "network": {
                "name": "public",
                "router:external": True,
                "provider:network_type": "flat",
                "provider:physical_network": "public",
            }
        },
    )["network"]
    _call(
        subnets.create,
        session,
        admin_project,
        {
            "subnet": {
                "name": "public-subnet",
                "network_id": public["id"],
                "ip_version": 4,
                "cidr": str(public_net),
                "gateway_ip": settings.public_gateway,
                "enable_dhcp": False,
                "allocation_pools": [{"start": str(hosts[1]), "end": str(hosts[-1])}],
            }
        },
    )
    v4 = _call(
        subnetpools.create,
        session,
        admin_project,
        {
            "subnetpool": {
                "name": "shared-default-subnetpool-v4",
                "prefixes": [V4_POOL],
                "default_prefixlen": 26,
                "shared": True,
                "is_default": True,
            }
        },
    )["subnetpool"]
    _call(
        subnetpools.create,
        session,
        admin_project,
        {
            "subnetpool": {
                "name": "shared-default-subnetpool-v6",
                "prefixes": [V6_POOL],
                "default_prefixlen": 64,
                "shared": True,
                "is_default": True,
            }
        },
    )
    private = _call(networks.create, session, demo_project, {"network": {"name": "private"}})[
        "network"
    ]
    private_subnet = _call(
        subnets.create,
        session,
        demo_project,
        {
            "subnet": {
                "name": "private-subnet",
                "network_id": private["id"],
                "ip_version": 4,
                "subnetpool_id": v4["id"],
                "cidr": settings.private_cidr,
            }
        },
    )["subnet"]
    router = _call(
        routers.create,
        session,
        demo_project,
        {
            "router": {
                "name": "router1",
                "external_gateway_info": {"network_id": public["id"]},
            }
        },
    )["router"]
    _call(
        router_interfaces.add,
        session,
        demo_project,
        {"subnet_id": private_subnet["id"]},
        router_id=router["id"],
    )
    return [
        f"network public ({public_net}, gateway {settings.public_gateway})",
        f"network private ({private_subnet['cidr']}, project demo)",
        "router router1 (public -> private)",
        f"subnet pools shared-default-subnetpool-v4 ({V4_POOL}) and -v6 ({V6_POOL})",
    ]


def done(state_dir: Path) -> bool:
    return (state_dir / MARKER).exists()


def mark_done(state_dir: Path) -> None:
    (state_dir / MARKER).write_text("created\n")
