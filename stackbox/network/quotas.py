"""Per-project quotas, checked in the transaction that would exceed them.

Counting and inserting happen in one write transaction. On SQLite the writes of
this process are serialized already. On PostgreSQL and MariaDB the check first
takes the project's row in ``net_quota_lock`` with ``SELECT ... FOR UPDATE``
(inserting the row if it is the project's first check), so concurrent creates of
one project count one after another and cannot all slip under the limit together;
other projects never wait.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.exc import IntegrityError
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
UNLIMITED = -1
_LOCKED = "stackbox.network.quota_locks"


def default(resource: str) -> int:
    return int(getattr(runtime.get().settings, f"quota_{resource}"))


def defaults() -> dict[str, int]:
    return {name: default(name) for name in RESOURCES}


def limit(session: Session, project_id: str, resource: str) -> int:
    row = session.get(models.Quota, (project_id, resource))
    return row.limit if row is not None else default(resource)


def limits(session: Session, project_id: str) -> dict[str, int]:
    """Every resource's limit for the project: its own where set, else the default."""
    found = defaults()
    for row in session.scalars(select(models.Quota).where(models.Quota.project_id == project_id)):
        if row.resource in found:
            found[row.resource] = row.limit
    return found


def used(session: Session, project_id: str, resource: str) -> int:
    model = RESOURCES[resource]
    return int(
        session.scalar(
            select(func.count()).select_from(model).where(model.project_id == project_id)
        )
        or 0
    )


def lock(session: Session, project_id: str) -> None:
    """Serialize the quota checks of one project until this transaction ends."""
    bind = session.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        return  # this process's writes are already serialized (db.session)
    held: set[str] = session.info.setdefault(_LOCKED, set())
    if project_id in held:
        return
    row = models.QuotaLock
    if dialect == "postgresql":
        session.execute(
            postgresql.insert(row).values(project_id=project_id).on_conflict_do_nothing()
        )
    elif dialect in ("mysql", "mariadb"):
        session.execute(mysql.insert(row).values(project_id=project_id).prefix_with("IGNORE"))
    else:
        try:
            with session.begin_nested():
                session.add(models.QuotaLock(project_id=project_id))
        except IntegrityError:
            pass
    session.execute(
        select(models.QuotaLock.project_id)
        .where(models.QuotaLock.project_id == project_id)
        .with_for_update()
    )
    held.add(project_id)


def check(session: Session, project_id: str, resource: str, adding: int = 1) -> None:
    """409 OverQuota if ``adding`` more of ``resource`` would pass the project's limit."""
    allowed = limit(session, project_id, resource)
    if allowed < 0:
        return
    lock(session, project_id)
    if used(session, project_id, resource) + adding > allowed:
        raise errors.over_quota([resource])
