"""The compute service's default policy: Nova's secure-RBAC defaults.

Every API rule is project-scoped, as in Nova. Five personas cover almost all of
them: ``ADMIN`` (any project's admin is a cloud admin), ``MANAGER``, ``MEMBER``
and ``READER`` of the target's project (each or admin; roles imply downwards:
admin > manager > member > reader), and ``SERVICE`` (other services' users).

The API fills the target with the keys the rules read:
``project_id`` (the project owning the server, server group, quota or usage
acted on) and ``user_id`` (the owner of a keypair). Where Nova passes no target,
it checks against the caller's own ``{"project_id", "user_id"}``; do the same.
An operator's ``<state-dir>/policy/compute.yaml`` overrides any rule here.
"""

from __future__ import annotations

from oslo_policy import policy

ADMIN = "rule:context_is_admin"
MANAGER = "rule:project_manager_or_admin"
MEMBER = "rule:project_member_or_admin"
READER = "rule:project_reader_or_admin"
SERVICE = "rule:service_or_admin"
ANYONE = "@"
NOBODY = "!"
KEYPAIR_OWNER = f"({ADMIN}) or user_id:%(user_id)s"

PROJECT = ["project"]

# (name, check string, description): the name is appended to its group's prefix.
Row = tuple[str, str, str]

# Nova's base rules carry no scope. Its two legacy aliases test ``is_admin:True``,
# which our credentials lack: they point at context_is_admin instead.
BASE: list[Row] = [
    ("context_is_admin", "role:admin", "What makes a caller a cloud administrator"),
    ("admin_or_owner", f"{ADMIN} or project_id:%(project_id)s", "Legacy: admin or owner"),
    ("admin_api", ADMIN, "Legacy: admin only"),
    ("project_manager_api", "role:manager and project_id:%(project_id)s", "Project manager"),
    ("project_member_api", "role:member and project_id:%(project_id)s", "Project member"),
    ("project_reader_api", "role:reader and project_id:%(project_id)s", "Project reader"),
    ("service_api", "role:service", "Service-to-service calls"),
    ("project_manager_or_admin", f"rule:project_manager_api or {ADMIN}", "Manager or admin"),
    ("project_member_or_admin", f"rule:project_member_api or {ADMIN}", "Member or admin"),
    ("project_reader_or_admin", f"rule:project_reader_api or {ADMIN}", "Reader or admin"),
    ("service_or_admin", f"rule:service_api or {ADMIN}", "Service user or admin"),
]

SERVERS: list[Row] = [
    ("index", READER, "List servers"),
    ("detail", READER, "List servers with details"),
    ("index:get_all_tenants", ADMIN, "List servers of all projects"),
    ("detail:get_all_tenants", ADMIN, "List servers of all projects with details"),
    ("allow_all_filters", ADMIN, "Use every filter (not only the user ones) to list servers"),
    ("show", READER, "Show a server"),
    ("show:flavor-extra-specs", READER, "Include the flavor's extra specs in servers (2.47+)"),
    ("show:host_status", ADMIN, "Include host_status in servers, whatever its value"),
    ("show:host_status:unknown-only", ADMIN, "Include host_status only when it is UNKNOWN"),
    ("create", MEMBER, "Create a server"),
    ("create:forced_host", ADMIN, "Create a server forced onto a host/node (no scheduling)"),
    ("create:attach_volume", MEMBER, "Create a server with a volume attached"),
    ("create:attach_network", MEMBER, "Create a server on requested networks or ports"),
    ("create:trusted_certs", MEMBER, "Create a server with trusted image certificates"),
    ("create:zero_disk_flavor", ADMIN, "Boot an image-backed server from a zero-disk flavor"),
    ("delete", MEMBER, "Delete a server"),
    ("update", MEMBER, "Update a server"),
    ("confirm_resize", MEMBER, "Confirm a resize"),
    ("revert_resize", MEMBER, "Revert a resize"),
    ("reboot", MEMBER, "Reboot a server"),
    ("resize", MEMBER, "Resize a server"),
    ("rebuild", MEMBER, "Rebuild a server"),
    ("rebuild:trusted_certs", MEMBER, "Rebuild a server with trusted image certificates"),
    ("create_image", MEMBER, "Snapshot a server into an image"),
    ("create_image:allow_volume_backed", MEMBER, "Snapshot a volume-backed server"),
    ("start", MEMBER, "Start a server"),
    ("stop", MEMBER, "Stop a server"),
    ("trigger_crash_dump", MEMBER, "Trigger a crash dump in a server"),
    ("migrations:show", ADMIN, "Show a live migration of a server"),
    ("migrations:force_complete", MANAGER, "Force a live migration to complete"),
    ("migrations:delete", MANAGER, "Abort a live migration"),
    ("migrations:index", MANAGER, "List a server's live migrations without host details"),
    ("migrations:index:host", ADMIN, "List a server's live migrations with host details"),
]

