"""/v2.0/security-group-rules: create (one, or many for one group, all or nothing), list,
show, delete; and the rule rows and views security groups embed.

Each rule is checked as Neutron checks it (security_group_checks), must name a group
the caller may see (404 otherwise) and may not repeat a rule the group already has
(409 SecurityGroupRuleExists). Adding or removing a rule is a change of its group:
the group's revision number moves on and agents are nudged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import attributes as A
from stackbox.network import common, errors, models, notify, quotas, rbac
from stackbox.network import security_group_checks as checks

RESOURCE = "security_group_rule"
COLLECTION = "security_group_rules"


def group_not_found(ident: str) -> rest.NotFound:
    return errors.not_found("SecurityGroupNotFound", f"Security group {ident} does not exist")


def rule_not_found(ident: str) -> rest.NotFound:
    return errors.not_found(
        "SecurityGroupRuleNotFound", f"Security group rule {ident} does not exist"
    )


ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr(
        "security_group_id", post=True, default=A.MISSING, validate=A.name_string(36), sort=True
    ),
    A.Attr("remote_group_id", post=True, default=None, validate=A.string_or_none(36), sort=True),
    A.Attr(
        "direction",
        post=True,
        default=A.MISSING,
        validate=A.one_of("ingress", "egress"),
        sort=True,
    ),
    A.Attr("protocol", post=True, default=None, validate=checks.convert_protocol, sort=True),
    A.Attr("port_range_min", post=True, default=None, validate=checks.convert_port, sort=True),
    A.Attr("port_range_max", post=True, default=None, validate=checks.convert_port, sort=True),
    A.Attr("ethertype", post=True, default="IPv4", validate=checks.convert_ethertype, sort=True),
    A.Attr("remote_ip_prefix", post=True, default=None, validate=checks.convert_prefix, sort=True),
    A.Attr("description", post=True, default="", validate=A.name_string(255)),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr("normalized_cidr", filter=False),
    A.Attr("belongs_to_default_sg"),
    A.Attr("revision_number", sort=True),
    A.Attr("created_at", sort=True),
    A.Attr("updated_at", sort=True),
)


# --- rows, visibility, rendering --------------------------------------------------------------


def new_rule(group: models.SecurityGroup, **values: Any) -> models.SecurityGroupRule:
    """A rule row of ``group`` (created by the caller's transaction)."""
    moment = common.now()
    return models.SecurityGroupRule(
        id=common.new_id(),
        project_id=values.pop("project_id", None) or group.project_id,
        security_group_id=group.id,
        description=values.pop("description", "") or "",
        created_at=moment,
        updated_at=moment,
        revision_number=0,
        **values,
    )


def default_rules(group: models.SecurityGroup, is_default: bool) -> list[models.SecurityGroupRule]:
    """Neutron's templates: egress to anywhere; the default group also admits its members."""
    rules = [new_rule(group, direction="egress", ethertype=e) for e in checks.ETHERTYPES]
    if is_default:
        rules += [
            new_rule(group, direction="ingress", ethertype=e, remote_group_id=group.id)
            for e in checks.ETHERTYPES
        ]
    return rules


def group_visible(
    session: Session, ctx: context.RequestContext, group_id: str, project_id: str | None = None
) -> models.SecurityGroup | None:
    """The group if ``project_id`` (default: the caller's) may see it: own, shared, or admin."""
    group = session.get(models.SecurityGroup, group_id)
    if group is None:
        return None
    if common.is_admin(ctx) and project_id is None:
        return group
    project = project_id if project_id is not None else (ctx.project_id or "")
    if group.project_id == project:
        return group
    shared = session.scalar(
        select(models.RbacPolicy.id).where(
            models.RbacPolicy.object_type == "security_group",
            models.RbacPolicy.object_id == group.id,
            models.RbacPolicy.action == rbac.SHARED,
            models.RbacPolicy.target_project.in_((project, rbac.WILDCARD)),
        )
    )
    return group if shared is not None else None


def default_group_ids(session: Session, group_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(group_ids), 500):
        found |= set(
            session.scalars(
                select(models.DefaultSecurityGroup.security_group_id).where(
                    models.DefaultSecurityGroup.security_group_id.in_(
                        group_ids[start : start + 500]
                    )
                )
            )
        )
    return found


def view(rule: models.SecurityGroupRule, in_default: bool) -> dict[str, Any]:
    body = common.standard(rule)
    del body["tags"]
    body.update(
        {
            "security_group_id": rule.security_group_id,
            "ethertype": rule.ethertype,
            "direction": rule.direction,
            "protocol": rule.protocol,
            "port_range_min": rule.port_range_min,
            "port_range_max": rule.port_range_max,
            "remote_ip_prefix": rule.remote_ip_prefix,
            "normalized_cidr": checks.normalized_cidr(rule.remote_ip_prefix),
            "remote_group_id": rule.remote_group_id,
            "belongs_to_default_sg": in_default,
        }
    )
    return body


def render_many(session: Session, rules: list[models.SecurityGroupRule]) -> list[dict[str, Any]]:
    defaults = default_group_ids(session, sorted({r.security_group_id for r in rules}))
    return [view(r, r.security_group_id in defaults) for r in rules]


def target(rule: models.SecurityGroupRule | None, group: models.SecurityGroup) -> dict[str, Any]:
    return {
        "project_id": rule.project_id if rule is not None else group.project_id,
        "security_group:project_id": group.project_id,
        "security_group_id": group.id,
    }


# --- handlers ---------------------------------------------------------------------------------


def _parse_all(
    request: rest.ApiRequest,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], bool]:
    body = request.body
    if isinstance(body, dict) and isinstance(body.get(COLLECTION), list) and RESOURCE not in body:
        items = body[COLLECTION]
        if not items:
            raise errors.bad_request("Resource body required")
        parsed = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get(RESOURCE), dict):
                raise errors.bad_request(f"Unable to find '{RESOURCE}' in request body")
            parsed.append(
                (item[RESOURCE], A.parse(ATTRS, item[RESOURCE], create=True, resource=RESOURCE))
            )
        return parsed, True
    item = A.body_of(request, RESOURCE)
    return [(item, A.parse(ATTRS, item, create=True, resource=RESOURCE))], False


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    """POST one rule or ``{"security_group_rules": [...]}`` (one group, all or nothing)."""
    ctx = request.context
    parsed, bulk = _parse_all(request)
    if bulk:
        if len({spec["security_group_id"] for _, spec in parsed}) > 1:
            raise checks.invalid(
                "SecurityGroupNotSingleGroupRules",
                "Only allowed to update rules for one security profile at a time",
            )
        owners = {spec.get("project_id") or spec.get("tenant_id") for _, spec in parsed}
        if len(owners) > 1:
            raise checks.invalid(
                "SecurityGroupRulesNotSingleProject",
                "Multiple project_ids in bulk security group rule create not allowed",
            )
    rows: list[models.SecurityGroupRule] = []
    seen: set[tuple[Any, ...]] = set()
    group: models.SecurityGroup | None = None
    for item, spec in parsed:
        checks.check_rule(spec)
        group = group_visible(session, ctx, spec["security_group_id"])
        if group is None:
            raise group_not_found(spec["security_group_id"])
        project_id = spec.get("project_id") or spec.get("tenant_id") or group.project_id
        if not common.is_admin(ctx):
            project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
        remote = spec.get("remote_group_id")
        if (
            remote
            and group_visible(session, ctx, remote, None if common.is_admin(ctx) else project_id)
            is None
        ):
            raise group_not_found(remote)
        common.enforce(
            request,
            "create_security_group_rule",
            {"project_id": project_id, "security_group:project_id": group.project_id},
            ATTRS,
            [k for k in item if k not in ("project_id", "tenant_id")],
        )
        key = checks.rule_key(spec)
        if key in seen:
            raise errors.conflict(
                "DuplicateSecurityGroupRuleInPost", "Duplicate Security Group Rule in POST."
            )
        seen.add(key)
        rows.append(
            new_rule(
                group,
                project_id=project_id,
                description=spec["description"],
                direction=spec["direction"],
                ethertype=spec["ethertype"],
                protocol=spec["protocol"],
                port_range_min=spec["port_range_min"],
                port_range_max=spec["port_range_max"],
                remote_ip_prefix=spec["remote_ip_prefix"],
                remote_group_id=remote,
            )
        )
    assert group is not None
    for existing in session.scalars(
        select(models.SecurityGroupRule).where(
            models.SecurityGroupRule.security_group_id == group.id
        )
    ):
        if checks.rule_key(existing) in seen:
            raise errors.conflict(
                "SecurityGroupRuleExists",
                f"Security group rule already exists. Rule id is {existing.id}.",
            )
    quotas.check(session, rows[0].project_id, RESOURCE, adding=len(rows))
    session.add_all(rows)
    common.bump(group)
    session.flush()
    notify.security_group(session, group.id)
    bodies = render_many(session, rows)
    if bulk:
        return rest.ApiResponse(201, {COLLECTION: bodies})
    return rest.ApiResponse(201, {RESOURCE: bodies[0]})


