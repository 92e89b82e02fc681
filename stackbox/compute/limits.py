"""``GET /limits``: the project's absolute limits and what it uses of them (no rate
limits, as Nova since Newton). Admins may ask for another project (``tenant_id``).

The nova-network limits shown before 2.36 (floating IPs, security groups) come from
the compute quotas as in Nova (unlimited unless set through os-quota-sets, nothing
counted as used); the networking service's own quotas are what applies to them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, flavors, microversions, quotas

# Quota resource -> the absolute limits that show it.
LIMIT_NAMES = {
    "ram": ("maxTotalRAMSize",),
    "instances": ("maxTotalInstances",),
    "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",),
    "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"),
    "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",),
    "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",),
    "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}
USED_NAMES = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}
NETWORK = ("floating_ips", "security_groups", "security_group_rules")
INJECTED = ("injected_files", "injected_file_content_bytes")


def _hidden(request: rest.ApiRequest) -> set[str]:
    if microversions.at_least(request, "personality_removed"):
        return set(NETWORK + INJECTED)
    if microversions.at_least(request, "proxy_apis_removed"):
        return set(NETWORK)
    return set()


def absolute(request: rest.ApiRequest, session: Session, project_id: str) -> dict[str, int]:
    hidden = _hidden(request)
    image_meta = not microversions.at_least(request, "image_metadata_limits_removed")
    limits = quotas.limits(session, project_id)
    in_use = quotas.usage(session, project_id)
    body: dict[str, int] = {}
    for resource, names in LIMIT_NAMES.items():
        if resource in hidden:
            continue
        for name in names:
            if name != "maxImageMeta" or image_meta:
                body[name] = limits[resource]
    for name, resource in USED_NAMES.items():
        if resource not in hidden:
            body[name] = in_use[resource]
    return body


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    flavors.strict_query(request, ("tenant_id",), "strict_param_validation")
    common.enforce(request, "os_compute_api:limits")
    project_id = request.context.project_id or ""
    if request.has_arg("tenant_id"):
        project_id = request.arg("tenant_id") or ""
        common.enforce(request, "os_compute_api:limits:other_project")
    return {"limits": {"rate": [], "absolute": absolute(request, session, project_id)}}


ROUTES: list[rest.Route] = [rest.Route("GET", "/v2.1/limits", index)]
