"""Image data: upload (``PUT /v2/images/{id}/file``) and download (``GET .../file``).

An upload runs in three steps and holds no transaction while data streams:
a short write marks the image ``saving``; the data then streams into a
temporary file of the target store (hashed, measured, inspected, capped by
``image_size_cap`` and the owner's quota); a last short write renames the file
into place and marks the image ``active``. Any failure removes the temporary
file and puts the image back to ``queued`` (``killed`` for our own faults);
if the image was deleted meanwhile the data goes and the client gets 410.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.db import session as db_session
from stackbox.image import (
    access,
    httpstore,
    images,
    ingest,
    inspection,
    models,
    quotas,
    runtime,
    stores,
)

LOG = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"
# Bytes per read when sending image data.
SEND_CHUNK = 1 << 20
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)\s*-\s*(\d+)\s*/\s*(\d+|\*)\s*$")


@dataclasses.dataclass(frozen=True)
class Transfer:
    """What a data transfer into an image started from (to recognise the image at the end)."""

    image_id: str
    created_at: datetime.datetime
    status: str
    disk_format: str | None
    container_format: str | None
    # Bytes the owner may still add (None: no quota).
    room: int | None


def require_octet_stream(request: rest.ApiRequest) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != OCTET_STREAM:
        shown = ctype or "None"
        raise rest.UnsupportedMediaType(
            f"Content type {shown} is not supported; image data must be sent as {OCTET_STREAM}."
        )


def size_hint(request: rest.ApiRequest) -> int | None:
    """The size the client announced (x-openstack-image-size, else Content-Length)."""
    raw = request.headers.get("x-openstack-image-size") or request.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise rest.BadRequest("Invalid or missing image size in request headers.") from None
    if value < 0:
        raise rest.BadRequest("Invalid or missing image size in request headers.")
    return value or None


def too_large(size: int, room: int | None) -> rest.PayloadTooLarge:
    cap = runtime.get().settings.image_size_cap
    if size > cap:
        return rest.PayloadTooLarge(
            f"The incoming image is too large: {size} bytes is over the image size cap "
            f"of {cap} bytes."
        )
    return rest.PayloadTooLarge(
        f"Image exceeds the storage quota: the project may store {room} more bytes."
    )


def byte_limit(room: int | None) -> int:
    cap = runtime.get().settings.image_size_cap
    return cap if room is None else min(cap, room)


def same_transfer(image: models.Image | None, start: Transfer, status: str) -> bool:
    """Whether ``image`` is still the one the transfer began on, in ``status``.

    A delete (the row is gone, or a new one under the same id has another
    creation time) or any status change ends the transfer. The generation is not
    compared: it also moves on harmless edits (a new name, a tag) that must not
    fail an upload. What the data was checked against, the formats, is compared
    (they cannot change outside ``queued`` anyway).
    """
    return (
        image is not None
        and image.status == status
        and image.created_at == start.created_at
        and image.disk_format == start.disk_format
        and image.container_format == start.container_format
    )


def storage_error(exc: OSError) -> rest.ApiError | None:
    """Glance's answers to a store that cannot take the data."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return rest.PayloadTooLarge(f"Image storage media is full: {exc.strerror}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return rest.ApiError(
            f"Insufficient permissions on image storage media: {exc.strerror}", status=503
        )
    return None


def target_store(request: rest.ApiRequest) -> stores.FileStore:
    rt = runtime.get()
    name = request.headers.get("x-image-meta-store")
    if name is None:
        return rt.default_store
    if name not in rt.stores:
        raise rest.BadRequest(f"Store {name!r} is not configured.")
    return rt.stores[name]


# --- upload ---


def _begin_upload(
    session: Session, request: rest.ApiRequest, image_id: str, hint: int | None
) -> Transfer:
    image = access.get_visible(session, request.context, image_id)
    access.enforce(session, request, "upload_image", image)
    if image.status != "queued":
        raise rest.Conflict(f"Image status transition from {image.status} to saving is not allowed")
    missing = [k for k in ("disk_format", "container_format") if not getattr(image, k)]
    if missing:
        noun = "Property" if len(missing) == 1 else "Properties"
        raise rest.BadRequest(f"{noun} {', '.join(missing)} must be set prior to saving data.")
    if hint is not None:
        quotas.check_image_size(session, image.owner, hint, excluding=image.id)
    room = quotas.size_room(session, image.owner, excluding=image.id)
    image.status = "saving"
    images.touch(image)
    return Transfer(
        image.id,
        image.created_at,
        "saving",
        image.disk_format,
        image.container_format,
        room,
    )


def place(
    store: stores.FileStore, received: ingest.Received, image_id: str, placed: list[Path]
) -> str:
    """Rename the data into place inside the transaction that records it.

    ``placed`` collects the final path so that a failed transaction removes it again
    (a crash in between leaves a file no location names: the sweep's work).
    """
    # A retried transaction finds the file already renamed by its first attempt.
    relative = store.commit(received.temp, image_id) if received.temp.exists() else image_id
    placed.append(store.root / relative)
    return relative


