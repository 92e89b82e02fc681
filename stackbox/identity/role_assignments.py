"""GET /v3/role_assignments: grants as stored, or ``effective`` (what tokens would carry).

The effective view replaces group grants by one entry per member, inherited
grants by one entry per project they flow to, and adds the roles that granted
roles imply, each entry linking back to what produced it, as Keystone does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.identity import models, projects, resources

KNOWN_FILTERS = {
    "user.id",
    "group.id",
    "role.id",
    "scope.project.id",
    "scope.domain.id",
    "scope.system",
    "scope.OS-INHERIT:inherited_to",
    "effective",
    "include_names",
    "include_subtree",
}


@dataclasses.dataclass(frozen=True)
class Entry:
    actor_type: str
    actor_id: str
    target_type: str
    target_id: str
    role_id: str
    inherited: bool
    # Links explaining an effective entry.
    source: tuple[str, str, str, str, str, bool] | None = None
    membership_group: str | None = None
    prior_role: str | None = None


def _assignment_link(e: Entry | tuple[str, str, str, str, str, bool]) -> str:
    if isinstance(e, Entry):
        parts = (e.actor_type, e.actor_id, e.target_type, e.target_id, e.role_id, e.inherited)
    else:
        parts = e
    actor_type, actor_id, target_type, target_id, role_id, inherited = parts
    if target_type == "system":
        return resources.url(f"/v3/system/{actor_type}s/{actor_id}/roles/{role_id}")
    if inherited:
        return resources.url(
            f"/v3/OS-INHERIT/{target_type}s/{target_id}/{actor_type}s/{actor_id}/roles/"
            f"{role_id}/inherited_to_projects"
        )
    return resources.url(f"/v3/{target_type}s/{target_id}/{actor_type}s/{actor_id}/roles/{role_id}")


def _raw(session: Session) -> list[Entry]:
    return [
        Entry(a.actor_type, a.actor_id, a.target_type, a.target_id, a.role_id, a.inherited)
        for a in session.scalars(select(models.Assignment))
    ]


def _key(e: Entry) -> tuple[str, str, str, str, str, bool]:
    return (e.actor_type, e.actor_id, e.target_type, e.target_id, e.role_id, e.inherited)


def _effective(session: Session, entries: list[Entry]) -> list[Entry]:
    members: dict[str, list[str]] = {}
    for m in session.scalars(select(models.GroupMembership)):
        members.setdefault(m.group_id, []).append(m.user_id)
    all_projects = list(
        session.scalars(select(models.Project).where(models.Project.is_domain.is_(False)))
    )
    rules: dict[str, list[str]] = {}
    for rule in session.scalars(select(models.ImpliedRole)):
        rules.setdefault(rule.prior_role_id, []).append(rule.implied_role_id)
    global_roles = set(
        session.scalars(select(models.Role.id).where(models.Role.domain_id == models.GLOBAL))
    )

    # 1. Inherited grants become grants on every project they flow to.
    flowed: list[Entry] = []
    for e in entries:
        if not e.inherited:
            flowed.append(e)
            continue
        if e.target_type == "domain":
            targets = [p.id for p in all_projects if p.domain_id == e.target_id]
        else:
            targets = [p.id for p in projects.subtree(session, e.target_id)]
        for project_id in targets:
            flowed.append(
                Entry(
                    e.actor_type,
                    e.actor_id,
                    "project",
                    project_id,
                    e.role_id,
                    False,
                    source=_key(e),
                )
            )
    # 2. Group grants become grants to each member.
    expanded: list[Entry] = []
    for e in flowed:
        if e.actor_type == "user":
            expanded.append(e)
            continue
        for user_id in members.get(e.actor_id, []):
            expanded.append(
                dataclasses.replace(
                    e,
                    actor_type="user",
                    actor_id=user_id,
                    source=e.source or _key(e),
                    membership_group=e.actor_id,
                )
            )
    # 3. Implied roles, transitively; domain-specific roles only pass on what they imply.
    result: list[Entry] = []
    seen: set[tuple[Any, ...]] = set()
    for e in expanded:
        pending: list[tuple[str, str | None]] = [(e.role_id, None)]
        visited: set[str] = set()
        while pending:
            role_id, prior = pending.pop()
            if role_id in visited:
                continue
            visited.add(role_id)
            if role_id in global_roles:
                item = dataclasses.replace(e, role_id=role_id, prior_role=prior)
                ident = (_key(item), item.source, item.membership_group, item.prior_role)
                if ident not in seen:
                    seen.add(ident)
                    result.append(item)
            for implied in rules.get(role_id, ()):
                pending.append((implied, role_id))
    return result


def _names(session: Session) -> dict[str, Any]:
    domains = {
        d.id: d.name
        for d in session.scalars(select(models.Project).where(models.Project.is_domain.is_(True)))
    }
    return {
        "domains": domains,
        "projects": {p.id: p for p in session.scalars(select(models.Project))},
        "users": {u.id: u for u in session.scalars(select(models.User))},
        "groups": {g.id: g for g in session.scalars(select(models.Group))},
        "roles": {r.id: r for r in session.scalars(select(models.Role))},
    }


def _render(e: Entry, names: dict[str, Any] | None) -> dict[str, Any]:
    def domain_ref(domain_id: str) -> dict[str, Any]:
        ref: dict[str, Any] = {"id": domain_id}
        if names is not None:
            ref["name"] = names["domains"].get(domain_id)
        return ref

    role: dict[str, Any] = {"id": e.role_id}
    actor: dict[str, Any] = {"id": e.actor_id}
    scope: dict[str, Any]
    if names is not None:
        r = names["roles"].get(e.role_id)
        if r is not None:
            role["name"] = r.name
            if r.domain_id != models.GLOBAL:
                role["domain"] = domain_ref(r.domain_id)
        holder = names["users" if e.actor_type == "user" else "groups"].get(e.actor_id)
        if holder is not None:
            actor["name"] = holder.name
            actor["domain"] = domain_ref(holder.domain_id)
    if e.target_type == "system":
        scope = {"system": {"all": True}}
    elif e.target_type == "domain":
        scope = {"domain": domain_ref(e.target_id)}
    else:
        project: dict[str, Any] = {"id": e.target_id}
        if names is not None:
            p = names["projects"].get(e.target_id)
            if p is not None:
                project["name"] = p.name
                project["domain"] = domain_ref(p.domain_id)
        scope = {"project": project}
    if e.inherited:
        scope["OS-INHERIT:inherited_to"] = "projects"
    links: dict[str, str] = {"assignment": _assignment_link(e.source or e)}
    if e.membership_group:
        links["membership"] = resources.url(f"/v3/groups/{e.membership_group}/users/{e.actor_id}")
    if e.prior_role:
        links["prior_role"] = resources.url(f"/v3/roles/{e.prior_role}")
    return {"role": role, e.actor_type: actor, "scope": scope, "links": links}


def list_assignments(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    arg = request.arg
    effective = resources.query_bool(request, "effective") or False
    include_names = resources.query_bool(request, "include_names") or False
    include_subtree = resources.query_bool(request, "include_subtree") or False
    project_id = arg("scope.project.id")
    domain_id = arg("scope.domain.id")
    system = arg("scope.system")
    inherited_to = arg("scope.OS-INHERIT:inherited_to")

    if effective and arg("group.id"):
        raise rest.BadRequest(
            "Combining effective and group filter will always result in an empty list."
        )
    if include_subtree and not project_id:
        raise rest.BadRequest("scope.project.id needs to be specified if include_subtree is used")
    if sum(x is not None for x in (project_id, domain_id, system)) > 1:
        raise rest.BadRequest("Specify only one of domain or project or system scope")

    target_domain = domain_id
    if project_id:
        project = session.get(models.Project, project_id)
        target_domain = project.domain_id if project else None
    action = (
        "identity:list_role_assignments_for_tree"
        if include_subtree
        else "identity:list_role_assignments"
    )
    resources.enforce(
        request, action, {"domain_id": target_domain, "project": {"domain_id": target_domain}}
    )

    entries = _raw(session)
    if effective:
        entries = _effective(session, entries)
    if arg("user.id"):
        entries = [e for e in entries if e.actor_type == "user" and e.actor_id == arg("user.id")]
    if arg("group.id"):
        entries = [e for e in entries if e.actor_type == "group" and e.actor_id == arg("group.id")]
    if arg("role.id"):
        entries = [e for e in entries if e.role_id == arg("role.id")]
    if project_id:
        wanted = {project_id}
        if include_subtree:
            wanted |= {p.id for p in projects.subtree(session, project_id)}
        entries = [e for e in entries if e.target_type == "project" and e.target_id in wanted]
    if domain_id:
        entries = [e for e in entries if e.target_type == "domain" and e.target_id == domain_id]
    if system is not None:
        entries = [e for e in entries if e.target_type == "system"]
    if inherited_to == "projects":
        entries = [e for e in entries if e.inherited]
    names = _names(session) if include_names else None
    return {
        "role_assignments": [_render(e, names) for e in entries],
        "links": resources.collection_links(request),
    }


ROUTES = [rest.Route("GET", "/v3/role_assignments", list_assignments)]
