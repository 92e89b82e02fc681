"""Keeping image data and records in step across crashes.

At start, before any request: images a dead process left ``saving`` go back to
``queued``; interrupted stages go back to ``queued``; interrupted imports undo
their partial copies and return to ``uploading`` when the staged data is still
there (the import can simply be asked again), else to ``queued``; their tasks
fail and their locks go. Then every store is swept of files no location names
and of temporary files (none can be in use yet).

While running, the sweep repeats with a grace period, so files written a moment
ago (an upload renaming its data just before recording it) are left alone.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.db import session as db_session
from stackbox.image import images, import_jobs, ingest, location_import, models, runtime, stores

LOG = logging.getLogger(__name__)

INTERRUPTED = "Interrupted: the image service stopped while the task ran."
# Seconds a file must be unreferenced before the periodic sweep removes it.
GRACE = 3600.0


def recover(db: db_session.Database) -> None:
    """Bring records and stores back to a consistent state after a stop (call at startup)."""
    changed = db.run(_recover_records, write=True)
    for line in changed:
        LOG.warning("image recovery: %s", line)
    removed = sweep(db, older_than=0)
    if removed:
        LOG.warning("image recovery: removed %d orphan data files", len(removed))


def _staged(session: Session, image_id: str) -> bool:
    rt = runtime.get()
    for location in session.scalars(
        select(models.ImageLocation).where(
            models.ImageLocation.image_id == image_id,
            models.ImageLocation.store == stores.STAGING,
        )
    ):
        try:
            if rt.staging.path(location.path).is_file():
                return True
        except ValueError:
            continue
    return False


def _drop_store_copies(session: Session, image_id: str) -> None:
    """Forget the store copies of an image that never became active (the sweep removes files)."""
    session.query(models.ImageLocation).filter(
        models.ImageLocation.image_id == image_id,
        models.ImageLocation.store != stores.STAGING,
    ).delete()


def _to_queued(session: Session, image: models.Image) -> None:
    session.query(models.ImageLocation).filter(models.ImageLocation.image_id == image.id).delete()
    image.status = "queued"
    image.size = image.virtual_size = None
    image.checksum = image.os_hash_algo = image.os_hash_value = None


def _recover_records(session: Session) -> list[str]:
    changed: list[str] = []
    unfinished = session.scalars(
        select(models.Image).where(models.Image.status.in_(("saving", "uploading", "importing")))
    ).all()
    for image in unfinished:
        before = image.status
        if image.status == "saving":
            _to_queued(session, image)
        elif image.status == "uploading":
            if _staged(session, image.id):
                continue
            _to_queued(session, image)
        else:
            _drop_store_copies(session, image.id)
            if _staged(session, image.id):
                image.status = "uploading"
                image.checksum = image.os_hash_algo = image.os_hash_value = None
                image.virtual_size = None
            else:
                _to_queued(session, image)
        images.touch(image)
        changed.append(f"image {image.id}: {before} -> {image.status}")
    locks = session.scalars(
        select(models.ImageProperty).where(models.ImageProperty.name == import_jobs.IMPORT_TASK)
    ).all()
    for lock in locks:
        task = session.get(models.Task, lock.value)
        left = tuple((task.input or {}).get("backend") or ()) if task is not None else ()
        import_jobs.merge_stores(session, lock.image_id, import_jobs.IMPORTING, left, remove=True)
        if task is not None and task.status in ("pending", "processing"):
            import_jobs.merge_stores(session, lock.image_id, import_jobs.FAILED, left, False)
        session.delete(lock)
        changed.append(f"image {lock.image_id}: import lock of task {lock.value} released")
    moment = images.now()
    for task in session.scalars(
        select(models.Task).where(
            # api_image_import (image import) and import (the legacy tasks API) alike.
            models.Task.type.in_((import_jobs.TASK_TYPE, "import", location_import.TASK_TYPE)),
            models.Task.status.in_(("pending", "processing")),
        )
    ):
        task.status = "failure"
        task.message = INTERRUPTED
        task.updated_at = moment
        task.expires_at = moment + import_jobs.TASK_TIME_TO_LIVE
        changed.append(f"task {task.id}: failed (interrupted)")
    return changed


def sweep(db: db_session.Database, older_than: float = GRACE) -> list[Path]:
    """Remove data files no location refers to, and dead temporary files."""
    referenced = db.run(
        lambda s: {(loc.store, loc.path) for loc in s.scalars(select(models.ImageLocation))},
        write=False,
    )
    rt = runtime.get()
    busy = ingest.active_temp_files()
    removed: list[Path] = []
    for store in (*rt.stores.values(), rt.staging):
        names = {path for name, path in referenced if name == store.name}
        try:
            removed += store.sweep(names, older_than=older_than, in_use=busy)
        except OSError as exc:
            LOG.warning("could not sweep image store %s: %s", store.name, exc)
    return removed


async def sweep_every(db: db_session.Database, interval: float) -> None:
    """Sweep the stores every ``interval`` seconds (a background task of the server)."""
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await asyncio.to_thread(sweep, db)
        except Exception:
            LOG.exception("image store sweep failed")
            continue
        if removed:
            LOG.info("image store sweep removed %d orphan files", len(removed))
