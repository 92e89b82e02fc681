"""Who may use a network (or other shared object): owners, and RBAC policies.

``access_as_shared`` to a project (or ``*``) lets that project see and use the
object; ``access_as_external`` lets it attach router gateways and floating IPs
to an external network. ``shared`` and ``router:external`` on a network are
views of the wildcard policies, as in Neutron.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from stackbox import context
from stackbox.network import common, models

SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
WILDCARD = "*"


def granted(object_type: str, action: str, project_id: str) -> ColumnElement[bool]:
    """SQL: a policy of ``action`` on the object for ``project_id`` or everyone exists."""
    R = models.RbacPolicy
    table: Any = {
        "network": models.Network,
        "subnetpool": models.SubnetPool,
        "address_scope": models.AddressScope,
        "security_group": models.SecurityGroup,
    }[object_type]
    return exists(
        select(R.id).where(
            R.object_type == object_type,
            R.object_id == table.id,
            R.action == action,
            R.target_project.in_((project_id, WILDCARD)),
        )
    )


def wildcard(session: Session, object_type: str, object_id: str, action: str) -> bool:
    R = models.RbacPolicy
    return (
        session.scalar(
            select(R.id).where(
                R.object_type == object_type,
                R.object_id == object_id,
                R.action == action,
                R.target_project == WILDCARD,
            )
        )
        is not None
    )


def wildcards(session: Session, object_type: str, action: str, ids: list[str]) -> set[str]:
    R = models.RbacPolicy
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found |= set(
            session.scalars(
                select(R.object_id).where(
                    R.object_type == object_type,
                    R.action == action,
                    R.target_project == WILDCARD,
                    R.object_id.in_(ids[start : start + 500]),
                )
            )
        )
    return found


def shared_with(session: Session, object_type: str, ids: list[str], project_id: str) -> set[str]:
    """Ids among ``ids`` shared with ``project_id`` (by a policy naming it, or ``*``).

    Neutron's ``shared`` attribute as a caller sees it: true for the project a policy
    targets, not only for the wildcard.
    """
    R = models.RbacPolicy
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found |= set(
            session.scalars(
                select(R.object_id).where(
                    R.object_type == object_type,
                    R.action == SHARED,
                    R.target_project.in_((project_id, WILDCARD)),
                    R.object_id.in_(ids[start : start + 500]),
                )
            )
        )
    return found


def set_wildcard(
    session: Session, object_type: str, object_id: str, action: str, on: bool, project_id: str
) -> None:
    """Create or drop the wildcard policy that ``shared`` / ``router:external`` stand for."""
    R = models.RbacPolicy
    row = session.scalars(
        select(R).where(
            R.object_type == object_type,
            R.object_id == object_id,
            R.action == action,
            R.target_project == WILDCARD,
        )
    ).first()
    if on and row is None:
        session.add(
            R(
                id=common.new_id(),
                project_id=project_id,
                object_type=object_type,
                object_id=object_id,
                action=action,
                target_project=WILDCARD,
            )
        )
    elif not on and row is not None:
        session.delete(row)


def network_clause(ctx: context.RequestContext) -> ColumnElement[bool]:
    """SQL: networks ``ctx`` may see (own, shared with it, or external to it)."""
    project = ctx.project_id or ""
    N = models.Network
    return or_(
        N.project_id == project,
        granted("network", SHARED, project),
        and_(N.external.is_(True), granted("network", EXTERNAL, project)),
    )


def can_use_network(session: Session, ctx: context.RequestContext, network: models.Network) -> bool:
    """Whether ctx may put ports/subnets on the network (owner, shared, or admin)."""
    if common.is_admin(ctx) or network.project_id == ctx.project_id:
        return True
    R = models.RbacPolicy
    return (
        session.scalar(
            select(R.id).where(
                R.object_type == "network",
                R.object_id == network.id,
                R.action == SHARED,
                R.target_project.in_((ctx.project_id or "", WILDCARD)),
            )
        )
        is not None
    )
