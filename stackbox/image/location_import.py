"""Image API 2.17's POST /v2/images/{id}/locations and its ``location_import`` task.

The request is checked at once (the image must be queued, the caller its
owner or a service, the URL an http one that passes the allow-list, the
validation data well formed), then answered 202 while a task does the rest.
The task holds the image's import lock (``os_glance_import_task``) from the
request on. It asks the URL for its size (HEAD), records the location, and
then, as Glance's flow does:

- with ``do_secure_hash`` (the default) and validation data: the image is
  ``importing`` while the data is read and hashed with the given algorithm; a
  hash that matches makes it ``active``, one that does not puts it back to
  ``queued`` without hashes (the location stays: the http store is read-only,
  so Glance keeps it too) and fails the task;
- with ``do_secure_hash`` and no validation data: the image is ``active`` at
  once and gets its checksum and hash (the configured algorithm) when the
  hashing ends;
- without ``do_secure_hash``: the validation data, if any, is taken as given.

While hashing, the job looks every second whether the image still exists and
the lock is still its own; a deleted image stops it (Glance cancels the hash
calculation then too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.db import base as db_base
from stackbox.db import session as db_session
from stackbox.image import (
    access,
    httpstore,
    images,
    import_jobs,
    ingest,
    locations,
    models,
    runtime,
)

LOG = logging.getLogger(__name__)

TASK_TYPE = "location_import"
# Glance's http_retries: attempts at reading the data for its hash.
HTTP_RETRIES = 3
# Seconds between checks that the image is still there while hashing.
CHECK_EVERY = 1.0
# Location imports running at once in this process; more wait their turn.
_slots = threading.BoundedSemaphore(2)
# The algorithms POST /locations accepts in validation_data (Glance's enum).
HASH_ALGOS = ("sha1", "sha256", "sha512", "md5")
ADD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "maxLength": 2048},
        "validation_data": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "os_hash_algo": {"type": "string", "maxLength": 64, "enum": list(HASH_ALGOS)},
                "os_hash_value": {"type": "string", "maxLength": 128},
            },
            "dependencies": {
                "os_hash_value": ["os_hash_algo"],
                "os_hash_algo": ["os_hash_value"],
            },
        },
    },
    "required": ["url"],
}


@dataclasses.dataclass(frozen=True)
class Job:
    task_id: str
    image_id: str
    url: str
    validation: dict[str, str]


@dataclasses.dataclass(frozen=True)
class _Digest:
    checksum: str
    value: str
    size: int


# --- the request: POST /v2/images/{image_id}/locations ---


def _check_hash(given: Mapping[str, str]) -> None:
    if "os_hash_value" not in given:
        return
    value = given["os_hash_value"]
    size = locations.hex_size(value)
    if size is None:
        raise rest.BadRequest(f"os_hash_value ({value}) is not a valid hexadecimal value")
    algo = given.get("os_hash_algo", ingest.HASH_ALGO)
    want = hashlib.new(algo).digest_size
    if size != want:
        raise rest.BadRequest(
            f"os_hash_value: ({value}) is not the correct size for ({algo}) "
            f"(should be ({want}) bytes)"
        )


def _admit(
    session: Session, request: rest.ApiRequest, url: str, given: Mapping[str, str]
) -> models.Image:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    if image.status != "queued":
        raise rest.Conflict(f"It's not allowed to add locations if image status is {image.status}.")
    access.enforce(session, request, "add_image_location", image)
    if "service" not in request.context.roles and not (
        httpstore.enabled() and httpstore.is_http_url(url)
    ):
        raise rest.Forbidden("http store must be enabled to use location API by normal user.")
    _check_hash(given)
    return image


def _record(session: Session, request: rest.ApiRequest, url: str, given: dict[str, str]) -> Job:
    image = _admit(session, request, url, given)
    ctx = request.context
    moment = db_base.utcnow()
    task = models.Task(
        id=str(uuid.uuid4()),
        type=TASK_TYPE,
        status="pending",
        owner=ctx.project_id,
        image_id=image.id,
        input={"image_id": image.id, "loc_url": url, "validation_data": given},
        result=None,
        message="",
        request_id=ctx.request_id,
        user_id=ctx.user_id,
        created_at=moment,
        updated_at=moment,
    )
    session.add(task)
    session.flush()
    # One operation at a time on an image: 409 while a live task holds its lock.
    import_jobs.take_lock(session, image, task.id)
    return Job(task.id, image.id, url, dict(given))


def add_location(request: rest.ApiRequest, db: db_session.Database) -> rest.ApiResponse:
    body = request.body
    if not isinstance(body, dict):
        raise rest.BadRequest("Request body must be a JSON object.")
    validation.check(ADD_SCHEMA, body)
    url: str = body["url"]
    given: dict[str, str] = dict(body.get("validation_data") or {})
    db.run(lambda s: _admit(s, request, url, given), write=False)
    # Outside any transaction: the allow-list resolves the host name.
    if not (httpstore.enabled() and httpstore.is_http_url(url)):
        raise rest.BadRequest(locations.INVALID)
    httpstore.check_url(url)
    job = db.run(lambda s: _record(s, request, url, given), write=True)
    start(db, job)
    return rest.ApiResponse(202)


# --- the job ---


def start(db: db_session.Database, job: Job) -> None:
    thread = threading.Thread(
        target=run, args=(db, job), name=f"image-location-{job.image_id[:8]}", daemon=True
    )
    thread.start()


def run(db: db_session.Database, job: Job) -> None:
    with _slots:
        try:
            _run(db, job)
        except import_jobs.Aborted as exc:
            LOG.warning(
                "location import %s of image %s stopped: %s", job.task_id, job.image_id, exc
            )
            message = str(exc)
            db.run(lambda s: _finish(s, job, "failure", message), write=True)
        except Exception as exc:
            LOG.exception("location import %s of image %s failed", job.task_id, job.image_id)
            message = f"Unexpected error: {exc}"
            try:
                db.run(lambda s: _give_up(s, job, message), write=True)
            except Exception:
                LOG.exception("could not fail location import %s", job.task_id)


def _run(db: db_session.Database, job: Job) -> None:
    settings = runtime.get().settings
    try:
        size = httpstore.size(job.url)
        if size <= 0:
            raise httpstore.FetchFailed("the location holds no data")
        if size > settings.image_size_cap:
            raise httpstore.FetchFailed(
                f"{size} bytes is over the image size cap of {settings.image_size_cap} bytes"
            )
    except httpstore.FetchFailed as exc:
        message = f"Invalid location: {exc}"
        db.run(lambda s: _give_up(s, job, message), write=True)
        return
    algo = job.validation.get("os_hash_algo") or ingest.HASH_ALGO
    secure = settings.do_secure_hash
    db.run(lambda s: _attach(s, job, size, secure, algo), write=True)
    if not secure:
        db.run(lambda s: _complete(s, job), write=True)
        return
    digest: _Digest | None = None
    try:
        digest = _hash(db, job, algo, settings.image_size_cap)
    except httpstore.FetchFailed as exc:
        LOG.warning("hash calculation for image %s failed: %s", job.image_id, exc)
    found = digest
    db.run(lambda s: _record_hash(s, job, found), write=True)


def _locked(session: Session, job: Job) -> models.Image:
    return import_jobs.locked_image(session, job.image_id, job.task_id, "location import")


def _finish(session: Session, job: Job, status: str, message: str = "") -> None:
    import_jobs.finish_task(session, job.task_id, job.image_id, status, message)


def _release(session: Session, image: models.Image) -> None:
    import_jobs.pop_property(session, image.id, import_jobs.IMPORT_TASK)
    images.touch(image)


def _give_up(session: Session, job: Job, message: str) -> None:
    """Fail the task, releasing the lock (the image keeps what was recorded so far)."""
    image = session.get(models.Image, job.image_id)
    if image is not None and (
        import_jobs.get_property(session, image.id, import_jobs.IMPORT_TASK) == job.task_id
    ):
        if image.status == "importing":
            _unhash(image)
        _release(session, image)
    _finish(session, job, "failure", message)


def _unhash(image: models.Image) -> None:
    image.status = "queued"
    image.checksum = image.os_hash_algo = image.os_hash_value = None


def _attach(session: Session, job: Job, size: int, secure: bool, algo: str) -> None:
    image = _locked(session, job)
    task = session.get(models.Task, job.task_id)
    if task is not None:
        task.status = "processing"
        task.updated_at = images.now()
    if image.status != "queued":
        raise import_jobs.Aborted(
            f"It's not allowed to add locations if image status is {image.status}."
        )
    session.add(
        models.ImageLocation(
            image_id=image.id, store=httpstore.store_id(), path="", url=job.url, meta=None
        )
    )
    if not image.size:
        image.size = size
    if secure:
        image.os_hash_algo = algo
        image.status = "importing" if job.validation else "active"
    else:
        for key, value in job.validation.items():
            setattr(image, key, value)
        image.status = "active"
    images.touch(image)


def _hash(db: db_session.Database, job: Job, algo: str, cap: int) -> _Digest:
    """The data's md5 and ``algo`` digests, read again on a broken transfer (a few times)."""
    failure: httpstore.FetchFailed | None = None
    for attempt in range(1, HTTP_RETRIES + 1):
        try:
            return _hash_once(db, job, algo, cap)
        except httpstore.FetchFailed as exc:
            LOG.debug("[%d/%d] hashing image %s: %s", attempt, HTTP_RETRIES, job.image_id, exc)
            failure = exc
    assert failure is not None
    raise failure


