"""Image locations: where an image's data is, shown and changed as Glance does.

A location is a row of ``image_location``: a file in one of our filesystem
stores, shown as ``file://<absolute path>`` with ``{"store": <name>}``, or a
URL of the read-only http store (``httpstore``), shown as that URL with the
metadata its client gave and ``"store": <http store id>``.

Locations reveal where data lives, so image bodies carry them (``locations``,
``direct_url``) only when the operator turns on ``show_multiple_locations`` /
``show_image_direct_url``, and then only for callers the
``get_image_location`` policy allows (admins alone for deactivated images).
The same switch opens Glance's PATCH operations on ``/locations``: add at a
position, replace the whole list (reordering or new metadata only, unless the
image has none yet), remove one (never the last). Image API 2.17's
``GET /v2/images/{id}/locations`` lists them for services; its
``POST /v2/images/{id}/locations`` lives in ``location_import``.

A new URL is probed (allow-list, HEAD for its size) before the PATCH's write
transaction begins, so no network wait holds the database's write lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest, validation
from stackbox.db import base as db_base
from stackbox.db import session as db_session
from stackbox.image import (
    access,
    httpstore,
    ingest,
    models,
    runtime,
    stores,
)

LOG = logging.getLogger(__name__)

INVALID = "Invalid location"
LOCATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "maxLength": 255},
        "metadata": {"type": "object"},
        "validation_data": {
            "description": (
                "Values to be used to populate the corresponding image properties. If the "
                "image status is not 'queued', values must exactly match those already "
                "contained in the image properties."
            ),
            "type": "object",
            "writeOnly": True,
            "additionalProperties": False,
            "properties": {
                "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                "os_hash_algo": {"type": "string", "maxLength": 64},
                "os_hash_value": {"type": "string", "maxLength": 128},
            },
            "required": ["os_hash_algo", "os_hash_value"],
        },
    },
    "required": ["url", "metadata"],
}
LOCATIONS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": LOCATION_SCHEMA,
    "description": "A set of URLs to access the image file kept in external store",
}
_PATCH_SCHEMA = {"type": "object", "properties": {"locations": LOCATIONS_SCHEMA}}
# Path depth of each operation on /locations (Glance's _path_depth_limits).
_DEPTH = {"add": 2, "remove": 2, "replace": 1}


# --- what callers see ---


def rows(session: Session, image_id: str) -> list[models.ImageLocation]:
    """The image's locations in order (staged data is not a location)."""
    return list(
        session.scalars(
            select(models.ImageLocation)
            .where(
                models.ImageLocation.image_id == image_id,
                models.ImageLocation.status == "active",
                models.ImageLocation.store != stores.STAGING,
            )
            .order_by(models.ImageLocation.id)
        )
    )


def entry(row: models.ImageLocation) -> dict[str, Any] | None:
    """A location as Glance shows it; None for a file of a store no longer configured."""
    metadata = {**(row.meta or {}), "store": row.store}
    if row.url is not None:
        return {"url": row.url, "metadata": metadata}
    try:
        path = runtime.get().store(row.store).path(row.path)
    except (KeyError, ValueError):
        return None
    return {"url": f"file://{path}", "metadata": metadata}


def entries(found: list[models.ImageLocation]) -> list[dict[str, Any]]:
    return [shown for shown in map(entry, found) if shown is not None]


def shown(
    session: Session, image: models.Image, ctx: context.RequestContext | None
) -> dict[str, Any]:
    """The ``locations`` and ``direct_url`` fields of an image body for ``ctx``."""
    settings = runtime.get().settings
    if ctx is None or not (settings.show_multiple_locations or settings.show_image_direct_url):
        return {}
    listed: list[dict[str, Any]] = []
    if _may_see(session, ctx, image):
        listed = entries(rows(session, image.id))
    fields: dict[str, Any] = {}
    if settings.show_multiple_locations:
        fields["locations"] = listed
    if settings.show_image_direct_url and listed:
        fields["direct_url"] = listed[0]["url"]
    return fields


