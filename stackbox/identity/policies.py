"""Identity's default policy: Keystone's secure-RBAC defaults.

Readers read, members act on their own things, admins manage. A project-scoped
``admin`` is a cloud administrator, as in Keystone (``rule:admin_required``);
system-scoped readers see everything; domain-scoped readers and managers see and
manage their own domain. An operator's <state-dir>/policy/identity.yaml overrides any rule here.
"""

from __future__ import annotations

from oslo_policy import policy

ADMIN = "rule:admin_required"
SYSTEM_READER = "(role:reader and system_scope:all)"
SYSTEM_ADMIN = "(role:admin and system_scope:all)"
ADMIN_OR_SYSTEM_READER = f"{ADMIN} or {SYSTEM_READER}"
OWNER = "user_id:%(user_id)s"

SYSTEM_PROJECT = ["system", "project"]
ALL_SCOPES = ["system", "domain", "project"]

CRED_OWNER = "user_id:%(target.credential.user_id)s"
TRUSTOR = "user_id:%(target.trust.trustor_user_id)s"
TRUSTEE = "user_id:%(target.trust.trustee_user_id)s"
ROLE_NOT_DOMAIN_SPECIFIC = "(domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s)"


def _grant_targets(role: str) -> str:
    """A domain reader/admin/manager acting on grants whose actor and target are in the domain."""
    pairs = [
        ("user.domain_id", "project.domain_id"),
        ("user.domain_id", "domain.id"),
        ("group.domain_id", "project.domain_id"),
        ("group.domain_id", "domain.id"),
    ]
    parts = [
        f"(role:{role} and domain_id:%(target.{a})s and domain_id:%(target.{b})s)" for a, b in pairs
    ]
    return "(" + " or ".join(parts) + ")"


MANAGER_ROLES = (
    "'manager':%(target.role.name)s or 'member':%(target.role.name)s or "
    "'reader':%(target.role.name)s"
)
GRANT_READ = f"({ADMIN}) or ({SYSTEM_READER} or {_grant_targets('reader')})"
GRANT_CHECK = (
    f"({ADMIN}) or ({SYSTEM_READER} or {_grant_targets('reader')} and {ROLE_NOT_DOMAIN_SPECIFIC})"
)
GRANT_WRITE = (
    f"({ADMIN}) or {_grant_targets('admin')} and {ROLE_NOT_DOMAIN_SPECIFIC} or "
    f"{_grant_targets('manager')} and rule:domain_managed_target_role"
)

PROJECT_READ = (
    f"({ADMIN}) or {SYSTEM_READER} or "
    "(role:reader and domain_id:%(target.project.domain_id)s and "
    "not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s"
)
PROJECT_WRITE = (
    f"({ADMIN}) or (role:manager and domain_id:%(target.project.domain_id)s and "
    "not None:%(target.project.domain_id)s)"
)


def _rule(name: str, check: str, scopes: list[str] | None, description: str) -> policy.RuleDefault:
    return policy.RuleDefault(
        name=f"identity:{name}", check_str=check, scope_types=scopes, description=description
    )


BASE = [
    policy.RuleDefault("admin_required", "role:admin or is_admin:1"),
    policy.RuleDefault("service_role", "role:service"),
    policy.RuleDefault("service_or_admin", "rule:admin_required or rule:service_role"),
    policy.RuleDefault("owner", OWNER),
    policy.RuleDefault("admin_or_owner", "rule:admin_required or rule:owner"),
    policy.RuleDefault("token_subject", "user_id:%(target.token.user_id)s"),
    policy.RuleDefault("admin_or_token_subject", "rule:admin_required or rule:token_subject"),
    policy.RuleDefault(
        "service_admin_or_token_subject", "rule:service_or_admin or rule:token_subject"
    ),
    policy.RuleDefault("domain_managed_target_role", MANAGER_ROLES),
]


def _crud(
    kind: str,
    read: str = ADMIN_OR_SYSTEM_READER,
    write: str = ADMIN,
    scopes: list[str] | None = None,
    plural: str | None = None,
) -> list[policy.RuleDefault]:
    scopes = scopes or SYSTEM_PROJECT
    plural = plural or f"{kind}s"
    return [
        _rule(f"get_{kind}", read, scopes, f"Show {kind} details."),
        _rule(f"list_{plural}", read, scopes, f"List {plural}."),
        _rule(f"create_{kind}", write, scopes, f"Create a {kind}."),
        _rule(f"update_{kind}", write, scopes, f"Update a {kind}."),
        _rule(f"delete_{kind}", write, scopes, f"Delete a {kind}."),
    ]


