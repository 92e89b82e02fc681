"""The networking service's default policy: Neutron's secure-RBAC defaults.

Neutron's rules use custom checks (``field:networks:shared=True``, parent
owners looked up by the engine). Here the API fills those facts into the
target instead, under the keys the rules read: ``network:project_id`` (the
owner of the network a port or subnet is on), ``shared`` and ``external``
(``"True"``/``"False"``), ``network_device`` / ``compute_device`` (whether a
port's ``device_owner`` starts with ``network:`` / ``compute:``),
``ext_parent:project_id`` and ``security_group:project_id``, and
``wildcard_target`` for RBAC policies aimed at every project.
"""

from __future__ import annotations

from oslo_policy import policy

ADMIN = "rule:admin_only"
MEMBER_OWNER = f"({ADMIN}) or (role:member and project_id:%(project_id)s)"
READER_OWNER = f"({ADMIN}) or (role:reader and project_id:%(project_id)s)"
PROJECT = ["project"]


def _rule(name: str, check: str, description: str = "") -> policy.RuleDefault:
    return policy.RuleDefault(
        name=name,
        check_str=check,
        scope_types=PROJECT,
        description=description or name.replace("_", " "),
    )


def _base(name: str, check: str) -> policy.RuleDefault:
    return policy.RuleDefault(name=name, check_str=check, description=name)


BASE = [
    _base("context_is_admin", "role:admin"),
    _base("admin_only", "rule:context_is_admin"),
    _base("service_api", "role:service"),
    _base("context_is_advsvc", "role:advsvc"),
    _base("owner", "project_id:%(project_id)s"),
    _base("admin_or_owner", "rule:context_is_admin or rule:owner"),
    _base("network_owner", "project_id:%(network:project_id)s"),
    _base("admin_or_network_owner", "rule:context_is_admin or rule:network_owner"),
    _base("ext_parent_owner", "project_id:%(ext_parent:project_id)s"),
    _base("sg_owner", "project_id:%(security_group:project_id)s"),
    _base("shared", "'True':%(shared)s"),
    _base("external", "'True':%(external)s"),
    _base("network_device", "'True':%(network_device)s"),
    _base("compute_device", "'True':%(compute_device)s"),
    _base("regular_user", ""),
    _base("default", "rule:admin_or_owner"),
]

NETWORK_OWNER_MEMBER = f"({ADMIN}) or (rule:service_api) or role:member and rule:network_owner"


def _crud_tags(resource: str, read: str, write: str) -> list[policy.RuleDefault]:
    return [
        _rule(f"create_{resource}:tags", write),
        _rule(f"get_{resource}:tags", read),
        _rule(f"update_{resource}:tags", write),
        _rule(f"delete_{resource}:tags", write),
    ]


NETWORK_READ = (
    f"({ADMIN}) or (role:reader and project_id:%(project_id)s) or rule:service_api or "
    "rule:shared or rule:external or rule:context_is_advsvc"
)
SUBNET_READ = (
    "role:reader and project_id:%(project_id)s or rule:shared or rule:external or "
    f"({ADMIN}) or (role:reader and rule:network_owner) or rule:service_api"
)
SUBNET_WRITE = (
    f"role:member and project_id:%(project_id)s or ({ADMIN}) or "
    "(role:member and rule:network_owner)"
)