def _may_see(session: Session, ctx: context.RequestContext, image: models.Image) -> bool:
    if image.status == "deactivated" and not access.is_admin(ctx):
        return False
    target = access.target(session, ctx, image)
    return policy.allowed(ctx, "get_image_location", target, service="image")


# --- probing new URLs (outside any transaction) ---


@dataclasses.dataclass(frozen=True)
class Probe:
    """What a HEAD of a new location found: its size, or why it cannot be a location."""

    size: int | None = None
    error: str | None = None


def is_locations_path(path: Any) -> bool:
    return isinstance(path, str) and (path == "/locations" or path.startswith("/locations/"))


def _new_urls(operations: list[Any]) -> list[str]:
    found: list[str] = []
    for operation in operations:
        if not isinstance(operation, dict) or not is_locations_path(operation.get("path")):
            continue
        value = operation.get("value")
        values = [value] if operation.get("op") == "add" else value
        if operation.get("op") not in ("add", "replace") or not isinstance(values, list):
            continue
        found += [v["url"] for v in values if isinstance(v, dict) and isinstance(v.get("url"), str)]
    return list(dict.fromkeys(found))


def probe(
    db: db_session.Database, request: rest.ApiRequest, operations: list[Any]
) -> dict[str, Probe]:
    """Probe the URLs a PATCH would add, if the caller may add locations to the image."""
    wanted = _new_urls(operations)
    if not wanted:
        return {}

    def known(session: Session) -> set[str] | None:
        try:
            image = access.get_visible(session, request.context, request.path_params["image_id"])
            access.enforce(session, request, "modify_image", image)
            access.enforce(session, request, "set_image_location", image)
        except (rest.ApiError, policy.PolicyNotAuthorized):
            # The PATCH itself gives the answer; nobody else gets us to fetch anything.
            return None
        if not runtime.get().settings.show_multiple_locations:
            return None
        return {e["url"] for e in entries(rows(session, image.id))}

    current = db.run(known, write=False)
    if current is None:
        return {}
    return {url: _probe(url) for url in wanted if url not in current}


def _probe(url: str) -> Probe:
    if not httpstore.enabled() or not httpstore.is_http_url(url):
        return Probe(error=INVALID)
    if not httpstore.allowed(url):
        return Probe(error=f"URI for location does not pass filtering: {httpstore.shown(url)}")
    try:
        size = httpstore.size(url)
    except httpstore.FetchFailed as exc:
        LOG.info("location %s refused: %s", httpstore.shown(url), exc)
        return Probe(error=INVALID)
    return Probe(size=size) if size > 0 else Probe(error=INVALID)


# --- PATCH operations on /locations (inside the PATCH's transaction) ---


def patch(
    session: Session,
    request: rest.ApiRequest,
    image: models.Image,
    operation: Mapping[str, Any],
    probes: Mapping[str, Probe],
) -> None:
    op, path = operation["op"], operation["path"]
    parts = path[1:].split("/")
    if len(parts) != _DEPTH[op]:
        raise rest.BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    if op == "remove":
        _remove(session, request, image, parts[1])
        return
    if "value" not in operation:
        raise rest.BadRequest(f'Operation "{op}" requires a member named "value".')
    value = operation["value"]
    validation.check(_PATCH_SCHEMA, {"locations": [value] if op == "add" else value})
    if op == "add":
        _add(session, request, image, parts[1], value, probes)
    else:
        _replace(session, request, image, value, probes)


def _require_shown(verb: str) -> None:
    if not runtime.get().settings.show_multiple_locations:
        raise rest.Forbidden(f"It's not allowed to {verb} locations if locations are invisible.")


def _position(text: str, count: int, allow_end: bool) -> int:
    """Glance's reading of a location index: a number, or ``-`` for the end."""
    if text == "-":
        return count if allow_end else count - 1
    if not text.isdigit():
        raise ValueError(text)
    pos = int(text)
    if not allow_end and not 0 <= pos < count:
        raise ValueError(text)
    return min(pos, count)