def visible_rules_query(ctx: context.RequestContext) -> Any:
    R, G = models.SecurityGroupRule, models.SecurityGroup
    query = select(R)
    if not common.is_admin(ctx):
        project = ctx.project_id or ""
        owned_groups = select(G.id).where(G.project_id == project)
        query = query.where(or_(R.project_id == project, R.security_group_id.in_(owned_groups)))
    return query


def list_rules(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    rules = list(session.scalars(visible_rules_query(ctx)))
    groups = {
        g.id: g
        for g in session.scalars(
            select(models.SecurityGroup).where(
                models.SecurityGroup.id.in_({r.security_group_id for r in rules})
            )
        )
    }
    bodies = [
        body
        for rule, body in zip(rules, render_many(session, rules), strict=True)
        if _readable(request, rule, groups.get(rule.security_group_id))
    ]
    return common.collection(request, COLLECTION, bodies, ATTRS)


def _readable(
    request: rest.ApiRequest, rule: models.SecurityGroupRule, group: models.SecurityGroup | None
) -> bool:
    if group is None:
        return False
    try:
        common.enforce(request, "get_security_group_rule", target(rule, group), hide_missing=True)
    except rest.NotFound:
        return False
    return True


def get_visible(
    session: Session, ctx: context.RequestContext, rule_id: str
) -> tuple[models.SecurityGroupRule, models.SecurityGroup]:
    rule = session.scalars(
        visible_rules_query(ctx).where(models.SecurityGroupRule.id == rule_id)
    ).first()
    group = session.get(models.SecurityGroup, rule.security_group_id) if rule else None
    if rule is None or group is None:
        raise rule_not_found(rule_id)
    return rule, group


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    rule_id = request.path_params["rule_id"]
    rule, group = get_visible(session, request.context, rule_id)
    if not _readable(request, rule, group):
        raise rule_not_found(rule_id)
    body = render_many(session, [rule])[0]
    return {RESOURCE: common.fields_wanted(request, body)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    rule_id = request.path_params["rule_id"]
    rule, group = get_visible(session, request.context, rule_id)
    if not _readable(request, rule, group):
        raise rule_not_found(rule_id)
    common.enforce(request, "delete_security_group_rule", target(rule, group))
    common.check_revision(request, rule)
    session.delete(rule)
    common.bump(group)
    notify.security_group(session, group.id)


ROUTES = [
    rest.Route("POST", "/v2.0/security-group-rules", create),
    rest.Route("GET", "/v2.0/security-group-rules/{rule_id}", show),
    rest.Route("DELETE", "/v2.0/security-group-rules/{rule_id}", delete),
]
