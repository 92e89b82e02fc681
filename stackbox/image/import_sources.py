"""Where ``web-download`` and ``glance-download`` imports get their data.

``web-download`` reads a URL the caller gives. The server makes that request,
so the URL and every redirect must pass the fetch allow-list
(``httpstore.check_url``), and the fetch goes through ``httpstore.open_url``,
which connects only to the addresses it checked.

``glance-download`` reads another image through the Image API found in the
caller's catalog (region and interface as the caller names them), with the
caller's token, as Glance does. When that endpoint is this very service, the
source image is read locally instead, as the caller (its visibility and the
``get_image``/``download_image`` policies): the same answer without an HTTP
round trip through ourselves, and without exempting our own address from the
allow-list. Only the record's properties named by Glance's
``[glance_download_properties] extra_properties`` prefixes, and its formats,
go to the target image.

These functions run in the import's background thread; ``SourceFailed`` says
why the data could not be had, in words for the task's message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.db import session as db_session
from stackbox.image import access, data, httpstore, images, models, runtime

LOG = logging.getLogger(__name__)

WEB_DOWNLOAD = "web-download"
GLANCE_DOWNLOAD = "glance-download"
# Seconds a fetch may wait on the network for any one step (connect, each read).
FETCH_TIMEOUT = 60.0
CHUNK = 1 << 20
DEFAULT_PORTS = {"http": 80, "https": 443}


class SourceFailed(Exception):
    """The source's data or record could not be had; the message is the task's."""


# --- request checks (synchronous, before a task exists) ---


def check_web_download(method: Mapping[str, Any]) -> None:
    """400 unless the ``uri`` of a web-download request is well formed and allowed."""
    uri = method.get("uri")
    if not isinstance(uri, str) or not uri:
        raise rest.BadRequest("'uri' needs to be set for web-download import method")
    try:
        parts = urllib.parse.urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise rest.BadRequest(
            f"URI for web-download is malformed: {httpstore.shown(uri)}"
        ) from None
    if not parts.scheme:
        raise rest.BadRequest(f"URI for web-download is malformed: {httpstore.shown(uri)}")
    httpstore.check_url(uri, "web-download")


def check_glance_download(method: dict[str, Any]) -> None:
    """Glance's checks of a glance-download request (the interface defaults to public)."""
    for key in ("glance_region", "glance_image_id"):
        if key not in method:
            raise rest.BadRequest(f"'{key}' needs to be set for glance-download import method")
        if not isinstance(method[key], str):
            raise rest.BadRequest(f"'{key}' must be a string")
    try:
        uuid.UUID(method["glance_image_id"])
    except ValueError:
        raise rest.BadRequest(
            f"Remote image id does not look like a UUID: {method['glance_image_id']}"
        ) from None
    interface = method.setdefault("glance_service_interface", "public")
    if not isinstance(interface, str):
        raise rest.BadRequest("'glance_service_interface' must be a string")


# --- fetching over HTTP ---