RULES: list[policy.RuleDefault] = [
    *BASE,
    # Tokens and the auth API.
    _rule(
        "check_token",
        f"{ADMIN_OR_SYSTEM_READER} or rule:token_subject",
        ALL_SCOPES,
        "Check a token.",
    ),
    _rule(
        "validate_token",
        f"{ADMIN_OR_SYSTEM_READER} or rule:service_role or rule:token_subject",
        ALL_SCOPES,
        "Validate a token.",
    ),
    _rule("revoke_token", f"{ADMIN} or rule:token_subject", ALL_SCOPES, "Revoke a token."),
    _rule("get_auth_catalog", "", None, "Get the catalog of a token."),
    _rule("get_auth_projects", "", None, "Projects a token may scope to."),
    _rule("get_auth_domains", "", None, "Domains a token may scope to."),
    _rule("get_auth_system", "", None, "Whether a token may scope to the system."),
    # Domains.
    _rule(
        "get_domain",
        f"{ADMIN_OR_SYSTEM_READER} or token.domain.id:%(target.domain.id)s or "
        "token.project.domain.id:%(target.domain.id)s",
        ALL_SCOPES,
        "Show a domain.",
    ),
    _rule(
        "list_domains",
        f"{ADMIN_OR_SYSTEM_READER} or (role:reader and domain_id:%(target.domain.id)s)",
        ALL_SCOPES,
        "List domains.",
    ),
    _rule("create_domain", ADMIN, SYSTEM_PROJECT, "Create a domain."),
    _rule("update_domain", ADMIN, SYSTEM_PROJECT, "Update a domain."),
    _rule("delete_domain", ADMIN, SYSTEM_PROJECT, "Delete a domain."),
    # Projects and their tags.
    _rule("get_project", PROJECT_READ, ALL_SCOPES, "Show a project."),
    _rule(
        "list_projects",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and domain_id:%(target.domain_id)s)",
        ALL_SCOPES,
        "List projects.",
    ),
    _rule(
        "list_user_projects",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and "
        "domain_id:%(target.user.domain_id)s) or user_id:%(target.user.id)s",
        ALL_SCOPES,
        "List the projects of a user.",
    ),
    _rule("create_project", PROJECT_WRITE, ALL_SCOPES, "Create a project."),
    _rule("update_project", PROJECT_WRITE, ALL_SCOPES, "Update a project."),
    _rule("delete_project", PROJECT_WRITE, ALL_SCOPES, "Delete a project."),
    _rule("list_project_tags", PROJECT_READ, ALL_SCOPES, "List a project's tags."),
    _rule("get_project_tag", PROJECT_READ, ALL_SCOPES, "Check a project tag."),
    _rule("update_project_tags", PROJECT_WRITE, ALL_SCOPES, "Replace a project's tags."),
    _rule("create_project_tag", PROJECT_WRITE, ALL_SCOPES, "Add a project tag."),
    _rule("delete_project_tags", PROJECT_WRITE, ALL_SCOPES, "Remove all project tags."),
    _rule("delete_project_tag", PROJECT_WRITE, ALL_SCOPES, "Remove a project tag."),
    # Users.
    _rule(
        "get_user",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and "
        "token.domain.id:%(target.user.domain_id)s) or user_id:%(target.user.id)s",
        ALL_SCOPES,
        "Show a user.",
    ),
    _rule(
        "list_users",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and domain_id:%(target.domain_id)s)",
        ALL_SCOPES,
        "List users.",
    ),
    _rule(
        "create_user",
        f"({ADMIN}) or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        ALL_SCOPES,
        "Create a user.",
    ),
    _rule(
        "update_user",
        f"({ADMIN}) or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        ALL_SCOPES,
        "Update a user.",
    ),
    _rule(
        "delete_user",
        f"({ADMIN}) or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        ALL_SCOPES,
        "Delete a user.",
    ),
    # Groups.
    _rule(
        "get_group",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and domain_id:%(target.group.domain_id)s)",
        ALL_SCOPES,
        "Show a group.",
    ),
    _rule(
        "list_groups",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and domain_id:%(target.group.domain_id)s)",
        ALL_SCOPES,
        "List groups.",
    ),
    _rule(
        "list_groups_for_user",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and "
        "domain_id:%(target.user.domain_id)s) or user_id:%(user_id)s",
        ALL_SCOPES,
        "List a user's groups.",
    ),
    _rule(
        "create_group",
        f"({ADMIN}) or (role:manager and domain_id:%(target.group.domain_id)s)",
        ALL_SCOPES,
        "Create a group.",
    ),
    _rule(
        "update_group",
        f"({ADMIN}) or (role:manager and domain_id:%(target.group.domain_id)s)",
        ALL_SCOPES,
        "Update a group.",
    ),
    _rule(
        "delete_group",
        f"({ADMIN}) or (role:manager and domain_id:%(target.group.domain_id)s)",
        ALL_SCOPES,
        "Delete a group.",
    ),
    _rule(
        "list_users_in_group",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and domain_id:%(target.group.domain_id)s)",
        ALL_SCOPES,
        "List a group's members.",
    ),
    _rule(
        "check_user_in_group",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and "
        "domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",
        ALL_SCOPES,
        "Check group membership.",
    ),
    _rule(
        "add_user_to_group",
        f"({ADMIN}) or (role:manager and domain_id:%(target.group.domain_id)s and "
        "domain_id:%(target.user.domain_id)s)",
        ALL_SCOPES,
        "Add a user to a group.",
    ),
    _rule(
        "remove_user_from_group",
        f"({ADMIN}) or (role:manager and domain_id:%(target.group.domain_id)s and "
        "domain_id:%(target.user.domain_id)s)",
        ALL_SCOPES,
        "Remove a user from a group.",
    ),
    # Roles, domain roles and implied roles.
    _rule(
        "get_role",
        f"({ADMIN_OR_SYSTEM_READER}) or (role:manager and rule:domain_managed_target_role)",
        ALL_SCOPES,
        "Show a role.",
    ),
    _rule(
        "list_roles",
        f"({ADMIN_OR_SYSTEM_READER}) or (role:manager and not domain_id:None)",
        ALL_SCOPES,
        "List roles.",
    ),
    _rule("create_role", ADMIN, SYSTEM_PROJECT, "Create a role."),
    _rule("update_role", ADMIN, SYSTEM_PROJECT, "Update a role."),
    _rule("delete_role", ADMIN, SYSTEM_PROJECT, "Delete a role."),
    _rule("get_domain_role", ADMIN_OR_SYSTEM_READER, SYSTEM_PROJECT, "Show a domain role."),
    _rule("list_domain_roles", ADMIN_OR_SYSTEM_READER, SYSTEM_PROJECT, "List domain roles."),
    _rule("create_domain_role", ADMIN, SYSTEM_PROJECT, "Create a domain role."),
    _rule("update_domain_role", ADMIN, SYSTEM_PROJECT, "Update a domain role."),
    _rule("delete_domain_role", ADMIN, SYSTEM_PROJECT, "Delete a domain role."),
    _rule("get_implied_role", ADMIN_OR_SYSTEM_READER, SYSTEM_PROJECT, "Show an implied role."),
    _rule("list_implied_roles", ADMIN_OR_SYSTEM_READER, SYSTEM_PROJECT, "List implied roles."),
    _rule("create_implied_role", ADMIN, SYSTEM_PROJECT, "Create an implied role."),
    _rule("delete_implied_role", ADMIN, SYSTEM_PROJECT, "Delete an implied role."),
    _rule(
        "list_role_inference_rules",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "List all role inference rules.",
    ),
    _rule("check_implied_role", ADMIN_OR_SYSTEM_READER, SYSTEM_PROJECT, "Check an implied role."),
    # Grants and role assignments.
    _rule("check_grant", GRANT_CHECK, ALL_SCOPES, "Check a role grant."),
    _rule("list_grants", GRANT_READ, ALL_SCOPES, "List role grants."),
    _rule("create_grant", GRANT_WRITE, ALL_SCOPES, "Grant a role."),
    _rule("revoke_grant", GRANT_WRITE, ALL_SCOPES, "Revoke a role grant."),
    _rule(
        "list_system_grants_for_user",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "List a user's system roles.",
    ),
    _rule(
        "check_system_grant_for_user",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "Check a user's system role.",
    ),
    _rule("create_system_grant_for_user", ADMIN, SYSTEM_PROJECT, "Grant a user a system role."),
    _rule("revoke_system_grant_for_user", ADMIN, SYSTEM_PROJECT, "Revoke a user's system role."),
    _rule(
        "list_system_grants_for_group",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "List a group's system roles.",
    ),
    _rule(
        "check_system_grant_for_group",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "Check a group's system role.",
    ),
    _rule("create_system_grant_for_group", ADMIN, SYSTEM_PROJECT, "Grant a group a system role."),
    _rule("revoke_system_grant_for_group", ADMIN, SYSTEM_PROJECT, "Revoke a group's system role."),
    _rule(
        "list_role_assignments",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and domain_id:%(target.domain_id)s "
        "and not None:%(target.domain_id)s)",
        ALL_SCOPES,
        "List role assignments.",
    ),
    _rule(
        "list_role_assignments_for_tree",
        f"({ADMIN}) or {SYSTEM_READER} or (role:reader and domain_id:%(target.domain_id)s "
        "and not None:%(target.domain_id)s)",
        ALL_SCOPES,
        "List role assignments of a project subtree.",
    ),
    # Catalog administration.
    *_crud("service"),
    *_crud("endpoint"),
    _rule("get_region", "", ALL_SCOPES, "Show a region."),
    _rule("list_regions", "", ALL_SCOPES, "List regions."),
    _rule("create_region", ADMIN, SYSTEM_PROJECT, "Create a region."),
    _rule("update_region", ADMIN, SYSTEM_PROJECT, "Update a region."),
    _rule("delete_region", ADMIN, SYSTEM_PROJECT, "Delete a region."),
    *_crud("endpoint_group"),
    _rule(
        "list_projects_associated_with_endpoint_group",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "List projects of an endpoint group.",
    ),
    _rule(
        "list_endpoints_associated_with_endpoint_group",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "List endpoints of an endpoint group.",
    ),
    _rule(
        "get_endpoint_group_in_project",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "Check an endpoint group of a project.",
    ),
    _rule(
        "list_endpoint_groups_for_project",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "List endpoint groups of a project.",
    ),
    _rule(
        "add_endpoint_group_to_project",
        ADMIN,
        SYSTEM_PROJECT,
        "Associate an endpoint group with a project.",
    ),
    _rule(
        "remove_endpoint_group_from_project",
        ADMIN,
        SYSTEM_PROJECT,
        "Dissociate an endpoint group from a project.",
    ),
    _rule(
        "list_projects_for_endpoint",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "List projects of an endpoint.",
    ),
    _rule("add_endpoint_to_project", ADMIN, SYSTEM_PROJECT, "Associate an endpoint."),
    _rule(
        "check_endpoint_in_project",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "Check an endpoint association.",
    ),
    _rule(
        "list_endpoints_for_project",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "List endpoints of a project.",
    ),
    _rule("remove_endpoint_from_project", ADMIN, SYSTEM_PROJECT, "Dissociate an endpoint."),
    # Policy blobs (OS-POLICY) and OAuth1 consumers.
    *_crud("policy", plural="policies"),
    *_crud("consumer"),
    # Domain configuration.
    _rule("create_domain_config", ADMIN, SYSTEM_PROJECT, "Create a domain configuration."),
    _rule(
        "get_domain_config", ADMIN_OR_SYSTEM_READER, SYSTEM_PROJECT, "Show a domain configuration."
    ),
    _rule(
        "get_security_compliance_domain_config",
        "",
        ALL_SCOPES,
        "Show the security compliance options.",
    ),
    _rule("update_domain_config", ADMIN, SYSTEM_PROJECT, "Update a domain configuration."),
    _rule("delete_domain_config", ADMIN, SYSTEM_PROJECT, "Delete a domain configuration."),
    _rule(
        "get_domain_config_default",
        ADMIN_OR_SYSTEM_READER,
        SYSTEM_PROJECT,
        "Show the default domain configuration.",
    ),
    # Credentials.
    _rule(
        "get_credential",
        f"({ADMIN}) or {SYSTEM_READER} or {CRED_OWNER}",
        ALL_SCOPES,
        "Show a credential.",
    ),
    _rule(
        "list_credentials",
        f"({ADMIN}) or {SYSTEM_READER} or {CRED_OWNER}",
        ALL_SCOPES,
        "List credentials.",
    ),
    _rule("create_credential", f"({ADMIN}) or {CRED_OWNER}", ALL_SCOPES, "Create a credential."),
    _rule("update_credential", f"({ADMIN}) or {CRED_OWNER}", ALL_SCOPES, "Update a credential."),
    _rule("delete_credential", f"({ADMIN}) or {CRED_OWNER}", ALL_SCOPES, "Delete a credential."),
    _rule(
        "ec2_get_credential",
        f"({ADMIN}) or {SYSTEM_READER} or {CRED_OWNER}",
        SYSTEM_PROJECT,
        "Show an EC2 credential.",
    ),
    _rule(
        "ec2_list_credentials",
        f"({ADMIN}) or {SYSTEM_READER} or rule:owner",
        SYSTEM_PROJECT,
        "List EC2 credentials.",
    ),
    _rule(
        "ec2_create_credential",
        f"({ADMIN}) or (role:member and {CRED_OWNER})",
        SYSTEM_PROJECT,
        "Create an EC2 credential.",
    ),
    _rule(
        "ec2_delete_credential",
        f"({ADMIN}) or (role:member and {CRED_OWNER})",
        SYSTEM_PROJECT,
        "Delete an EC2 credential.",
    ),
    # Application credentials and access rules.
    _rule(
        "get_application_credential",
        f"({ADMIN}) or {SYSTEM_READER} or rule:owner",
        SYSTEM_PROJECT,
        "Show an application credential.",
    ),
    _rule(
        "list_application_credentials",
        f"({ADMIN}) or {SYSTEM_READER} or rule:owner",
        SYSTEM_PROJECT,
        "List application credentials.",
    ),
    _rule("create_application_credential", OWNER, ["project"], "Create an application credential."),
    _rule(
        "delete_application_credential",
        "rule:admin_or_owner",
        SYSTEM_PROJECT,
        "Delete an application credential.",
    ),
    _rule(
        "get_access_rule",
        f"{SYSTEM_READER} or user_id:%(target.user.id)s",
        SYSTEM_PROJECT,
        "Show an access rule.",
    ),
    _rule(
        "list_access_rules",
        f"{SYSTEM_READER} or user_id:%(target.user.id)s",
        SYSTEM_PROJECT,
        "List access rules.",
    ),
    _rule(
        "delete_access_rule",
        f"{SYSTEM_ADMIN} or user_id:%(target.user.id)s",
        SYSTEM_PROJECT,
        "Delete an access rule.",
    ),
    # Trusts.
    _rule("create_trust", TRUSTOR, ["project"], "Create a trust."),
    _rule("list_trusts", ADMIN_OR_SYSTEM_READER, SYSTEM_PROJECT, "List all trusts."),
    _rule(
        "list_trusts_for_trustor",
        f"({ADMIN}) or ({SYSTEM_READER} or {TRUSTOR})",
        SYSTEM_PROJECT,
        "List trusts by trustor.",
    ),
    _rule(
        "list_trusts_for_trustee",
        f"({ADMIN}) or ({SYSTEM_READER} or {TRUSTEE})",
        SYSTEM_PROJECT,
        "List trusts by trustee.",
    ),
    _rule(
        "list_roles_for_trust",
        f"({ADMIN}) or ({SYSTEM_READER} or {TRUSTOR} or {TRUSTEE})",
        SYSTEM_PROJECT,
        "List a trust's roles.",
    ),
    _rule(
        "get_role_for_trust",
        f"({ADMIN}) or ({SYSTEM_READER} or {TRUSTOR} or {TRUSTEE})",
        SYSTEM_PROJECT,
        "Check a trust's role.",
    ),
    _rule("delete_trust", f"{ADMIN} or {TRUSTOR}", SYSTEM_PROJECT, "Delete a trust."),
    _rule(
        "get_trust",
        f"({ADMIN}) or ({SYSTEM_READER} or {TRUSTOR} or {TRUSTEE})",
        SYSTEM_PROJECT,
        "Show a trust.",
    ),
    # Revocation events.
    _rule("list_revoke_events", "rule:service_or_admin", SYSTEM_PROJECT, "List revocation events."),
]


def list_rules() -> list[policy.RuleDefault]:
    return list(RULES)
