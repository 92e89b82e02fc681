"""Who holds which roles where: groups, inheritance down the project tree, implied roles.

A user's roles on a project are the roles granted to the user or to any of the
user's groups on that project, plus inherited grants on any ancestor project or
on the project's domain, expanded through implied roles. Domain-specific roles
never appear in tokens themselves, only the global roles they imply.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from stackbox.identity import models

SYSTEM_ALL = "all"


def group_ids(session: Session, user_id: str) -> list[str]:
    return list(
        session.scalars(
            select(models.GroupMembership.group_id).where(models.GroupMembership.user_id == user_id)
        )
    )


def ancestors(session: Session, project: models.Project) -> list[models.Project]:
    """Parents of ``project`` up to (not including) its domain, nearest first."""
    chain: list[models.Project] = []
    seen = {project.id}
    parent_id = project.parent_id
    while parent_id and parent_id not in seen:
        parent = session.get(models.Project, parent_id)
        if parent is None or parent.is_domain:
            break
        chain.append(parent)
        seen.add(parent.id)
        parent_id = parent.parent_id
    return chain


def implied_closure(session: Session, role_ids: set[str]) -> set[str]:
    """``role_ids`` plus every role they imply, transitively."""
    rules: dict[str, list[str]] = {}
    for prior, implied in session.execute(
        select(models.ImpliedRole.prior_role_id, models.ImpliedRole.implied_role_id)
    ):
        rules.setdefault(prior, []).append(implied)
    result = set(role_ids)
    pending = list(role_ids)
    while pending:
        for implied in rules.get(pending.pop(), ()):
            if implied not in result:
                result.add(implied)
                pending.append(implied)
    return result


def _actor_clause(user_id: str, groups: list[str]) -> ColumnElement[bool]:
    clauses = [and_(models.Assignment.actor_type == "user", models.Assignment.actor_id == user_id)]
    if groups:
        clauses.append(
            and_(models.Assignment.actor_type == "group", models.Assignment.actor_id.in_(groups))
        )
    return or_(*clauses)


def direct_role_ids(
    session: Session,
    user_id: str,
    *,
    project_id: str | None = None,
    domain_id: str | None = None,
    system: bool = False,
) -> set[str]:
    """Granted role ids (before implied roles) on one target, inheritance applied."""
    groups = group_ids(session, user_id)
    actor = _actor_clause(user_id, groups)
    A = models.Assignment
    targets = []
    if project_id is not None:
        project = session.get(models.Project, project_id)
        if project is None:
            return set()
        targets.append(
            and_(A.target_type == "project", A.target_id == project_id, A.inherited.is_(False))
        )
        parents = [p.id for p in ancestors(session, project)]
        if parents:
            targets.append(
                and_(A.target_type == "project", A.target_id.in_(parents), A.inherited.is_(True))
            )
        targets.append(
            and_(A.target_type == "domain", A.target_id == project.domain_id, A.inherited.is_(True))
        )
    elif domain_id is not None:
        targets.append(
            and_(A.target_type == "domain", A.target_id == domain_id, A.inherited.is_(False))
        )
    elif system:
        targets.append(and_(A.target_type == "system", A.target_id == SYSTEM_ALL))
    else:
        return set()
    return set(session.scalars(select(A.role_id).where(actor, or_(*targets))))


def effective_roles(
    session: Session,
    user_id: str,
    *,
    project_id: str | None = None,
    domain_id: str | None = None,
    system: bool = False,
) -> list[models.Role]:
    """Global roles the user effectively has on the target, implied roles included."""
    granted = direct_role_ids(
        session, user_id, project_id=project_id, domain_id=domain_id, system=system
    )
    if not granted:
        return []
    ids = implied_closure(session, granted)
    roles = session.scalars(
        select(models.Role).where(models.Role.id.in_(ids), models.Role.domain_id == models.GLOBAL)
    )
    return sorted(roles, key=lambda r: r.name)
