"""Glance's cache management API (``/v2/cache``) over the API server's node cache.

Administrators list what is cached and queued, queue an active image (the
prefetcher is nudged to fetch it at once), and remove entries or clear the
cache, the queue or both. ``clean`` and ``prune`` run the upkeep on demand.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox import policy, rest
from stackbox.image import access, errors, models, prefetcher

CLEAR_TARGET = "x-image-cache-clear-target"


def _enforce(request: rest.ApiRequest, action: str) -> None:
    policy.enforce(request.context, action, {}, service="image")


def _image_or_none(session: Session, request: rest.ApiRequest) -> models.Image | None:
    try:
        return access.get_visible(session, request.context, request.path_params["image_id"])
    except rest.NotFound:
        return None


def state(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _enforce(request, "cache_list")
    node_cache = prefetcher.server_cache()
    return {
        "cached_images": [e.as_glance() for e in node_cache.cached()],
        "queued_images": node_cache.queued(),
    }


def queue(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    image_id = request.path_params["image_id"]
    image = _image_or_none(session, request)
    if image is None:
        raise errors.image_not_found(image_id)
    access.enforce(session, request, "cache_image", image)
    if image.status != "active":
        raise rest.BadRequest("Only images with status active can be targeted for queueing")
    prefetcher.server_cache().queue(image.id)
    prefetcher.nudge()
    return rest.ApiResponse(202)


def delete_entry(request: rest.ApiRequest, session: Session) -> None:
    image_id = request.path_params["image_id"]
    node_cache = prefetcher.server_cache()
    image = _image_or_none(session, request)
    # A deleted image may still have a cache entry; that entry can be removed.
    if image is None and not (node_cache.is_cached(image_id) or node_cache.is_queued(image_id)):
        raise rest.NotFound(f"Image {image_id} not found.")
    if image is None:
        _enforce(request, "cache_delete")
    else:
        access.enforce(session, request, "cache_delete", image)
    node_cache.delete(image_id)
    node_cache.unqueue(image_id)


def clear(request: rest.ApiRequest, session: Session) -> None:
    _enforce(request, "cache_delete")
    target = (request.headers.get(CLEAR_TARGET) or "").strip().lower()
    if target not in ("", "cache", "queue"):
        raise rest.BadRequest(
            f"If provided '{CLEAR_TARGET}' must be 'cache', 'queue' or empty string."
        )
    node_cache = prefetcher.server_cache()
    if target in ("", "queue"):
        node_cache.unqueue_all()
    if target in ("", "cache"):
        node_cache.delete_all()


def clean(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    _enforce(request, "cache_clean")
    prefetcher.server_cache().clean()
    # Glance answers 200 with an empty body here.
    return rest.ApiResponse(200, content=b"", content_type="text/html; charset=UTF-8")


def prune(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _enforce(request, "cache_prune")
    removed = prefetcher.server_cache().prune()
    return {
        "total_files_pruned": len(removed),
        "total_bytes_pruned": sum(e.size for e in removed),
    }


# The cache lives in files: no route writes the database.
ROUTES = [
    rest.Route("GET", "/v2/cache", state),
    rest.Route("DELETE", "/v2/cache", clear, write=False),
    rest.Route("POST", "/v2/cache/clean", clean, write=False),
    rest.Route("POST", "/v2/cache/prune", prune, write=False),
    rest.Route("PUT", "/v2/cache/{image_id}", queue, write=False),
    rest.Route("DELETE", "/v2/cache/{image_id}", delete_entry, write=False),
]
