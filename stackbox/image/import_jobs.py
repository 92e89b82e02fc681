"""The background half of image import: copy data into stores, then finish the task.

An import holds the image's lock, the ``os_glance_import_task`` property naming
its task; every step checks it still holds the lock (and that the image still
exists) before it changes anything, so a deleted image or a stolen stale lock
ends the job without harm. Progress is visible as Glance shows it:
``os_glance_importing_to_stores`` shrinks as stores finish and
``os_glance_failed_import`` collects the stores that failed.

``glance-direct`` reads the staged file; ``copy-image`` reads the image's data
from a store that has it. ``web-download`` and ``glance-download`` first bring
the data into the staging area (capped by the size cap and the staging quota)
and then go on as ``glance-direct``; ``glance-download`` takes the source's
formats and some of its properties before that, and gives them back if the
import fails, as Glance's flow reverts. Each target store gets the data through
the same path as an upload (hashed, inspected, renamed into place with its
record).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.db import session as db_session
from stackbox.image import (
    data,
    images,
    import_sources,
    ingest,
    inspection,
    models,
    quotas,
    runtime,
    stores,
)

LOG = logging.getLogger(__name__)

GLANCE_DIRECT = "glance-direct"
COPY_IMAGE = "copy-image"
WEB_DOWNLOAD = import_sources.WEB_DOWNLOAD
GLANCE_DOWNLOAD = import_sources.GLANCE_DOWNLOAD
# Methods that fetch the data into the staging area themselves.
DOWNLOADS = (WEB_DOWNLOAD, GLANCE_DOWNLOAD)
TASK_TYPE = "api_image_import"
IMPORT_TASK = "os_glance_import_task"
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
STAGE_HOST = "os_glance_stage_host"
# Glance's task_time_to_live, and the age after which a lock of a task that
# stopped moving may be taken over (doubled while the task is still pending).
TASK_TIME_TO_LIVE = datetime.timedelta(hours=48)
LOCK_EXPIRY = datetime.timedelta(minutes=60)
# Imports running at once in this process; more wait their turn.
_slots = threading.BoundedSemaphore(2)


@dataclasses.dataclass(frozen=True)
class Job:
    task_id: str
    image_id: str
    method: str
    stores: tuple[str, ...]
    all_stores_must_succeed: bool
    # The request's "method" object, and who asked (for the download methods).
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    caller: import_sources.Caller | None = None


@dataclasses.dataclass(frozen=True)
class _Source:
    path: Path
    disk_format: str | None
    container_format: str | None


class Aborted(Exception):
    """The image is gone or another task holds its lock: stop touching it."""


class _Failed(Exception):
    """The import cannot go on; the message is the task's."""


# --- image properties the import keeps ---


def get_property(session: Session, image_id: str, name: str) -> str | None:
    row = session.get(models.ImageProperty, (image_id, name))
    return row.value if row is not None else None


def set_property(session: Session, image_id: str, name: str, value: str) -> None:
    row = session.get(models.ImageProperty, (image_id, name))
    if row is None:
        session.add(models.ImageProperty(image_id=image_id, name=name, value=value))
    else:
        row.value = value


def pop_property(session: Session, image_id: str, name: str) -> None:
    row = session.get(models.ImageProperty, (image_id, name))
    if row is not None:
        session.delete(row)


def merge_stores(
    session: Session, image_id: str, key: str, names: list[str] | tuple[str, ...], remove: bool
) -> None:
    """Add or remove store names in a comma-separated property (kept sorted, as Glance does)."""
    current = {n for n in (get_property(session, image_id, key) or "").split(",") if n}
    wanted = current - set(names) if remove else current | set(names)
    set_property(session, image_id, key, ",".join(sorted(wanted)))


# --- the import lock ---


def take_lock(session: Session, image: models.Image, task_id: str) -> None:
    """Give ``task_id`` the image's import lock; 409 if a live task holds it."""
    holder = get_property(session, image.id, IMPORT_TASK)
    if holder:
        task = session.get(models.Task, holder)
        if task is not None and not _stale(task):
            raise rest.Conflict("Image has active task")
        LOG.warning("image %s: taking over the stale import lock of task %s", image.id, holder)
        if task is not None:
            # Clear the progress the stalled task left behind.
            left = tuple((task.input or {}).get("backend") or ())
            merge_stores(session, image.id, IMPORTING, left, remove=True)
            merge_stores(session, image.id, FAILED, left, remove=True)
    set_property(session, image.id, IMPORT_TASK, task_id)