def _finish_upload(
    session: Session,
    start: Transfer,
    store: stores.FileStore,
    received: ingest.Received,
    placed: list[Path],
) -> None:
    image = session.get(models.Image, start.image_id)
    if image is None or not same_transfer(image, start, "saving"):
        raise rest.Gone(
            f"Image {start.image_id} could not be found after upload. The image may have "
            "been deleted during the upload, cleaning up the chunks uploaded."
        )
    quotas.check_image_size(session, image.owner, received.size, excluding=image.id)
    relative = place(store, received, image.id, placed)
    session.add(models.ImageLocation(image_id=image.id, store=store.name, path=relative))
    image.size = received.size
    image.virtual_size = received.virtual_size
    image.checksum = received.checksum
    image.os_hash_algo = ingest.HASH_ALGO
    image.os_hash_value = received.hash_value
    image.status = "active"
    images.touch(image)


def restore(db: db_session.Database, start: Transfer, status: str) -> None:
    """Put an image whose transfer failed back to ``status`` (if it is still that transfer's)."""

    def run(session: Session) -> None:
        image = session.get(models.Image, start.image_id)
        if image is None or not same_transfer(image, start, start.status):
            return
        image.status = status
        image.size = None
        image.virtual_size = None
        images.touch(image)

    try:
        db.run(run, write=True)
    except Exception:
        LOG.exception("could not restore image %s to %s", start.image_id, status)


def commit_or_discard(
    db: db_session.Database,
    received: ingest.Received,
    step: Callable[[Session, list[Path]], None],
) -> None:
    """Run the transaction that places the data; if it fails, no copy of the data stays."""
    placed: list[Path] = []
    try:
        db.run(lambda s: step(s, placed), write=True)
    except BaseException:
        received.discard()
        for path in placed:
            path.unlink(missing_ok=True)
        raise


def receive(
    db: db_session.Database,
    start: Transfer,
    store: stores.FileStore,
    chunks: Iterable[bytes],
    *,
    on_limit: Callable[[int], Exception],
    inspect: bool,
    hashes: bool = True,
) -> ingest.Received:
    """Stream the data of a started transfer; on failure put the image back and say why."""
    inspector = None
    if inspect and start.container_format == "bare":
        settings = runtime.get().settings
        inspector = inspection.Inspection(start.disk_format, settings.require_image_format_match)
    try:
        return ingest.receive(
            chunks,
            store,
            start.image_id,
            limit=byte_limit(start.room),
            on_limit=on_limit,
            inspection=inspector,
            hashes=hashes,
        )
    except rest.ApiError:
        restore(db, start, "queued")
        raise
    except ingest.SourceFailed as exc:
        restore(db, start, "queued")
        raise rest.BadRequest(f"The image data could not be read: {exc}") from exc
    except OSError as exc:
        answer = storage_error(exc)
        restore(db, start, "queued" if answer else "killed")
        if answer is None:
            raise
        raise answer from exc
    except BaseException:
        restore(db, start, "killed")
        raise


def finish(
    db: db_session.Database,
    start: Transfer,
    received: ingest.Received,
    step: Callable[[Session, list[Path]], None],
) -> None:
    """Record the received data; on failure (other than a vanished image) put the image back."""
    try:
        commit_or_discard(db, received, step)
    except rest.Gone:
        raise
    except rest.ApiError:
        restore(db, start, "queued")
        raise
    except BaseException:
        restore(db, start, "killed")
        raise


def upload(request: rest.ApiRequest, db: db_session.Database) -> None:
    require_octet_stream(request)
    image_id = request.path_params["image_id"]
    store = target_store(request)
    hint = size_hint(request)
    if hint is not None and hint > runtime.get().settings.image_size_cap:
        raise too_large(hint, None)
    start = db.run(lambda s: _begin_upload(s, request, image_id, hint), write=True)
    received = receive(
        db,
        start,
        store,
        request.body_stream or (),
        on_limit=lambda n: too_large(n, start.room),
        inspect=True,
    )
    finish(
        db,
        start,
        received,
        lambda s, placed: _finish_upload(s, start, store, received, placed),
    )


# --- download ---


