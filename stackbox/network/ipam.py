"""(being written) IP address management: which address a port gets on which subnet.

Contract (used by ports, routers, floating IPs):

    allocate(session, network, port, requested) -> list[models.IPAllocation]
        requested: None (one address from each IPv4 subnet of the network, plus an
        EUI-64 address from each SLAAC/stateless IPv6 subnet), or the port's
        "fixed_ips" list of {"subnet_id"?, "ip_address"?}. Raises Neutron's errors
        (IpAddressGenerationFailure 409 when a subnet is full, IpAddressInUse 409,
        InvalidIpForSubnet / InvalidIpForNetwork 400). Never hands one address out
        twice, on SQLite or PostgreSQL (the primary key of net_ip_allocation).
    release(session, port_id, subnet_ids=None) -> None
"""

from __future__ import annotations
