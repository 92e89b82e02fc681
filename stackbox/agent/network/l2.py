"""L2 on one host: a bridge per network (``brq<net11>``) and each port's tap
(``tap<port11>``, made by whoever runs the instance) plugged into it.

This first step serves one host: ports of a network on this host share its bridge.
Between hosts a network needs its segment carried (VXLAN with L2 population, a
flat physnet's interface): not done yet, and no uplink is ever added here.
"""

from __future__ import annotations

import os

from stackbox.bus import specs
from stackbox.linux import links

BRIDGE_PREFIX = "brq"
TAP_PREFIX = "tap"


def bridge_name(network_id: str) -> str:
    return f"{BRIDGE_PREFIX}{network_id[:11]}"


def tap_name(port_id: str) -> str:
    return f"{TAP_PREFIX}{port_id[:11]}"


def wire(port: specs.PortSpec) -> bool:
    """Plug the port's tap into its network's bridge; False while the tap is missing."""
    tap = tap_name(port.id)
    if not links.exists(tap):
        return False
    bridge = bridge_name(port.network_id)
    links.ensure_bridge(bridge, port.mtu)
    links.ensure_plugged(tap, bridge, port.mtu, up=port.admin_state_up)
    return True


def remove_bridge_if_empty(network_id: str) -> None:
    bridge = bridge_name(network_id)
    members = f"/sys/class/net/{bridge}/brif"
    if os.path.isdir(members) and not os.listdir(members):
        links.remove_link(bridge)
