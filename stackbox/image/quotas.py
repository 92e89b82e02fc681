"""Per-project image quotas: how many images, and how many bytes of image data.

Checked inside the write transaction that would exceed them, so concurrent
creates and uploads cannot all slip under the limit together.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.image import models, runtime


def _over(kind: str, used: int, limit: int) -> rest.PayloadTooLarge:
    return rest.PayloadTooLarge(f"Project is over a limit for {kind}: {used} of {limit} used.")


def check_image_count(session: Session, owner: str | None) -> None:
    limit = runtime.get().settings.quota_image_count
    if not limit or owner is None:
        return
    used = (
        session.scalar(
            select(func.count()).select_from(models.Image).where(models.Image.owner == owner)
        )
        or 0
    )
    if used >= limit:
        raise _over("image_count_total", used, limit)


def check_image_size(
    session: Session, owner: str | None, adding: int, excluding: str | None = None
) -> None:
    """Refuse ``adding`` more bytes if the owner's images would then pass the total."""
    limit = runtime.get().settings.quota_image_size_total
    if not limit or owner is None:
        return
    query = select(func.coalesce(func.sum(models.Image.size), 0)).where(models.Image.owner == owner)
    if excluding is not None:
        query = query.where(models.Image.id != excluding)
    used = int(session.scalar(query) or 0)
    if used + adding > limit:
        raise _over("image_size_total", used + adding, limit)


def size_room(session: Session, owner: str | None, excluding: str | None = None) -> int | None:
    """Bytes the owner may still store (None: no limit); used to stop an upload early."""
    limit = runtime.get().settings.quota_image_size_total
    if not limit or owner is None:
        return None
    query = select(func.coalesce(func.sum(models.Image.size), 0)).where(models.Image.owner == owner)
    if excluding is not None:
        query = query.where(models.Image.id != excluding)
    return max(limit - int(session.scalar(query) or 0), 0)


STAGING_STATUSES = ("uploading", "importing")


def _staged(session: Session, owner: str, excluding: str | None) -> int:
    query = select(func.coalesce(func.sum(models.Image.size), 0)).where(
        models.Image.owner == owner, models.Image.status.in_(STAGING_STATUSES)
    )
    if excluding is not None:
        query = query.where(models.Image.id != excluding)
    return int(session.scalar(query) or 0)


def check_stage_size(
    session: Session, owner: str | None, adding: int, excluding: str | None = None
) -> None:
    """Refuse ``adding`` more staged bytes past the owner's staging total."""
    limit = runtime.get().settings.quota_image_stage_total
    if not limit or owner is None:
        return
    used = _staged(session, owner, excluding)
    if used + adding > limit:
        raise _over("image_stage_total", used + adding, limit)


def stage_room(session: Session, owner: str | None, excluding: str | None = None) -> int | None:
    """Bytes the owner may still stage (None: no limit)."""
    limit = runtime.get().settings.quota_image_stage_total
    if not limit or owner is None:
        return None
    return max(limit - _staged(session, owner, excluding), 0)