def _stale(task: models.Task) -> bool:
    if task.status not in ("pending", "processing", "success", "failure"):
        return False
    expiry = LOCK_EXPIRY * (2 if task.status == "pending" else 1)
    return images.now() - task.updated_at >= expiry


def locked_image(
    session: Session, image_id: str, task_id: str, what: str = "import"
) -> models.Image:
    """The image a task works on, while the task still holds its import lock."""
    image = session.get(models.Image, image_id)
    if image is None:
        raise Aborted(f"Image has been deleted, aborting {what}.")
    if get_property(session, image.id, IMPORT_TASK) != task_id:
        raise Aborted("Another task took over the image's import lock; aborting.")
    return image


def finish_task(
    session: Session, task_id: str, image_id: str, status: str, message: str = ""
) -> None:
    task = session.get(models.Task, task_id)
    if task is None:
        return
    moment = images.now()
    task.status = status
    task.message = message
    task.result = {"image_id": image_id} if status == "success" else None
    task.updated_at = moment
    task.expires_at = moment + TASK_TIME_TO_LIVE


def _locked(session: Session, job: Job) -> models.Image:
    return locked_image(session, job.image_id, job.task_id)


def _finish_task(session: Session, job: Job, status: str, message: str = "") -> None:
    finish_task(session, job.task_id, job.image_id, status, message)


def _remove_files_after_commit(session: Session, files: list[tuple[str, str]]) -> None:
    rt = runtime.get()

    def remove() -> None:
        for store_name, path in files:
            try:
                rt.store(store_name).delete(path)
            except (KeyError, ValueError, OSError) as exc:
                LOG.warning("could not remove %s from store %s: %s", path, store_name, exc)

    db_session.after_commit(session, remove)


def _drop_locations(session: Session, image_id: str, store_names: list[str] | None) -> None:
    """Delete the image's locations in ``store_names`` (None: the staging area), files included."""
    query = select(models.ImageLocation).where(models.ImageLocation.image_id == image_id)
    if store_names is None:
        query = query.where(models.ImageLocation.store == stores.STAGING)
    else:
        query = query.where(models.ImageLocation.store.in_(store_names))
    files = []
    for location in session.scalars(query):
        files.append((location.store, location.path))
        session.delete(location)
    _remove_files_after_commit(session, files)


# --- the job ---


def start(db: db_session.Database, job: Job) -> None:
    thread = threading.Thread(
        target=run, args=(db, job), name=f"image-import-{job.image_id[:8]}", daemon=True
    )
    thread.start()


def run(db: db_session.Database, job: Job) -> None:
    with _slots:
        # What a glance-download took from its source (given back if the import fails).
        undo = import_sources.TakenMetadata()
        try:
            _run(db, job, undo)
        except Aborted as exc:
            LOG.warning("import %s of image %s stopped: %s", job.task_id, job.image_id, exc)
            message = str(exc)
            db.run(lambda s: _finish_task(s, job, "failure", message), write=True)
        except Exception as exc:
            LOG.exception("import %s of image %s failed", job.task_id, job.image_id)
            try:
                _revert(db, job, undo, [], job.stores, f"Unexpected error: {exc}")
            except Exception:
                LOG.exception("could not revert import %s", job.task_id)