def hex_size(value: str) -> int | None:
    try:
        return len(bytes.fromhex(value))
    except ValueError:
        return None


def _validation_data(image: models.Image, values: list[dict[str, Any]]) -> dict[str, str]:
    """Glance's checks of the hashes locations bring; returns those the image lacks."""
    given: dict[str, str] = {}
    for value in values:
        for key, item in (value.get("validation_data") or {}).items():
            if given.get(key, item) != item:
                raise rest.Conflict(f"Conflicting values for {key}")
            given[key] = item
    new: dict[str, str] = {}
    for key, item in given.items():
        current = getattr(image, key)
        if item == current:
            continue
        if current:
            raise rest.Conflict(f"{key} is already set with a different value")
        new[key] = item
    if not new:
        return {}
    if image.status != "queued":
        raise rest.Conflict(
            f"New value(s) for {', '.join(new)} may only be provided when image status is 'queued'"
        )
    if "checksum" in new:
        if hex_size(new["checksum"]) is None:
            raise rest.Conflict(f"checksum ({new['checksum']}) is not a valid hexadecimal value")
        if hex_size(new["checksum"]) != 16:
            raise rest.Conflict(
                f"checksum ({new['checksum']}) is not the correct size for md5 (should be 16 bytes)"
            )
    algo = new.get("os_hash_algo")
    if algo != ingest.HASH_ALGO:
        raise rest.Conflict(f"os_hash_algo must be {ingest.HASH_ALGO}, not {algo}")
    hash_value = new.get("os_hash_value", "")
    want = hashlib.new(algo).digest_size
    if hex_size(hash_value) is None:
        raise rest.Conflict(f"os_hash_value ({hash_value}) is not a valid hexadecimal value")
    if hex_size(hash_value) != want:
        raise rest.Conflict(
            f"os_hash_value ({hash_value}) is not the correct size for {algo} "
            f"(should be {want} bytes)"
        )
    return new


def _checked(url: str, probes: Mapping[str, Probe]) -> int:
    # A URL the probe did not see (the image changed meanwhile) is refused, never fetched here.
    found = probes.get(url, Probe(error=INVALID))
    if found.error is not None or found.size is None:
        raise rest.BadRequest(found.error or INVALID)
    return found.size