def _content_length(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _read_all(
    read: Callable[[int], bytes], close: Callable[[], None], url: str, expected: int | None
) -> Iterator[bytes]:
    """A response body chunk by chunk; SourceFailed if it breaks off or is not
    ``expected`` bytes long (Glance's check of the downloaded size)."""
    got = 0
    try:
        while chunk := read(CHUNK):
            got += len(chunk)
            yield chunk
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise SourceFailed(f"Reading {url} failed after {got} bytes: {exc}") from None
    finally:
        close()
    if expected is not None and got != expected:
        raise SourceFailed(
            f"The downloaded data size {got} is different from the expected {expected}"
        )


def web_data(uri: str) -> Iterator[bytes]:
    """The data at ``uri`` (its Content-Length, if sent, must match what arrives)."""
    shown = httpstore.shown(uri)
    try:
        response = httpstore.open_url(uri)
    except httpstore.FetchFailed as exc:
        raise SourceFailed(str(exc)) from None
    if response.status != 200:
        response.close()
        raise SourceFailed(f"Fetching {shown} failed: HTTP {response.status}")
    expected = _content_length(response.header("Content-Length"))
    return _read_all(response.raw.read, response.close, shown, expected)


class _AllowListRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to an allowed URL; never carry the token to another origin."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if not httpstore.allowed(newurl):
            raise SourceFailed(f"Redirect to disallowed URL: {httpstore.shown(newurl)}")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("X-auth-token")
        return new


def _origin(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def _open_with_token(url: str, token: str) -> Any:
    """GET an Image or Identity API URL with the caller's token (no other origin sees it)."""
    opener = urllib.request.build_opener(_AllowListRedirects)
    request = urllib.request.Request(url, headers={"Accept": "*/*", "X-Auth-Token": token})
    try:
        return opener.open(request, timeout=FETCH_TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise SourceFailed(f"Fetching {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceFailed(f"Fetching {url} failed: {reason}") from None


def _json(url: str, token: str) -> Any:
    with _open_with_token(url, token) as response:
        try:
            return json.loads(response.read())
        except (ValueError, OSError, http.client.HTTPException):
            raise SourceFailed(f"The answer of {url} is not JSON") from None


# --- glance-download ---


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who asked for a glance-download: the source is read with their rights."""

    context: context.RequestContext
    token: str


class SourceImage:
    """The source image's record, and its data to read once (``close`` when done)."""

    def __init__(self, record: dict[str, Any], chunks: Callable[[], Iterator[bytes]]) -> None:
        self.record = record
        self._chunks = chunks
        self._fd: int | None = None

    @classmethod
    def local(cls, record: dict[str, Any], fd: int | None) -> SourceImage:
        source = cls(record, lambda: iter(()))
        source._fd = fd
        source._chunks = source._read_fd
        return source

    def _read_fd(self) -> Iterator[bytes]:
        fd = self._fd
        if fd is None:
            return
        try:
            while chunk := os.read(fd, CHUNK):
                yield chunk
        finally:
            self.close()

    def read(self) -> Iterator[bytes]:
        return self._chunks()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def catalog(caller: Caller) -> list[dict[str, Any]]:
    """The caller's service catalog, as Identity gives it for their token."""
    body = _json(f"{runtime.get().base_url}/identity/v3/auth/catalog", caller.token)
    found = body.get("catalog") if isinstance(body, dict) else None
    return found if isinstance(found, list) else []


def image_endpoint(entries: list[dict[str, Any]], region: str, interface: str) -> str:
    """The image endpoint of ``region`` and ``interface`` (region compared without case)."""
    for service in entries:
        if not isinstance(service, dict) or service.get("type") != "image":
            continue
        for endpoint in service.get("endpoints") or []:
            regions = {str(endpoint.get(k) or "").lower() for k in ("region_id", "region")}
            if region.lower() in regions and endpoint.get("interface") == interface:
                return str(endpoint["url"]).rstrip("/")
    raise SourceFailed(f"{interface} glance endpoint not found for region {region}")


def is_this_service(endpoint: str) -> bool:
    """Whether ``endpoint`` is this server's Image API (same origin, same path)."""
    ours = f"{runtime.get().base_url}/image"
    return _origin(endpoint) == _origin(ours) and _path(endpoint) == _path(ours)


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path.rstrip("/")


def find_source(db: db_session.Database, caller: Caller, method: Mapping[str, Any]) -> SourceImage:
    """The image a glance-download names, through the caller's catalog."""
    region = str(method["glance_region"])
    interface = str(method.get("glance_service_interface") or "public")
    image_id = str(method["glance_image_id"])
    endpoint = image_endpoint(catalog(caller), region, interface)
    if is_this_service(endpoint):
        return _local_source(db, caller.context, image_id)
    return _remote_source(endpoint, caller.token, image_id)


def _local_source(
    db: db_session.Database, ctx: context.RequestContext, image_id: str
) -> SourceImage:
    def look(session: Session) -> tuple[dict[str, Any], int | None]:
        try:
            image = access.get_visible(session, ctx, image_id)
            target = access.target(session, ctx, image)
            policy.enforce(ctx, "get_image", target, service="image")
            record = images.render(session, image)
            if image.status != "active":
                return record, None
            policy.enforce(ctx, "download_image", target, service="image")
        except rest.ApiError as exc:
            raise SourceFailed(exc.message) from None
        except policy.PolicyNotAuthorized as exc:
            raise SourceFailed(str(exc)) from None
        # Opened inside the transaction: a delete committing later cannot pull the file away.
        return record, data.open_data(session, image)

    record, fd = db.run(look, write=False)
    if fd is None and record.get("status") == "active":
        raise SourceFailed(f"The data of image {image_id} is not readable")
    return SourceImage.local(record, fd)


def _remote_source(endpoint: str, token: str, image_id: str) -> SourceImage:
    url = f"{endpoint}/v2/images/{image_id}"
    # Glance filters the data URL it derives from the catalog like a web-download URI.
    if not httpstore.allowed(f"{url}/file"):
        raise SourceFailed(f"Processed URI for glance-download does not pass filtering: {url}/file")
    record = _json(url, token)
    if not isinstance(record, dict):
        raise SourceFailed(f"The image record at {url} is not an object")

    def chunks() -> Iterator[bytes]:
        response = _open_with_token(f"{url}/file", token)
        return _read_all(response.read, response.close, f"{url}/file", None)

    return SourceImage(record, chunks)


def copied_properties(record: Mapping[str, Any]) -> dict[str, str]:
    """The source's properties the target takes (never Glance's reserved os_glance_*)."""
    prefixes = tuple(
        p.strip() for p in runtime.get().settings.glance_download_properties.split(",") if p.strip()
    )
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in record.items()
        if key.startswith(prefixes) and not key.startswith("os_glance") and value is not None
    }


def check_source(record: Mapping[str, Any], image_id: str) -> int:
    """The source's size, once it is known to be active with formats (SourceFailed otherwise)."""
    if record.get("status") != "active":
        raise SourceFailed(
            f"Source image status should be active instead of {record.get('status')}"
        )
    for key in ("disk_format", "container_format"):
        if not isinstance(record.get(key), str):
            raise SourceFailed(f"Source image {image_id} has no {key}")
    size = record.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise SourceFailed(f"Size attribute of remote image {image_id} could not be determined.")
    return size


@dataclasses.dataclass
class TakenMetadata:
    """The formats and properties a glance-download gave its target, and what they
    replaced (Glance's flow gives them back when the import fails)."""

    formats: tuple[str | None, str | None] | None = None
    # Old values of the properties set (None: the image did not have it).
    properties: dict[str, str | None] = dataclasses.field(default_factory=dict)

    def take(self, session: Session, image: models.Image, record: Mapping[str, Any]) -> None:
        if self.formats is None:
            self.formats = (image.disk_format, image.container_format)
        for name, value in copied_properties(record).items():
            if name not in self.properties:
                row = session.get(models.ImageProperty, (image.id, name))
                self.properties[name] = row.value if row is not None else None
            _set(session, image.id, name, value)
        image.disk_format = str(record["disk_format"])
        image.container_format = str(record["container_format"])
        images.touch(image)

    def give_back(self, session: Session, image: models.Image) -> None:
        if self.formats is not None:
            image.disk_format, image.container_format = self.formats
        for name, value in self.properties.items():
            _set(session, image.id, name, value)


def _set(session: Session, image_id: str, name: str, value: str | None) -> None:
    row = session.get(models.ImageProperty, (image_id, name))
    if value is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(models.ImageProperty(image_id=image_id, name=name, value=value))
    else:
        row.value = value