def _run(db: db_session.Database, job: Job, undo: import_sources.TakenMetadata) -> None:
    try:
        db.run(lambda s: _begin(s, job), write=True)
        if job.method in DOWNLOADS:
            _download(db, job, undo)
        source = db.run(lambda s: _find_source(s, job), write=False)
    except _Failed as exc:
        # A download that fails fails every store (Glance's download revert says so).
        failed = job.stores if job.method in DOWNLOADS else ()
        _revert(db, job, undo, [], failed, str(exc))
        return
    placed: list[str] = []
    for index, name in enumerate(job.stores, 1):
        set_active = job.method != COPY_IMAGE and (
            not job.all_stores_must_succeed or index == len(job.stores)
        )
        try:
            _import_to(db, job, source, name, set_active)
        except Aborted:
            raise
        except Exception as exc:
            reason = _reason(exc)
            LOG.warning("import of image %s into store %s failed: %s", job.image_id, name, reason)
            if job.all_stores_must_succeed:
                _revert(db, job, undo, placed, (name,), reason)
                return
            db.run(functools.partial(_store_failed, job=job, store_name=name), write=True)
        else:
            placed.append(name)
    db.run(lambda s: _complete(s, job, undo), write=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, rest.ApiError):
        return exc.message
    if isinstance(exc, ingest.SourceFailed):
        return f"The image data could not be read: {exc}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}"
    return str(exc) or type(exc).__name__


def _begin(session: Session, job: Job) -> None:
    _locked(session, job)
    task = session.get(models.Task, job.task_id)
    if task is not None:
        task.status = "processing"
        task.updated_at = images.now()


def _find_source(session: Session, job: Job) -> _Source:
    image = _locked(session, job)
    rt = runtime.get()
    query = select(models.ImageLocation).where(
        models.ImageLocation.image_id == image.id, models.ImageLocation.status == "active"
    )
    if job.method != COPY_IMAGE:
        query = query.where(models.ImageLocation.store == stores.STAGING)
    else:
        query = query.where(models.ImageLocation.store != stores.STAGING)
    for location in session.scalars(query.order_by(models.ImageLocation.id)):
        try:
            path = rt.store(location.store).path(location.path)
        except (KeyError, ValueError):
            continue
        if path.is_file():
            return _Source(path, image.disk_format, image.container_format)
    raise _Failed("The image has no data to import (nothing staged, or no readable copy).")


def _import_to(
    db: db_session.Database, job: Job, source: _Source, store_name: str, set_active: bool
) -> None:
    rt = runtime.get()
    store = rt.stores.get(store_name)
    if store is None:
        raise _Failed(f"Store {store_name!r} is not configured.")
    inspector = None
    if source.container_format == "bare":
        inspector = inspection.Inspection(
            source.disk_format, rt.settings.require_image_format_match
        )
    received = ingest.receive(
        ingest.read_file(source.path),
        store,
        job.image_id,
        limit=rt.settings.image_size_cap,
        on_limit=lambda n: data.too_large(n, None),
        inspection=inspector,
    )
    data.commit_or_discard(
        db, received, lambda s, placed: _placed(s, job, store, received, set_active, placed)
    )


def _placed(
    session: Session,
    job: Job,
    store: stores.FileStore,
    received: ingest.Received,
    set_active: bool,
    placed: list[Path],
) -> None:
    image = _locked(session, job)
    if image.checksum is not None and image.checksum != received.checksum:
        raise _Failed(f"The data copied to store {store.name} does not match the image's checksum.")
    if job.method != COPY_IMAGE:
        quotas.check_image_size(session, image.owner, received.size, excluding=image.id)
    relative = data.place(store, received, image.id, placed)
    session.add(models.ImageLocation(image_id=image.id, store=store.name, path=relative))
    image.size = received.size
    image.checksum = received.checksum
    image.os_hash_algo = ingest.HASH_ALGO
    image.os_hash_value = received.hash_value
    if received.virtual_size is not None:
        image.virtual_size = received.virtual_size
    merge_stores(session, image.id, IMPORTING, [store.name], remove=True)
    if set_active and image.status != "active":
        image.status = "active"
    images.touch(image)


def _store_failed(session: Session, job: Job, store_name: str) -> None:
    image = _locked(session, job)
    merge_stores(session, image.id, FAILED, [store_name], remove=False)
    merge_stores(session, image.id, IMPORTING, [store_name], remove=True)
    images.touch(image)


def _complete(session: Session, job: Job, undo: import_sources.TakenMetadata) -> None:
    image = _locked(session, job)
    if job.method != COPY_IMAGE:
        _drop_locations(session, image.id, None)
        if image.status != "active":
            _undo(session, job, undo, image, [], ())
            _finish_task(session, job, "failure", "None of the uploads finished!")
            return
    pop_property(session, image.id, IMPORT_TASK)
    images.touch(image)
    _finish_task(session, job, "success")