def _byte_range(request: rest.ApiRequest, size: int) -> tuple[int, int] | None:
    """The single byte range asked for, as (first, last); None for the whole image."""
    header = request.headers.get("range")
    if header:
        if "," in header:
            return None
        found = _RANGE.match(header)
        if not found or not (found.group(1) or found.group(2)):
            return None
        first_s, last_s = found.group(1), found.group(2)
        if first_s:
            first = int(first_s)
            last = min(int(last_s), size - 1) if last_s else size - 1
            if first >= size or (last_s and int(last_s) < first):
                raise _unsatisfiable(size)
        else:
            suffix = int(last_s)
            if suffix == 0:
                raise _unsatisfiable(size)
            first, last = max(size - suffix, 0), size - 1
        return first, last
    # Glance still honours a Content-Range sent in a request, for old clients.
    legacy = request.headers.get("content-range")
    if legacy:
        found = _CONTENT_RANGE.match(legacy)
        if not found:
            raise _unsatisfiable(size)
        first, last = int(found.group(1)), int(found.group(2))
        if first > last or last >= size:
            raise _unsatisfiable(size)
        return first, last
    return None


def _unsatisfiable(size: int) -> rest.ApiError:
    return rest.ApiError(
        "Requested range not satisfiable", status=416, headers={"Content-Range": f"bytes */{size}"}
    )


def _send(fd: int, first: int, length: int) -> Iterator[bytes]:
    try:
        position, left = first, length
        while left > 0:
            data = os.pread(fd, min(SEND_CHUNK, left), position)
            if not data:
                return
            position += len(data)
            left -= len(data)
            yield data
    finally:
        os.close(fd)


def open_data(session: Session, image: models.Image) -> int | None:
    """An open file descriptor on the image's data in the first store that has it."""
    found = open_source(session, image, remote=False)
    assert not isinstance(found, str)
    return found


def open_source(session: Session, image: models.Image, remote: bool = True) -> int | str | None:
    """The image's data at its first usable location: an open file descriptor on a file of
    our stores, or (``remote``) a URL of the http store; None when it has neither."""
    rt = runtime.get()
    locations = session.scalars(
        select(models.ImageLocation)
        .where(
            models.ImageLocation.image_id == image.id,
            models.ImageLocation.status == "active",
            models.ImageLocation.store != stores.STAGING,
        )
        .order_by(models.ImageLocation.id)
    )
    for location in locations:
        if location.url is not None:
            if remote and httpstore.enabled() and httpstore.is_http_url(location.url):
                return location.url
            continue
        try:
            path = rt.store(location.store).path(location.path)
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (KeyError, ValueError, OSError) as exc:
            LOG.warning("image %s: data in store %s unreadable: %s", image.id, location.store, exc)
    return None


def _download_remote(request: rest.ApiRequest, image: models.Image, url: str) -> rest.ApiResponse:
    """Stream the data from the http store (a location's URL), ranges included."""
    headers = {"Content-Type": OCTET_STREAM}
    if image.checksum:
        headers["Content-MD5"] = image.checksum
    size = image.size
    status, first, length = 200, 0, size
    wanted = _byte_range(request, size) if size else None
    if wanted is not None and size:
        status, first, length = 206, wanted[0], wanted[1] - wanted[0] + 1
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{size}"
    if length is not None:
        headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return rest.ApiResponse(status, headers=headers, content=b"", content_type=OCTET_STREAM)
    try:
        chunks = httpstore.read(url, first, length if wanted is not None else None)
    except httpstore.FetchFailed as exc:
        LOG.warning("image %s: its location cannot be read: %s", image.id, exc)
        raise rest.ApiError(
            "The image data could not be fetched from its location.", status=503
        ) from None
    return rest.ApiResponse(status, headers=headers, stream=chunks, content_type=OCTET_STREAM)


def download(request: rest.ApiRequest, session: Session) -> rest.ApiResponse | None:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    if image.status == "deactivated" and not access.is_admin(request.context):
        raise rest.Forbidden(
            "The requested image has been deactivated. Image data download is forbidden."
        )
    access.enforce(session, request, "download_image", image)
    if image.status == "queued":
        # A location left by a failed location import holds no verified data.
        return None
    # Opened inside the transaction: a delete committing later cannot pull the file away.
    fd = open_source(session, image)
    if fd is None:
        return None
    if isinstance(fd, str):
        return _download_remote(request, image, fd)
    try:
        size = os.fstat(fd).st_size
        wanted = _byte_range(request, size)
    except BaseException:
        os.close(fd)
        raise
    status, first, length = 200, 0, size
    headers = {"Content-Type": OCTET_STREAM}
    if wanted is not None:
        status, first, length = 206, wanted[0], wanted[1] - wanted[0] + 1
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{size}"
    headers["Content-Length"] = str(length)
    if image.checksum:
        headers["Content-MD5"] = image.checksum
    if request.method == "HEAD":
        os.close(fd)
        return rest.ApiResponse(status, headers=headers, content=b"", content_type=OCTET_STREAM)
    return rest.ApiResponse(
        status, headers=headers, stream=_send(fd, first, length), content_type=OCTET_STREAM
    )


ROUTES = [
    rest.Route("PUT", "/v2/images/{image_id}/file", upload, stream=True),
    rest.Route("GET", "/v2/images/{image_id}/file", download),
]