def _clean(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata as stored: the store is ours to say, whatever the client sent."""
    return {k: v for k, v in (metadata or {}).items() if k != "store"}


def _duplicate(url: str) -> rest.BadRequest:
    return rest.BadRequest(f"The location {httpstore.shown(url)} already exists")


@dataclasses.dataclass
class _Wanted:
    row: models.ImageLocation | None
    url: str | None
    meta: dict[str, Any]


def _rewrite(
    session: Session,
    image: models.Image,
    current: list[models.ImageLocation],
    wanted: list[_Wanted],
) -> None:
    """Make the image's locations ``wanted``, in that order (rows order by id, so the
    rows from the first change on are recreated)."""
    keep = 0
    while keep < min(len(current), len(wanted)) and wanted[keep].row is current[keep]:
        current[keep].meta = wanted[keep].meta or None
        keep += 1
    for row in current[keep:]:
        session.delete(row)
    session.flush()
    for want in wanted[keep:]:
        old = want.row
        session.add(
            models.ImageLocation(
                image_id=image.id,
                store=old.store if old else httpstore.store_id(),
                path=old.path if old else "",
                url=old.url if old else want.url,
                meta=want.meta or None,
                status="active",
                created_at=old.created_at if old else db_base.utcnow(),
            )
        )


def _settle(image: models.Image, size: int | None, hashes: dict[str, str]) -> None:
    """A location on a queued image makes it active, with the hashes it brought."""
    if size and not image.size:
        image.size = size
    if image.status == "queued":
        for key, value in hashes.items():
            setattr(image, key, value)
        image.status = "active"


def _add(
    session: Session,
    request: rest.ApiRequest,
    image: models.Image,
    where: str,
    value: dict[str, Any],
    probes: Mapping[str, Probe],
) -> None:
    access.enforce(session, request, "set_image_location", image)
    _require_shown("add")
    if image.status not in ("active", "queued"):
        raise rest.Conflict(f"It's not allowed to add locations if image status is {image.status}.")
    hashes = _validation_data(image, [value])
    current = rows(session, image.id)
    try:
        pos = _position(where, len(current), allow_end=True)
    except ValueError:
        raise rest.BadRequest("Invalid position for adding a location.") from None
    meta = _clean(value["metadata"])
    same_url = [row for row in current if (entry(row) or {}).get("url") == value["url"]]
    # A URL the image already has is known good (it may come again with other metadata).
    size = None if same_url else _checked(value["url"], probes)
    if any(_clean(row.meta) == meta for row in same_url):
        raise _duplicate(value["url"])
    wanted = [_Wanted(row, None, _clean(row.meta)) for row in current]
    wanted.insert(pos, _Wanted(None, value["url"], meta))
    _rewrite(session, image, current, wanted)
    _settle(image, size, hashes)


def _replace(
    session: Session,
    request: rest.ApiRequest,
    image: models.Image,
    value: list[dict[str, Any]],
    probes: Mapping[str, Probe],
) -> None:
    if not value:
        raise rest.Forbidden("Cannot set locations to empty list.")
    access.enforce(session, request, "set_image_location", image)
    _require_shown("update")
    if image.status not in ("active", "queued"):
        raise rest.Conflict(
            f"It's not allowed to replace locations if image status is {image.status}."
        )
    hashes = _validation_data(image, value)
    current = rows(session, image.id)
    shown_now = [(row, entry(row)) for row in current]
    old_urls = sorted(e["url"] if e else "" for _, e in shown_now)
    new_urls = sorted(v["url"] for v in value)
    size = None
    if old_urls != new_urls:
        # Only an image without locations may get new URLs this way (Glance's rule).
        if current:
            raise rest.BadRequest(f"Original locations is not empty: {', '.join(old_urls)}")
        sizes = [_checked(v["url"], probes) for v in value]
        pairs = [(v["url"], _clean(v["metadata"])) for v in value]
        for pair in pairs:
            if pairs.count(pair) > 1:
                raise _duplicate(pair[0])
        size = sizes[0]
    unused = list(shown_now)
    wanted: list[_Wanted] = []
    for item in value:
        match = next((pair for pair in unused if pair[1] and pair[1]["url"] == item["url"]), None)
        if match is not None:
            unused.remove(match)
        row = match[0] if match else None
        wanted.append(_Wanted(row, None if row else item["url"], _clean(item["metadata"])))
    _rewrite(session, image, current, wanted)
    _settle(image, size, hashes)


def _remove(session: Session, request: rest.ApiRequest, image: models.Image, where: str) -> None:
    access.enforce(session, request, "delete_image_location", image)
    _require_shown("remove")
    if image.status != "active":
        raise rest.Conflict(
            f"It's not allowed to remove locations if image status is {image.status}."
        )
    current = rows(session, image.id)
    if len(current) == 1:
        raise rest.Forbidden("Cannot remove last location in the image.")
    try:
        pos = _position(where, len(current), allow_end=False)
    except ValueError:
        raise rest.BadRequest("Invalid position for removing a location.") from None
    row = current[pos]
    session.delete(row)
    if row.url is None:
        # Removing a location removes its data from the store, as in Glance.
        files = [(row.store, row.path)]
        db_session.after_commit(session, lambda: _delete_files(files))


def _delete_files(files: list[tuple[str, str]]) -> None:
    for store_name, path in files:
        try:
            runtime.get().store(store_name).delete(path)
        except (KeyError, ValueError, OSError) as exc:
            LOG.warning("could not remove %s from store %s: %s", path, store_name, exc)


# --- Image API 2.17: GET /v2/images/{image_id}/locations ---


def list_locations(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, "fetch_image_location", image)
    return rest.ApiResponse(200, entries(rows(session, image.id)))


ROUTES = [rest.Route("GET", "/v2/images/{image_id}/locations", list_locations)]