def _undo(
    session: Session,
    job: Job,
    undo: import_sources.TakenMetadata,
    image: models.Image,
    placed: list[str],
    failed: tuple[str, ...],
) -> None:
    """Take back what this job did to ``image`` and release its lock."""
    _drop_locations(session, image.id, placed)
    merge_stores(session, image.id, IMPORTING, job.stores, remove=True)
    merge_stores(session, image.id, FAILED, failed, remove=False)
    undo.give_back(session, image)
    if job.method != COPY_IMAGE:
        _drop_locations(session, image.id, None)
        image.status = "queued"
        image.size = None
        image.virtual_size = None
        remaining = session.scalar(
            select(models.ImageLocation.id).where(models.ImageLocation.image_id == image.id)
        )
        if remaining is None:
            image.checksum = image.os_hash_algo = image.os_hash_value = None
    pop_property(session, image.id, IMPORT_TASK)
    images.touch(image)


def _revert(
    db: db_session.Database,
    job: Job,
    undo: import_sources.TakenMetadata,
    placed: list[str],
    failed: tuple[str, ...],
    reason: str,
) -> None:
    def run(session: Session) -> None:
        try:
            image = _locked(session, job)
        except Aborted:
            _finish_task(session, job, "failure", reason)
            return
        _undo(session, job, undo, image, placed, failed)
        _finish_task(session, job, "failure", reason)

    db.run(run, write=True)


# --- web-download and glance-download: into the staging area first ---


def _download(db: db_session.Database, job: Job, undo: import_sources.TakenMetadata) -> None:
    """Bring the job's data into the staging area, as a stage call would (no transaction
    open while it streams); _Failed says why not."""
    source: import_sources.SourceImage | None = None
    expected: int | None = None
    try:
        room = db.run(lambda s: _stage_room(s, job), write=False)
        if job.method == WEB_DOWNLOAD:
            chunks = import_sources.web_data(str(job.params.get("uri")))
        else:
            if job.caller is None:
                raise _Failed("The import lost its caller's credentials.")
            source = import_sources.find_source(db, job.caller, job.params)
            found = source
            expected = import_sources.check_source(found.record, str(job.params["glance_image_id"]))
            db.run(lambda s: undo.take(s, _locked(s, job), found.record), write=True)
            chunks = found.read()
        received = _receive_staged(job, chunks, room)
    except (Aborted, _Failed):
        raise
    except Exception as exc:
        raise _Failed(_reason(exc)) from exc
    finally:
        if source is not None:
            source.close()
    if expected is not None and received.size != expected:
        received.discard()
        raise _Failed(
            f"Task {job.task_id} failed because downloaded data size {received.size} is "
            f"different from expected {expected}"
        )
    try:
        data.commit_or_discard(db, received, lambda s, placed: _staged(s, job, received, placed))
    except (Aborted, _Failed):
        raise
    except Exception as exc:
        raise _Failed(_reason(exc)) from exc


def _stage_room(session: Session, job: Job) -> int | None:
    image = _locked(session, job)
    return quotas.stage_room(session, image.owner, excluding=image.id)


def _receive_staged(job: Job, chunks: Iterator[bytes], room: int | None) -> ingest.Received:
    rt = runtime.get()
    cap = rt.settings.image_size_cap

    def on_limit(size: int) -> Exception:
        if size > cap:
            return data.too_large(size, None)
        return rest.PayloadTooLarge(
            f"Image exceeds the staging quota: the project may stage {room} more bytes."
        )

    # Hashes and format inspection come when the staged data goes into each store.
    return ingest.receive(
        chunks,
        rt.staging,
        job.image_id,
        limit=cap if room is None else min(cap, room),
        on_limit=on_limit,
        hashes=False,
    )


def _staged(session: Session, job: Job, received: ingest.Received, placed: list[Path]) -> None:
    image = _locked(session, job)
    quotas.check_stage_size(session, image.owner, received.size, excluding=image.id)
    relative = data.place(runtime.get().staging, received, image.id, placed)
    session.add(models.ImageLocation(image_id=image.id, store=stores.STAGING, path=relative))
    image.size = received.size
    images.touch(image)
