"""GET /v2.0/extensions: exactly the API extensions stackbox implements.

Clients and Tempest decide what to call from this list, so an alias belongs here
only once its behaviour is served (each module that implements one adds it).
"""

from __future__ import annotations

from typing import Any

from stackbox import rest
from stackbox.network import errors, service_providers

UPDATED = "2026-11-22T00:00:00-00:00"

# alias -> (name, description)
EXTENSIONS: dict[str, tuple[str, str]] = {
    "standard-attr-description": (
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    "standard-attr-revisions": (
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    "standard-attr-timestamp": (
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron "
        "resources that have Neutron standard attributes.",
    ),
    "revision-if-match": (
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    "network-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "network-mtu-writable": (
        "Network MTU (writable)",
        "Provides a writable MTU attribute for a network resource.",
    ),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "multi-provider": (
        "Multi Provider Network",
        "Expose mapping of virtual networks to multiple physical networks",
    ),
    "external-net": (
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "network_availability_zone": (
        "Network Availability Zone",
        "Availability zone support for network.",
    ),
    "sorting": ("Sorting support", "Enables sorting support on all endpoints."),
    "pagination": ("Pagination support", "Enables pagination support on all endpoints."),
    "filter-validation": (
        "Filter parameters validation",
        "Provides validation on filter parameters.",
    ),
    "fields": ("fields", "Select the fields a response shows"),
    "empty-string-filtering": (
        "Empty String Filtering Extension",
        "Allow filtering by attributes with empty string value",
    ),
    "port-security": ("Port Security", "Provides port security"),
    "quotas": ("Quota management support", "Expose functions for quotas management per tenant"),
    "project-id": (
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
    # Security groups (security_groups.py, security_group_rules.py).
    "security-group": ("security-group", "The security groups extension."),
    "stateful-security-group": (
        "Stateful security group",
        "Indicates if the security group is stateful or not",
    ),
    "security-groups-normalized-cidr": (
        "Normalized CIDR field for security group rules",
        "Add new field with normalized remote_ip_prefix cidr in SG rule",
    ),
    "security-groups-rules-belongs-to-default-sg": (
        "Security group rule belongs to the project's default security group",
        "Flag to determine if the security group rule belongs to the project's default "
        "security group",
    ),
    "rbac-security-groups": (
        "Add security_group type to network RBAC",
        "Add security_group type to network RBAC",
    ),
    "security-groups-shared-filtering": (
        "Security group filtering on the shared field",
        "Support filtering security groups on the shared field",
    ),
    # RBAC policies (rbac_api.py), quotas (quotas_api.py), tags (tags_api.py).
    "rbac-policies": (
        "RBAC Policies",
        "Allows creation and modification of policies that control project access to resources.",
    ),
    "quota_details": (
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
    ),
    "quota-check-limit": (
        "Quota engine limit check",
        "Support for checking the resource usage before applying a new quota limit",
    ),
    "quota-check-limit-default": (
        "Quota engine limit check by default",
        "By default, the Neutron quota engine checks the resource usage before applying a "
        "new quota limit",
    ),
    "standard-attr-tag": (
        "Tag support for resources with standard attribute: subnet, router, network, "
        "subnetpool, port, security_group, floatingip",
        "Enables to set tag on resources with standard attribute.",
    ),
    # The tags API on networks as the older "tag" extension named it (Tempest's TagsTest).
    "tag": ("Tag support", "Enables to set tag on resources."),
    "service-type": (
        "Neutron Service Type Management",
        "API for retrieving service providers for Neutron advanced services",
    ),
    # Routers, floating IPs, port forwardings (routers.py, router_*.py, floatingips.py,
    # port_forwardings.py).
    "router": (
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access "
        "to external networks via a NAT gateway.",
    ),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "extraroute-atomic": (
        "Atomically add/remove extra routes",
        "Edit extra routes of a router on server side by atomically adding/removing extra routes",
    ),
    "ext-gw-mode": (
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the "
        "external gateway",
    ),
    "dvr": ("Distributed Virtual Router", "Enables configuration of Distributed Virtual Routers."),
    "l3-ha": ("HA Router extension", "Adds HA capability to routers."),
    "router_availability_zone": (
        "Router Availability Zone",
        "Availability zone support for router.",
    ),
    "router-admin-state-down-before-update": (
        "Enforce Router's Admin State Down Before Update Extension",
        "Ensure that the admin state of a router is DOWN (admin_state_up=False) before "
        "updating the distributed attribute",
    ),
    "fip-port-details": (
        "Floating IP Port Details Extension",
        "Add port_details attribute to Floating IP resource",
    ),
    "floatingip-pools": ("Floating IP Pools Extension", "Provides a floating IP pools API."),
    "floating-ip-port-forwarding": (
        "Floating IP Port Forwarding",
        "Allow port forwarding from floating IP port to an internal port",
    ),
    "floating-ip-port-forwarding-description": (
        "Floating IP Port Forwarding new attribute description",
        "Add a description field to Port Forwarding rules",
    ),
    "floating-ip-port-forwarding-detail": (
        "Floating IP Port Forwarding Detail",
        "Allow list floating ip return more port forwarding data, include'id' and "
        "'internal_port_id'",
    ),
    "expose-port-forwarding-in-fip": (
        "Expose Floating IP port forwardings",
        "Expose port forwarding fields in floating IP response",
    ),
    # Agents and their schedulers (agents.py, agent_scheduler_api.py); the zones
    # availability_zones.py lists come from the agents.
    "agent": ("agent", "The agent management extension."),
    "dhcp_agent_scheduler": ("DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    "l3_agent_scheduler": ("L3 Agent Scheduler", "Schedule routers among l3 agents"),
    # Subnets, subnet pools, address scopes, IP availability (subnets.py, subnetpools.py,
    # address_scopes.py, ip_availability.py).
    "subnet_allocation": (
        "Subnet Allocation",
        "Enables allocation of subnets from a subnet pool",
    ),
    "default-subnetpools": (
        "Default Subnetpools",
        "Provides ability to mark and use a subnetpool as the default.",
    ),
    "subnetpool-prefix-ops": (
        "Subnet Pool Prefix Operations",
        "Provides support for adjusting the prefix list of subnet pools",
    ),
    "subnet_onboard": (
        "Subnet Onboard",
        "Provides support for onboarding subnets into subnet pools",
    ),
    "address-scope": ("Address scope", "Address scopes extension."),
    "subnet-service-types": (
        "Subnet service types",
        "Provides ability to set the subnet service_types field",
    ),
    "subnet-external-network": (
        "Subnet belongs to an external network",
        "Informs if the subnet belongs to an external network",
    ),
    "network-ip-availability": (
        "Network IP Availability",
        "Provides IP availability data for each network and subnet.",
    ),
}


def _body(alias: str) -> dict[str, Any]:
    name, description = EXTENSIONS[alias]
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": UPDATED,
        "links": [],
    }


def list_extensions(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return {"extensions": [_body(alias) for alias in sorted(EXTENSIONS)]}


def show(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    alias = request.path_params["alias"]
    if alias not in EXTENSIONS:
        raise errors.not_found("ExtensionNotFound", f"Extension with alias {alias} does not exist")
    return {"extension": _body(alias)}


ROUTES = [
    rest.Route("GET", "/v2.0/extensions", list_extensions, no_db=True),
    rest.Route("GET", "/v2.0/extensions/{alias}", show, no_db=True),
    # Registered here because api.MODULES lists no module of its own for it.
    *service_providers.ROUTES,
]
