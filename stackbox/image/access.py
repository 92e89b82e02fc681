"""Who sees which image, and the policy checks on it.

An image is visible to a project that owns it, to everyone when public or
community, to members when shared (any member status for a direct lookup; the
listing shows accepted ones unless asked otherwise), and to admins always.
Everything else is 404 before any policy runs, as Glance answers.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.image import errors, models

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


def is_admin(ctx: context.RequestContext) -> bool:
    return "admin" in ctx.roles


def member_clause(project_id: str, statuses: tuple[str, ...] | None) -> Any:
    query = select(models.ImageMember.image_id).where(
        models.ImageMember.image_id == models.Image.id,
        models.ImageMember.member == project_id,
    )
    if statuses is not None:
        query = query.where(models.ImageMember.status.in_(statuses))
    return exists(query)


def visible(
    query: Select[Any], ctx: context.RequestContext, member_statuses: tuple[str, ...] | None = None
) -> Select[Any]:
    """Limit ``query`` over images to those ``ctx`` may see."""
    if is_admin(ctx):
        return query
    project = ctx.project_id or ""
    return query.where(
        or_(
            models.Image.owner == project,
            models.Image.visibility.in_(("public", "community")),
            and_(
                models.Image.visibility == "shared",
                member_clause(project, member_statuses),
            ),
        )
    )


def get_visible(session: Session, ctx: context.RequestContext, image_id: str) -> models.Image:
    """The image if ``ctx`` may see it; 404 otherwise (also for ids that are not UUIDs)."""
    if not UUID_RE.match(image_id or ""):
        raise errors.image_not_found(image_id)
    image = session.scalars(
        visible(select(models.Image).where(models.Image.id == image_id), ctx)
    ).first()
    if image is None:
        raise errors.image_not_found(image_id)
    return image


def member_of(session: Session, image: models.Image, project_id: str | None) -> bool:
    if project_id is None:
        return False
    return session.get(models.ImageMember, (image.id, project_id)) is not None


def target(
    session: Session, ctx: context.RequestContext, image: models.Image | None
) -> dict[str, Any]:
    """Glance's policy target for an image (or for a new one owned by the caller)."""
    if image is None:
        return {"project_id": ctx.project_id, "owner": ctx.project_id, "visibility": "private"}
    member = ctx.project_id if member_of(session, image, ctx.project_id) else None
    return {
        "project_id": image.owner,
        "owner": image.owner,
        "visibility": image.visibility,
        "member_id": member,
        "id": image.id,
    }


def enforce(
    session: Session,
    request: rest.ApiRequest,
    action: str,
    image: models.Image | None = None,
    **extra: Any,
) -> None:
    target_dict = target(session, request.context, image)
    target_dict.update(extra)
    policy.enforce(request.context, action, target_dict, service="image")
