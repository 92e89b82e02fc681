"""Nova's default policy, loaded into a real oslo.policy enforcer, decides as Nova does.

Nova (``nova/policies/*.py``, counted from its source when this was written)
defines 214 rules: 11 base rules (``context_is_admin``, ``admin_or_owner``,
``admin_api``, ``project_{manager,member,reader}_api``, ``service_api``,
``project_{manager,member,reader}_or_admin``, ``service_or_admin``), 197
``os_compute_api:*`` rules, 5 ``compute:*`` rules and
``network:attach_external_network``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stackbox import context, policy
from stackbox.compute import policies

NOVA_BASE_RULES = 11
NOVA_API_RULES = 197
NOVA_OTHER_RULES = 6
SERVICE = "compute-unit-test"
P1, P2 = "project-one", "project-two"
U1, U2 = "user-one", "user-two"


def _ctx(
    user: str,
    project: str | None,
    *roles: str,
    system_scope: str | None = None,
    domain_id: str | None = None,
) -> context.RequestContext:
    return context.RequestContext(
        request_id="req-test",
        user_id=user,
        project_id=project,
        roles=roles,
        system_scope=system_scope,
        domain_id=domain_id,
    )


# Roles as a token carries them: implied roles expanded (admin > manager > member > reader).
ADMIN = _ctx("admin-user", "admin-project", "admin", "manager", "member", "reader")
MANAGER = _ctx("manager-user", P1, "manager", "member", "reader")
MEMBER = _ctx(U1, P1, "member", "reader")
OTHER_MEMBER = _ctx(U2, P1, "member", "reader")
READER = _ctx("reader-user", P1, "reader")
ALT_MEMBER = _ctx("alt-user", P2, "member", "reader")
SERVICE_USER = _ctx("nova-service", "service", "service")
SYSTEM_ADMIN = _ctx("sys-admin", None, "admin", "member", "reader", system_scope="all")
DOMAIN_ADMIN = _ctx("dom-admin", None, "admin", "member", "reader", domain_id="default")

OWN = {"project_id": P1, "user_id": U1}
FOREIGN = {"project_id": P2, "user_id": "alt-user"}


@pytest.fixture(scope="module", autouse=True)
def enforcer() -> None:
    policy.init(SERVICE, policies.list_rules())


def allowed(ctx: context.RequestContext, action: str, target: dict[str, str]) -> bool:
    return policy.allowed(ctx, action, target, service=SERVICE)


def test_rule_count_covers_nova() -> None:
    rules = policies.list_rules()
    names = [rule.name for rule in rules]
    assert len(names) == len(set(names))
    assert len(rules) >= NOVA_BASE_RULES + NOVA_API_RULES + NOVA_OTHER_RULES
    assert sum(n.startswith("os_compute_api:") for n in names) >= NOVA_API_RULES
    unscoped = [rule.name for rule in rules if not rule.scope_types]
    assert len(unscoped) == NOVA_BASE_RULES
    assert all(rule.scope_types == ["project"] for rule in rules if rule.name not in unscoped)


def test_every_referenced_rule_exists() -> None:
    names = {rule.name for rule in policies.list_rules()}
    for rule in policies.list_rules():
        for ref in re.findall(r"rule:([\w:-]+)", rule.check_str):
            assert ref in names, f"{rule.name} refers to unknown rule {ref}"


@pytest.mark.parametrize(
    ("ctx", "action", "target", "expected"),
    [
        # Members act on their own project's servers only.
        (MEMBER, "os_compute_api:servers:create", OWN, True),
        (MEMBER, "os_compute_api:servers:create", FOREIGN, False),
        (ALT_MEMBER, "os_compute_api:servers:delete", OWN, False),
        (MEMBER, "os_compute_api:servers:create:attach_network", OWN, True),
        (MEMBER, "os_compute_api:servers:index:get_all_tenants", OWN, False),
        # Readers read and nothing more.
        (READER, "os_compute_api:servers:index", OWN, True),
        (READER, "os_compute_api:servers:detail", OWN, True),
        (READER, "os_compute_api:servers:show", OWN, True),
        (READER, "os_compute_api:servers:show", FOREIGN, False),
        (READER, "os_compute_api:servers:create", OWN, False),
        (READER, "os_compute_api:servers:reboot", OWN, False),
        (READER, "os_compute_api:os-server-groups:index", OWN, True),
        (READER, "os_compute_api:os-server-groups:create", OWN, False),
        # Admin acts on any project.
        (ADMIN, "os_compute_api:servers:create", FOREIGN, True),
        (ADMIN, "os_compute_api:servers:index:get_all_tenants", OWN, True),
        # Managers may migrate without naming a host.
        (MANAGER, "os_compute_api:os-migrate-server:migrate", OWN, True),
        (MEMBER, "os_compute_api:os-migrate-server:migrate", OWN, False),
        (MANAGER, "os_compute_api:os-migrate-server:migrate:host", OWN, False),
        (MANAGER, "os_compute_api:os-migrations:index", OWN, True),
        (MEMBER, "os_compute_api:os-migrations:index", OWN, False),
        # Anyone in a project.
        (READER, "os_compute_api:os-availability-zone:list", {}, True),
        (READER, "os_compute_api:limits", {}, True),
        (READER, "os_compute_api:os-quota-sets:defaults", {}, True),
        (READER, "os_compute_api:extensions", {}, True),
        (READER, "os_compute_api:os-quota-sets:show", OWN, True),
        (READER, "os_compute_api:os-quota-sets:show", FOREIGN, False),
        (READER, "os_compute_api:os-simple-tenant-usage:show", OWN, True),
        (READER, "os_compute_api:os-simple-tenant-usage:list", OWN, False),
        # Service-to-service APIs take the service role (or admin), not members.
        (SERVICE_USER, "os_compute_api:os-server-external-events:create", OWN, True),
        (MEMBER, "os_compute_api:os-server-external-events:create", OWN, False),
        (ADMIN, "os_compute_api:os-volumes-attachments:swap", OWN, True),
        (MEMBER, "os_compute_api:os-volumes-attachments:swap", OWN, False),
        # Disabled for everyone by default.
        (ADMIN, "compute:servers:resize:cross_cell", OWN, False),
        # Nova's rules are project-scoped: system and domain tokens are refused.
        (SYSTEM_ADMIN, "os_compute_api:os-hypervisors:list", {}, False),
        (DOMAIN_ADMIN, "os_compute_api:os-flavor-manage:create", {}, False),
    ],
)
def test_decisions(
    ctx: context.RequestContext, action: str, target: dict[str, str], expected: bool
) -> None:
    assert allowed(ctx, action, target) is expected


@pytest.mark.parametrize(
    "action",
    [
        "os_compute_api:os-flavor-manage:create",
        "os_compute_api:os-flavor-manage:delete",
        "os_compute_api:os-flavor-access:add_tenant_access",
        "os_compute_api:os-hypervisors:list",
        "os_compute_api:os-services:update",
        "os_compute_api:os-aggregates:create",
        "os_compute_api:os-quota-sets:update",
        "os_compute_api:servers:create:forced_host",
        "os_compute_api:servers:show:host_status",
        "os_compute_api:servers:allow_all_filters",
        "os_compute_api:os-extended-server-attributes",
        "os_compute_api:os-instance-actions:events",
        "os_compute_api:os-server-groups:index:all_projects",
        "os_compute_api:limits:other_project",
    ],
)
def test_admin_only(action: str) -> None:
    assert allowed(ADMIN, action, OWN)
    for ctx in (MANAGER, MEMBER, READER, SERVICE_USER):
        assert not allowed(ctx, action, OWN), ctx.user_id


@pytest.mark.parametrize("verb", ["index", "create", "show", "delete"])
def test_keypairs_belong_to_their_user(verb: str) -> None:
    action = f"os_compute_api:os-keypairs:{verb}"
    assert allowed(MEMBER, action, {"user_id": U1})
    assert allowed(READER, action, {"user_id": READER.user_id or ""})
    # Same project, different user: still not theirs.
    assert not allowed(OTHER_MEMBER, action, {"user_id": U1})
    assert allowed(ADMIN, action, {"user_id": U2})


def test_operator_file_overrides_a_default(tmp_path: Path) -> None:
    override = tmp_path / "compute.yaml"
    override.write_text(
        '"os_compute_api:os-flavor-manage:create": "rule:project_member_or_admin"\n'
    )
    policy.init(SERVICE + "-override", policies.list_rules(), override)
    check = "os_compute_api:os-flavor-manage:create"
    assert policy.allowed(MEMBER, check, OWN, service=SERVICE + "-override")
    assert not policy.allowed(READER, check, OWN, service=SERVICE + "-override")
    assert not policy.allowed(
        MEMBER, "os_compute_api:os-flavor-manage:delete", OWN, service=SERVICE + "-override"
    )