def _hash_once(db: db_session.Database, job: Job, algo: str, cap: int) -> _Digest:
    md5 = hashlib.md5(usedforsecurity=False)
    digest = hashlib.new(algo)
    total = 0
    checked = time.monotonic()

    def still_there(session: Session) -> None:
        _locked(session, job)

    chunks = httpstore.read(job.url)
    try:
        for chunk in chunks:
            total += len(chunk)
            if total > cap:
                raise httpstore.FetchFailed(f"the data is over the image size cap of {cap} bytes")
            md5.update(chunk)
            digest.update(chunk)
            if time.monotonic() - checked >= CHECK_EVERY:
                db.run(still_there, write=False)
                checked = time.monotonic()
    finally:
        chunks.close()
    return _Digest(md5.hexdigest(), digest.hexdigest(), total)


def _record_hash(session: Session, job: Job, digest: _Digest | None) -> None:
    image = _locked(session, job)
    wanted = job.validation.get("os_hash_value")
    if digest is None:
        if wanted is not None:
            _unhash(image)
            _release(session, image)
            _finish(session, job, "failure", f"Hash calculation failed for image {image.id} data")
            return
        # The location stands (as in Glance); only its hash stays unknown.
        image.os_hash_algo = None
        _complete(session, job)
        return
    if wanted is not None and wanted != digest.value:
        _unhash(image)
        _release(session, image)
        _finish(
            session,
            job,
            "failure",
            f"os_hash_value: ({wanted}) not matched with actual os_hash_value: ({digest.value})",
        )
        return
    image.checksum = digest.checksum
    image.os_hash_value = digest.value
    image.size = digest.size
    if image.status == "importing":
        image.status = "active"
    _complete(session, job)


def _complete(session: Session, job: Job) -> None:
    image = _locked(session, job)
    _release(session, image)
    _finish(session, job, "success")


ROUTES = [rest.Route("POST", "/v2/images/{image_id}/locations", add_location, manual_tx=True)]