# Rules Nova names outside the os_compute_api: namespace.
OTHER: list[Row] = [
    ("compute:aggregates:images", ADMIN, "Pre-cache images on an aggregate's hosts"),
    ("compute:server:topology:index", READER, "Show a server's NUMA topology"),
    ("compute:server:topology:host:index", ADMIN, "Show host NUMA ids and CPU pinning too"),
    ("compute:servers:create:requested_destination", ADMIN, "Create on a validated host/node"),
    ("compute:servers:resize:cross_cell", NOBODY, "Resize a server across cells"),
    ("network:attach_external_network", ADMIN, "Attach an unshared external network"),
]

# os_compute_api:<prefix>:<name>; an empty name gives the bare os_compute_api:<prefix>.
GROUPS: dict[str, list[Row]] = {
    "os-admin-actions": [
        ("reset_state", ADMIN, "Reset a server's state (os-resetState)"),
        ("inject_network_info", ADMIN, "Inject network info into a server"),
    ],
    "os-admin-password": [("", MEMBER, "Change a server's admin password (changePassword)")],
    "os-aggregates": [
        ("index", ADMIN, "List aggregates"),
        ("create", ADMIN, "Create an aggregate"),
        ("show", ADMIN, "Show an aggregate"),
        ("update", ADMIN, "Rename an aggregate or change its availability zone"),
        ("delete", ADMIN, "Delete an aggregate"),
        ("add_host", ADMIN, "Add a host to an aggregate"),
        ("remove_host", ADMIN, "Remove a host from an aggregate"),
        ("set_metadata", ADMIN, "Set an aggregate's metadata"),
    ],
    "os-assisted-volume-snapshots": [
        ("create", SERVICE, "Create an assisted volume snapshot"),
        ("delete", SERVICE, "Delete an assisted volume snapshot"),
    ],
    "os-attach-interfaces": [
        ("list", READER, "List a server's port interfaces"),
        ("show", READER, "Show a server's port interface"),
        ("create", MEMBER, "Attach an interface to a server"),
        ("delete", MEMBER, "Detach an interface from a server"),
    ],
    "os-availability-zone": [
        ("list", ANYONE, "List availability zones"),
        ("detail", ADMIN, "List availability zones with their hosts"),
    ],
    "os-baremetal-nodes": [
        ("list", ADMIN, "List bare metal nodes (deprecated Ironic proxy)"),
        ("show", ADMIN, "Show a bare metal node (deprecated Ironic proxy)"),
    ],
    "os-console-auth-tokens": [("", ADMIN, "Show the connection behind a console token")],
    "os-console-output": [("", MEMBER, "Show a server's console output")],
    "os-create-backup": [("", MEMBER, "Back up a server (createBackup)")],
    "os-deferred-delete": [
        ("restore", MEMBER, "Restore a soft-deleted server"),
        ("force", MEMBER, "Delete a soft-deleted server now (forceDelete)"),
    ],
    "os-evacuate": [("", ADMIN, "Evacuate a server from a failed host")],
    "os-extended-server-attributes": [
        ("", ADMIN, "Include the OS-EXT-SRV-ATTR:* attributes in servers"),
    ],
    "extensions": [("", ANYONE, "List or show API extensions")],
    "os-flavor-access": [
        ("", ADMIN, "List the projects that may use a flavor"),
        ("add_tenant_access", ADMIN, "Let a project use a private flavor"),
        ("remove_tenant_access", ADMIN, "Stop a project using a private flavor"),
    ],
    "os-flavor-extra-specs": [
        ("index", READER, "List a flavor's extra specs (also shown in flavors, 2.61+)"),
        ("show", READER, "Show a flavor's extra spec"),
        ("create", ADMIN, "Create extra specs of a flavor"),
        ("update", ADMIN, "Update an extra spec of a flavor"),
        ("delete", ADMIN, "Delete an extra spec of a flavor"),
    ],
    "os-flavor-manage": [
        ("create", ADMIN, "Create a flavor"),
        ("update", ADMIN, "Update a flavor's description"),
        ("delete", ADMIN, "Delete a flavor"),
    ],
    "os-floating-ip-pools": [("", ANYONE, "List floating IP pools (deprecated proxy)")],
    "os-floating-ips": [
        ("list", READER, "List floating IPs (deprecated proxy)"),
        ("show", READER, "Show a floating IP (deprecated proxy)"),
        ("create", MEMBER, "Allocate a floating IP (deprecated proxy)"),
        ("delete", MEMBER, "Release a floating IP (deprecated proxy)"),
        ("add", MEMBER, "Associate a floating IP with a server (deprecated)"),
        ("remove", MEMBER, "Disassociate a floating IP from a server (deprecated)"),
    ],
    "os-hosts": [
        (verb, ADMIN, f"{verb.capitalize()} physical hosts (deprecated)")
        for verb in ("list", "show", "update", "reboot", "shutdown", "start")
    ],
    "os-hypervisors": [
        ("list", ADMIN, "List hypervisors"),
        ("list-detail", ADMIN, "List hypervisors with details"),
        ("statistics", ADMIN, "Show hypervisor statistics summed over compute nodes"),
        ("show", ADMIN, "Show a hypervisor"),
        ("uptime", ADMIN, "Show a hypervisor's uptime"),
        ("search", ADMIN, "Search hypervisors by hostname pattern"),
        ("servers", ADMIN, "List servers on hypervisors matching a hostname pattern"),
    ],
    "os-instance-actions": [
        ("list", READER, "List a server's actions"),
        ("show", READER, "Show a server's action"),
        ("events", ADMIN, "Include events in a server's action (after :show)"),
        ("events:details", ADMIN, "Include event details (2.84+, after :show)"),
    ],
    "os-instance-usage-audit-log": [
        ("list", ADMIN, "List usage audits"),
        ("show", ADMIN, "List usage audits before a given time"),
    ],
    "ips": [
        ("index", READER, "List a server's IP addresses"),
        ("show", READER, "List a server's IP addresses on one network"),
    ],
    "os-keypairs": [
        ("index", KEYPAIR_OWNER, "List keypairs"),
        ("create", KEYPAIR_OWNER, "Create or import a keypair"),
        ("show", KEYPAIR_OWNER, "Show a keypair"),
        ("delete", KEYPAIR_OWNER, "Delete a keypair"),
    ],
    "limits": [
        ("", ANYONE, "Show the caller's project's limits"),
        ("other_project", ADMIN, "Show another project's limits (tenant_id=...)"),
    ],
    "os-lock-server": [
        ("lock", MEMBER, "Lock a server"),
        ("unlock", MEMBER, "Unlock a server"),
        ("unlock:unlock_override", ADMIN, "Unlock a server whoever locked it (after :unlock)"),
    ],
    "os-migrate-server": [
        ("migrate", MANAGER, "Cold migrate a server, the scheduler picking the host"),
        ("migrate:host", ADMIN, "Cold migrate a server to a given host"),
        ("migrate_live", MANAGER, "Live migrate a server, the scheduler picking the host"),
        ("migrate_live:host", ADMIN, "Live migrate a server to a given host"),
    ],
    "os-migrations": [
        ("index", MANAGER, "List migrations without host details"),
        ("index:all_projects", ADMIN, "List migrations of other or all projects"),
        ("index:host", ADMIN, "List migrations with host details"),
    ],
    "os-multinic": [
        ("add", MEMBER, "Add a fixed IP to a server (deprecated)"),
        ("remove", MEMBER, "Remove a fixed IP from a server (deprecated)"),
    ],
    "os-networks": [
        ("list", READER, "List networks (deprecated proxy)"),
        ("show", READER, "Show a network (deprecated proxy)"),
    ],
    "os-pause-server": [
        ("pause", MEMBER, "Pause a server"),
        ("unpause", MEMBER, "Unpause a server"),
    ],
    "os-quota-class-sets": [
        ("show", ADMIN, "Show a quota class"),
        ("update", ADMIN, "Update a quota class"),
    ],
    "os-quota-sets": [
        ("show", READER, "Show a project's quotas"),
        ("detail", READER, "Show a project's quotas with usage"),
        ("defaults", ANYONE, "Show the default quotas"),
        ("update", ADMIN, "Update a project's quotas"),
        ("delete", ADMIN, "Revert a project's quotas to the defaults"),
    ],
    "os-remote-consoles": [("", MEMBER, "Get a URL to a server's remote console")],
    "os-rescue": [("", MEMBER, "Rescue a server")],
    "os-unrescue": [("", MEMBER, "Unrescue a server")],
    "os-security-groups": [
        ("get", READER, "List security groups (deprecated proxy)"),
        ("show", READER, "Show a security group (deprecated proxy)"),
        ("create", MEMBER, "Create a security group (deprecated proxy)"),
        ("update", MEMBER, "Update a security group (deprecated proxy)"),
        ("delete", MEMBER, "Delete a security group (deprecated proxy)"),
        ("rule:create", MEMBER, "Create a security group rule (deprecated proxy)"),
        ("rule:delete", MEMBER, "Delete a security group rule (deprecated proxy)"),
        ("list", READER, "List a server's security groups"),
        ("add", MEMBER, "Add a security group to a server"),
        ("remove", MEMBER, "Remove a security group from a server"),
    ],
    "os-server-diagnostics": [("", ADMIN, "Show a server's diagnostics")],
    "os-server-external-events": [("create", SERVICE, "Send external events to servers")],
    "os-server-groups": [
        ("index", READER, "List server groups"),
        ("index:all_projects", ADMIN, "List server groups of all projects"),
        ("show", READER, "Show a server group"),
        ("create", MEMBER, "Create a server group"),
        ("delete", MEMBER, "Delete a server group"),
    ],
    "server-metadata": [
        ("index", READER, "List a server's metadata"),
        ("show", READER, "Show a server's metadata item"),
        ("create", MEMBER, "Add metadata to a server"),
        ("update_all", MEMBER, "Replace a server's metadata"),
        ("update", MEMBER, "Set a server's metadata item"),
        ("delete", MEMBER, "Delete a server's metadata item"),
    ],
    "os-server-password": [
        ("show", READER, "Show a server's encrypted admin password"),
        ("clear", MEMBER, "Clear a server's encrypted admin password"),
    ],
    "os-server-shares": [
        ("index", READER, "List a server's shares"),
        ("show", READER, "Show a server's share"),
        ("create", MEMBER, "Attach a share to a server"),
        ("delete", MEMBER, "Detach a share from a server"),
    ],
    "os-server-tags": [
        ("index", READER, "List a server's tags"),
        ("show", READER, "Check a server has a tag"),
        ("update", MEMBER, "Add a tag to a server"),
        ("update_all", MEMBER, "Replace a server's tags"),
        ("delete", MEMBER, "Remove a tag from a server"),
        ("delete_all", MEMBER, "Remove all tags from a server"),
    ],
    "os-services": [
        ("list", ADMIN, "List compute services"),
        ("update", ADMIN, "Enable, disable or force down a compute service"),
        ("delete", ADMIN, "Delete a compute service"),
    ],
    "os-shelve": [
        ("shelve", MEMBER, "Shelve a server"),
        ("unshelve", MEMBER, "Unshelve a server"),
        ("unshelve_to_host", ADMIN, "Unshelve an offloaded server onto a given host"),
        ("shelve_offload", ADMIN, "Offload a shelved server"),
    ],
    "os-simple-tenant-usage": [
        ("show", READER, "Show a project's usage"),
        ("list", ADMIN, "List every project's usage"),
    ],
    "os-suspend-server": [
        ("suspend", MEMBER, "Suspend a server"),
        ("resume", MEMBER, "Resume a suspended server"),
    ],
    "os-tenant-networks": [
        ("list", READER, "List project networks (deprecated proxy)"),
        ("show", READER, "Show a project network (deprecated proxy)"),
    ],
    "os-volumes": [
        ("list", READER, "List volumes (deprecated proxy)"),
        ("detail", READER, "List volumes with details (deprecated proxy)"),
        ("show", READER, "Show a volume (deprecated proxy)"),
        ("create", MEMBER, "Create a volume (deprecated proxy)"),
        ("delete", MEMBER, "Delete a volume (deprecated proxy)"),
        ("snapshots:list", READER, "List snapshots (deprecated proxy)"),
        ("snapshots:detail", READER, "List snapshots with details (deprecated proxy)"),
        ("snapshots:show", READER, "Show a snapshot (deprecated proxy)"),
        ("snapshots:create", MEMBER, "Create a snapshot (deprecated proxy)"),
        ("snapshots:delete", MEMBER, "Delete a snapshot (deprecated proxy)"),
    ],
    "os-volumes-attachments": [
        ("index", READER, "List a server's volume attachments"),
        ("show", READER, "Show a server's volume attachment"),
        ("create", MEMBER, "Attach a volume to a server"),
        ("update", MEMBER, "Update a volume attachment (not its volume)"),
        ("swap", SERVICE, "Swap the volume of an attachment"),
        ("delete", MEMBER, "Detach a volume from a server"),
    ],
}


def _defaults(rows: list[Row], prefix: str, scopes: list[str] | None) -> list[policy.RuleDefault]:
    return [
        policy.RuleDefault(
            name=f"{prefix}{name}".rstrip(":"),
            check_str=check,
            description=description,
            scope_types=scopes,
        )
        for name, check, description in rows
    ]


RULES: list[policy.RuleDefault] = [
    *_defaults(BASE, "", None),
    *_defaults(SERVERS, "os_compute_api:servers:", PROJECT),
    *_defaults(OTHER, "", PROJECT),
    *[
        rule
        for group, rows in GROUPS.items()
        for rule in _defaults(rows, f"os_compute_api:{group}:", PROJECT)
    ],
]


def list_rules() -> list[policy.RuleDefault]:
    return list(RULES)
