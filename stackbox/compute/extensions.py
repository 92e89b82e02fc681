"""The legacy extension list (``/extensions``), which Nova v2.1 still serves.

Microversions replaced extensions; clients that still look (old CLIs, Tempest)
read this list by alias or name. It holds Nova's entries (alias, name,
description) for what stackbox serves, and nothing it does not: an API missing
here is missing from stackbox too. Owners of a compute API add its row when
the API lands.
"""

from __future__ import annotations

from typing import Any

from stackbox import rest
from stackbox.compute import common, errors

# Nova's fixed values for every entry.
NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"
UPDATED = "2014-12-03T00:00:00Z"

# (alias, name, description), in Nova's order (sorted by alias, upper case first).
SERVED: list[tuple[str, str, str]] = [
    ("OS-DCF", "DiskConfig", "Disk Management Extension."),
    ("OS-EXT-AZ", "ExtendedAvailabilityZone", "Extended Availability Zone support."),
    ("OS-EXT-IMG-SIZE", "ImageSize", "Adds image size to image listings."),
    ("OS-EXT-IPS", "ExtendedIps", "Adds type parameter to the ip list."),
    ("OS-EXT-IPS-MAC", "ExtendedIpsMac", "Adds mac address parameter to the ip list."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."),
    ("OS-EXT-STS", "ExtendedStatus", "Extended Status support."),
    ("OS-FLV-DISABLED", "FlavorDisabled", "Support to show the disabled status of a flavor."),
    ("OS-FLV-EXT-DATA", "FlavorExtraData", "Provide additional data for flavors."),
    ("OS-SCH-HNT", "SchedulerHints", "Pass arbitrary key/value pairs to the scheduler."),
    ("OS-SRV-USG", "ServerUsage", "Adds launched_at and terminated_at on Servers."),
    ("os-access-ips", "AccessIPs", "Access IPs support."),
    (
        "os-admin-actions",
        "AdminActions",
        "Enable admin-only server actions Actions include: resetNetwork, "
        "injectNetworkInfo, os-resetState",
    ),
    ("os-admin-password", "AdminPassword", "Admin password management support."),
    ("os-aggregates", "Aggregates", "Admin-only aggregate administration."),
    ("os-attach-interfaces", "AttachInterfaces", "Attach interface support."),
    (
        "os-availability-zone",
        "AvailabilityZone",
        "1. Add availability_zone to the Create Server API. 2. Add availability zones describing.",
    ),
    (
        "os-block-device-mapping-v2-boot",
        "BlockDeviceMappingV2Boot",
        "Allow boot with the new BDM data format.",
    ),
    ("os-config-drive", "ConfigDrive", "Config Drive Extension."),
    ("os-console-output", "ConsoleOutput", "Console log output support, with tailing ability."),
    # Nova removed the XVP consoles API but still lists it (its routes answer 410 Gone,
    # as stackbox's do below); Tempest reads this entry.
    ("os-consoles", "Consoles", "Interactive Console support."),
    ("os-deferred-delete", "DeferredDelete", "Instance deferred delete."),
    ("os-extended-hypervisors", "ExtendedHypervisors", "Extended hypervisors support."),
    (
        "os-extended-quotas",
        "ExtendedQuotas",
        "Adds ability for admins to delete quota and optionally force the update Quota command.",
    ),
    ("os-extended-services", "ExtendedServices", "Extended services support."),
    (
        "os-extended-services-delete",
        "ExtendedServicesDelete",
        "Extended services deletion support.",
    ),
    ("os-extended-status", "ExtendedStatus", "Extended Status support."),
    ("os-extended-volumes", "ExtendedVolumes", "Extended Volumes support."),
    ("os-flavor-access", "FlavorAccess", "Flavor access support."),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."),
    ("os-flavor-manage", "FlavorManage", "Flavor create/delete API support."),
    ("os-flavor-rxtx", "FlavorRxtx", "Support to show the rxtx status of a flavor."),
    ("os-flavor-swap", "FlavorSwap", "Support to show the swap status of a flavor."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("os-hypervisor-status", "HypervisorStatus", "Show hypervisor status."),
    ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."),
    (
        "os-instance-actions",
        "InstanceActions",
        "View a log of actions and events taken on an instance.",
    ),
    ("os-keypairs", "Keypairs", "Keypair Support."),
    ("os-lock-server", "LockServer", "Enable lock/unlock server actions."),
    ("os-migrations", "Migrations", "Provide data on migrations."),
    (
        "os-multiple-create",
        "MultipleCreate",
        "Allow multiple create in the Create Server v2.1 API.",
    ),
    ("os-pause-server", "PauseServer", "Enable pause/unpause server actions."),
    ("os-quota-class-sets", "QuotaClasses", "Quota classes management support."),
    ("os-quota-sets", "Quotas", "Quotas management support."),
    ("os-rescue", "Rescue", "Instance rescue mode."),
    ("os-security-groups", "SecurityGroups", "Security group support."),
    ("os-server-group-quotas", "ServerGroupQuotas", "Adds quota support to server groups."),
    ("os-server-groups", "ServerGroups", "Server group support."),
    (
        "os-server-list-multi-status",
        "ServerListMultiStatus",
        "Allow to filter the servers by a set of status values.",
    ),
    ("os-server-sort-keys", "ServerSortKeys", "Add sorting support in get Server v2 API."),
    ("os-server-start-stop", "ServerStartStop", "Start/Stop instance compute API support."),
    ("os-services", "Services", "Services support."),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension."),
    ("os-suspend-server", "SuspendServer", "Enable suspend/resume server actions."),
    ("os-used-limits", "UsedLimits", "Provide data on limited resources that are being used."),
    (
        "os-used-limits-for-admin",
        "UsedLimitsForAdmin",
        "Provide data to admin on limited resources used by other tenants.",
    ),
    ("os-user-data", "UserData", "Add user_data to the Create Server API."),
    ("os-user-quotas", "UserQuotas", "Project user quota support."),
]


def _entry(alias: str, name: str, description: str) -> dict[str, Any]:
    return {
        "alias": alias,
        "description": description,
        "links": [],
        "name": name,
        "namespace": NAMESPACE,
        "updated": UPDATED,
    }


EXTENSIONS = [_entry(*row) for row in SERVED]
BY_ALIAS = {entry["alias"]: entry for entry in EXTENSIONS}


def index(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:extensions")
    return {"extensions": EXTENSIONS}


def show(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:extensions")
    entry = BY_ALIAS.get(request.path_params["alias"])
    if entry is None:
        raise errors.not_found("The resource could not be found.")
    return {"extension": entry}


def consoles_gone(request: rest.ApiRequest, session: object) -> None:
    raise rest.Gone("This API is gone: it was removed from Nova along with the XVP consoles.")


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/servers/{server_id}/consoles", consoles_gone, no_db=True),
    rest.Route("POST", "/v2.1/servers/{server_id}/consoles", consoles_gone, no_db=True),
    rest.Route("GET", "/v2.1/servers/{server_id}/consoles/{console_id}", consoles_gone, no_db=True),
    rest.Route(
        "DELETE", "/v2.1/servers/{server_id}/consoles/{console_id}", consoles_gone, no_db=True
    ),
    rest.Route("GET", "/v2.1/extensions", index, no_db=True),
    rest.Route("GET", "/v2.1/extensions/{alias}", show, no_db=True),
]
