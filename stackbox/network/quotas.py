"""Per-project quotas, checked in the transaction that would exceed them.

Counting and inserting happen in one write transaction: on SQLite the writes of
this process are serialized, and on PostgreSQL the count runs after taking the
project's lock row (``SELECT ... FOR UPDATE``), so concurrent creates cannot all
slip under the limit together.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox.network import errors, models, runtime

RESOURCES: dict[str, Any] = {
    "network": models.Network,
    "subnet": models.Subnet,
    "subnetpool": models.SubnetPool,
    "port": models.Port,
    "router": models.Router,
    "floatingip": models.FloatingIP,
    "security_group": models.SecurityGroup,
    "security_group_rule": models.SecurityGroupRule,
    "rbac_policy": models.RbacPolicy,
}


def default(resource: str) -> int:
    return int(getattr(runtime.get().settings, f"quota_{resource}"))


def limit(session: Session, project_id: str, resource: str) -> int:
    row = session.get(models.Quota, (project_id, resource))
    return row.limit if row is not None else default(resource)


def used(session: Session, project_id: str, resource: str) -> int:
    model = RESOURCES[resource]
    return int(
        session.scalar(
            select(func.count()).select_from(model).where(model.project_id == project_id)
        )
        or 0
    )


def _lock(session: Session, project_id: str) -> None:
    """Serialize quota checks of one project on databases with row locks."""
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        return  # this process's writes are already serialized (db.session)
    session.execute(
        select(models.Quota.project_id)
        .where(models.Quota.project_id == project_id)
        .with_for_update()
    )


def check(session: Session, project_id: str, resource: str, adding: int = 1) -> None:
    """409 OverQuota if ``adding`` more of ``resource`` would pass the project's limit."""
    allowed = limit(session, project_id, resource)
    if allowed < 0:
        return
    _lock(session, project_id)
    if used(session, project_id, resource) + adding > allowed:
        raise errors.over_quota([resource])