RULES: list[policy.RuleDefault] = [
    *BASE,
    # Networks.
    _rule("create_network", MEMBER_OWNER),
    _rule("get_network", NETWORK_READ),
    _rule("update_network", MEMBER_OWNER),
    _rule("delete_network", MEMBER_OWNER),
    *[
        _rule(f"{verb}_network:{attr}", ADMIN)
        for verb in ("create", "update")
        for attr in (
            "shared",
            "router:external",
            "is_default",
            "segments",
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        )
    ],
    *[
        _rule(f"get_network:{attr}", ADMIN)
        for attr in (
            "segments",
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        )
    ],
    _rule("create_network:port_security_enabled", MEMBER_OWNER),
    _rule("update_network:port_security_enabled", MEMBER_OWNER),
    *_crud_tags("network", NETWORK_READ, MEMBER_OWNER),
    _rule("get_network_ip_availability", f"({ADMIN}) or (rule:service_api)"),
    # Subnets.
    _rule("create_subnet", f"({ADMIN}) or (role:member and rule:network_owner)"),
    _rule("create_subnet:segment_id", ADMIN),
    _rule("create_subnet:service_types", ADMIN),
    _rule("get_subnet", SUBNET_READ),
    _rule("get_subnet:segment_id", ADMIN),
    _rule("update_subnet", SUBNET_WRITE),
    _rule("update_subnet:segment_id", ADMIN),
    _rule("update_subnet:service_types", ADMIN),
    _rule("delete_subnet", SUBNET_WRITE),
    *_crud_tags("subnet", SUBNET_READ, SUBNET_WRITE),
    # Subnet pools and address scopes.
    _rule("create_subnetpool", MEMBER_OWNER),
    _rule("create_subnetpool:shared", ADMIN),
    _rule("create_subnetpool:is_default", ADMIN),
    _rule("get_subnetpool", f"{READER_OWNER} or 'True':%(shared)s"),
    _rule("update_subnetpool", MEMBER_OWNER),
    _rule("update_subnetpool:is_default", ADMIN),
    _rule("delete_subnetpool", MEMBER_OWNER),
    *_crud_tags("subnetpool", f"{READER_OWNER} or 'True':%(shared)s", MEMBER_OWNER),
    _rule("onboard_network_subnets", MEMBER_OWNER),
    _rule("add_prefixes", MEMBER_OWNER),
    _rule("remove_prefixes", MEMBER_OWNER),
    _rule("create_address_scope", MEMBER_OWNER),
    _rule("create_address_scope:shared", ADMIN),
    _rule("get_address_scope", f"{READER_OWNER} or 'True':%(shared)s"),
    _rule("update_address_scope", MEMBER_OWNER),
    _rule("update_address_scope:shared", ADMIN),
    _rule("delete_address_scope", MEMBER_OWNER),
    # Ports.
    _rule("create_port", f"{NETWORK_OWNER_MEMBER} or rule:shared"),
    _rule("create_port:device_id", f"{MEMBER_OWNER} or rule:service_api"),
    _rule(
        "create_port:device_owner",
        f"not rule:network_device or ({ADMIN}) or (rule:service_api) or "
        "role:member and rule:network_owner",
    ),
    _rule("create_port:mac_address", NETWORK_OWNER_MEMBER),
    _rule("create_port:fixed_ips", f"{NETWORK_OWNER_MEMBER} or rule:shared"),
    _rule("create_port:fixed_ips:ip_address", NETWORK_OWNER_MEMBER),
    _rule("create_port:fixed_ips:subnet_id", f"{NETWORK_OWNER_MEMBER} or rule:shared"),
    _rule("create_port:port_security_enabled", NETWORK_OWNER_MEMBER),
    _rule("create_port:binding:host_id", f"({ADMIN}) or (rule:service_api)"),
    _rule("create_port:binding:profile", "rule:service_api or rule:admin_only"),
    _rule("create_port:binding:vnic_type", f"{MEMBER_OWNER} or rule:service_api"),
    _rule(
        "create_port:allowed_address_pairs",
        f"({ADMIN}) or (role:member and rule:network_owner) or rule:service_api",
    ),
    *[
        _rule(
            f"{verb}_port:allowed_address_pairs:{key}",
            f"({ADMIN}) or (role:member and rule:network_owner) or rule:service_api",
        )
        for verb in ("create", "update")
        for key in ("mac_address", "ip_address")
    ],
    _rule(
        "get_port",
        f"({ADMIN}) or (rule:service_api) or role:reader and rule:network_owner or "
        "role:reader and project_id:%(project_id)s",
    ),
    *[
        _rule(f"get_port:binding:{attr}", f"({ADMIN}) or (rule:service_api)")
        for attr in ("vif_type", "vif_details", "host_id", "profile")
    ],
    _rule(
        "update_port",
        f"({ADMIN}) or (rule:service_api) or role:member and project_id:%(project_id)s",
    ),
    _rule("update_port:device_id", f"{MEMBER_OWNER} or rule:service_api"),
    _rule(
        "update_port:device_owner",
        f"not rule:network_device or ({ADMIN}) or (rule:service_api) or "
        "role:member and rule:network_owner",
    ),
    _rule(
        "update_port:mac_address",
        f"({ADMIN}) or (rule:service_api) or role:manager and rule:network_owner",
    ),
    _rule("update_port:fixed_ips", NETWORK_OWNER_MEMBER),
    _rule("update_port:fixed_ips:ip_address", NETWORK_OWNER_MEMBER),
    _rule("update_port:fixed_ips:subnet_id", f"{NETWORK_OWNER_MEMBER} or rule:shared"),
    _rule("update_port:port_security_enabled", NETWORK_OWNER_MEMBER),
    _rule("update_port:binding:host_id", f"({ADMIN}) or (rule:service_api)"),
    _rule("update_port:binding:profile", "rule:service_api or rule:admin_only"),
    _rule(
        "update_port:binding:vnic_type",
        f"({ADMIN}) or (rule:service_api) or role:member and project_id:%(project_id)s",
    ),
    _rule(
        "update_port:allowed_address_pairs",
        f"({ADMIN}) or (role:member and rule:network_owner) or rule:service_api",
    ),
    _rule(
        "delete_port",
        f"({ADMIN}) or (rule:service_api) or (not rule:compute_device and "
        "(role:member and rule:network_owner or role:member and project_id:%(project_id)s))",
    ),
    *_crud_tags(
        "port",
        "rule:context_is_advsvc or (rule:admin_only) or (role:reader and "
        "rule:network_owner) or role:reader and project_id:%(project_id)s",
        MEMBER_OWNER,
    ),
    # Routers.
    _rule("create_router", MEMBER_OWNER),
    _rule("create_router:distributed", ADMIN),
    _rule("create_router:ha", ADMIN),
    _rule("create_router:external_gateway_info", MEMBER_OWNER),
    _rule("create_router:external_gateway_info:network_id", MEMBER_OWNER),
    _rule("create_router:external_gateway_info:enable_snat", ADMIN),
    _rule("create_router:external_gateway_info:external_fixed_ips", ADMIN),
    _rule("get_router", READER_OWNER),
    _rule("get_router:distributed", ADMIN),
    _rule("get_router:ha", ADMIN),
    _rule("update_router", MEMBER_OWNER),
    _rule("update_router:distributed", ADMIN),
    _rule("update_router:ha", ADMIN),
    _rule("update_router:external_gateway_info", MEMBER_OWNER),
    _rule("update_router:external_gateway_info:network_id", MEMBER_OWNER),
    _rule("update_router:external_gateway_info:enable_snat", ADMIN),
    _rule("update_router:external_gateway_info:external_fixed_ips", ADMIN),
    _rule("delete_router", MEMBER_OWNER),
    _rule("add_router_interface", MEMBER_OWNER),
    _rule("remove_router_interface", MEMBER_OWNER),
    _rule("add_extraroutes", MEMBER_OWNER),
    _rule("remove_extraroutes", MEMBER_OWNER),
    *_crud_tags("router", READER_OWNER, MEMBER_OWNER),
    # Floating IPs and port forwardings.
    _rule("create_floatingip", MEMBER_OWNER),
    _rule(
        "create_floatingip:floating_ip_address",
        f"({ADMIN}) or (role:manager and project_id:%(project_id)s)",
    ),
    _rule("get_floatingip", READER_OWNER),
    _rule("update_floatingip", MEMBER_OWNER),
    _rule("delete_floatingip", MEMBER_OWNER),
    *_crud_tags("floatingip", READER_OWNER, MEMBER_OWNER),
    _rule("get_floatingip_pool", READER_OWNER),
    _rule(
        "create_floatingip_port_forwarding", f"({ADMIN}) or (role:member and rule:ext_parent_owner)"
    ),
    _rule(
        "get_floatingip_port_forwarding", f"({ADMIN}) or (role:reader and rule:ext_parent_owner)"
    ),
    _rule(
        "update_floatingip_port_forwarding", f"({ADMIN}) or (role:member and rule:ext_parent_owner)"
    ),
    _rule(
        "delete_floatingip_port_forwarding", f"({ADMIN}) or (role:member and rule:ext_parent_owner)"
    ),
    # Security groups.
    _rule("create_security_group", MEMBER_OWNER),
    _rule("get_security_group", f"{READER_OWNER} or rule:shared"),
    _rule("update_security_group", MEMBER_OWNER),
    _rule("delete_security_group", MEMBER_OWNER),
    *_crud_tags("security_group", f"{READER_OWNER} or rule:shared", MEMBER_OWNER),
    _rule("create_security_group_rule", f"({ADMIN}) or (role:member and rule:sg_owner)"),
    _rule("get_security_group_rule", f"({ADMIN}) or (role:reader and rule:sg_owner)"),
    _rule("delete_security_group_rule", f"({ADMIN}) or (role:member and rule:sg_owner)"),
    # RBAC policies.
    _rule("create_rbac_policy", MEMBER_OWNER),
    _rule("create_rbac_policy:target_tenant", f"{ADMIN} or not 'True':%(wildcard_target)s"),
    _rule("create_rbac_policy:target_project", f"{ADMIN} or not 'True':%(wildcard_target)s"),
    _rule("update_rbac_policy", MEMBER_OWNER),
    _rule("update_rbac_policy:target_tenant", f"{ADMIN} or not 'True':%(wildcard_target)s"),
    _rule("update_rbac_policy:target_project", f"{ADMIN} or not 'True':%(wildcard_target)s"),
    _rule("get_rbac_policy", READER_OWNER),
    _rule("delete_rbac_policy", MEMBER_OWNER),
    # Quotas, agents, availability zones, extensions.
    _rule("get_quota", f"({ADMIN}) or (role:reader and project_id:%(project_id)s)"),
    _rule("update_quota", ADMIN),
    _rule("delete_quota", ADMIN),
    _rule("get_agent", ADMIN),
    _rule("update_agent", ADMIN),
    _rule("delete_agent", ADMIN),
    _rule("create_dhcp-network", ADMIN),
    _rule("get_dhcp-networks", ADMIN),
    _rule("delete_dhcp-network", ADMIN),
    _rule("create_l3-router", ADMIN),
    _rule("get_l3-routers", ADMIN),
    _rule("delete_l3-router", ADMIN),
    _rule("get_dhcp-agents", ADMIN),
    _rule("get_l3-agents", ADMIN),
    _rule("get_availability_zone", "role:reader"),
    _rule("get_service_provider", "role:reader"),
]


def list_rules() -> list[policy.RuleDefault]:
    return list(RULES)
