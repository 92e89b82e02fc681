"""The deprecated image proxy (``/images``, up to 2.35; ``/images/{id}/metadata`` up to
2.38): the Image service's images as Nova shows them.

Every call goes to the Image service's own handlers in-process with the caller's
context, as Nova calls Glance with the user's token: the same visibility (own,
public, community, shared and accepted), the same policy, the same filters. Nova's
filters become Glance's (``server`` is the ``instance_uuid`` property, ``type`` the
``image_type`` one, ``changes-since`` ``updated_at=gte:``); Glance's bodies become
Nova's (upper-case statuses with a progress, ``metadata`` for the custom properties,
``server`` for snapshots, an ``alternate`` link to the Image service).

The metadata calls change the image's custom properties as Glance's PATCH does
(``modify_image`` policy, reserved and core names refused), after Nova's own check
of the ``metadata_items`` quota (403 "Image metadata limit exceeded").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox import policy, rest
from stackbox.compute import (
    common,
    errors,
    proxy_calls,
    quotas,
    runtime,
    server_schema,
    server_validation,
)
from stackbox.image import access, listing, models, schemas
from stackbox.image import images as glance

# Glance's base image properties: everything else in its body is a custom property.
BASE = frozenset(schemas.ORDER)
STATUS = {
    "active": "ACTIVE",
    "queued": "SAVING",
    "saving": "SAVING",
    "deleted": "DELETED",
    "pending_delete": "DELETED",
    "killed": "ERROR",
}
PROGRESS = {"queued": 25, "saving": 50, "active": 100}
# Nova's filters and the Glance filters they become (property-* pass through).
FILTERS = {
    "name": "name",
    "status": "status",
    "changes-since": "updated_at",
    "server": "instance_uuid",
    "type": "image_type",
    "minRam": "min_ram",
    "minDisk": "min_disk",
}
MAX_LIMIT = 1000
METADATA_GATE = "image_metadata_limits_removed"
NOT_FOUND = "Image not found."


# --- Glance's bodies as Nova's ----------------------------------------------------------------


def _links(request: rest.ApiRequest, image_id: str) -> list[dict[str, str]]:
    links: list[dict[str, str]] = list(common.link(request, f"images/{image_id}"))
    links.append(
        {
            "rel": "alternate",
            "type": "application/vnd.openstack.image",
            "href": f"{runtime.get().base_url}/image/images/{image_id}",
        }
    )
    return links


def metadata_of(body: dict[str, Any]) -> dict[str, Any]:
    """An image body's custom properties (Nova's ``metadata``)."""
    return {k: v for k, v in body.items() if k not in BASE}


def basic(request: rest.ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": body["id"], "name": body.get("name"), "links": _links(request, body["id"])}


def detailed(request: rest.ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    metadata = metadata_of(body)
    status = body.get("status") or ""
    view: dict[str, Any] = {
        "id": body["id"],
        "name": body.get("name"),
        "minRam": int(body.get("min_ram") or 0),
        "minDisk": int(body.get("min_disk") or 0),
        "metadata": metadata,
        "created": body.get("created_at"),
        "updated": body.get("updated_at"),
        "status": STATUS.get(status, "UNKNOWN"),
        "progress": PROGRESS.get(status, 0),
        # Nova reads a missing size as 0.
        "OS-EXT-IMG-SIZE:size": body.get("size") or 0,
        "links": _links(request, body["id"]),
    }
    server_id = metadata.get("instance_uuid")
    if server_id is not None:
        view["server"] = {"id": server_id, "links": common.link(request, f"servers/{server_id}")}
    auto_disk = metadata.get("auto_disk_config")
    if auto_disk is not None:
        truthy = str(auto_disk).strip().lower() in ("1", "t", "true", "on", "y", "yes")
        view["OS-DCF:diskConfig"] = "AUTO" if truthy else "MANUAL"
    return view


# --- listing ----------------------------------------------------------------------------------


def _glance_filters(request: rest.ApiRequest) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for name in request.query:
        value = request.arg(name) or ""
        if name in FILTERS:
            target = FILTERS[name]
        elif name.startswith("property-"):
            target = name.removeprefix("property-")
        else:
            continue
        if name == "server":
            value = value.rsplit("/", 1)[-1]
        elif name == "status":
            value = value.lower()
        elif name == "changes-since":
            value = f"gte:{value}"
        query[target] = [value]
    return query


def _glance_list(request: rest.ApiRequest, session: Session, limit: int | None) -> list[Any]:
    """Every image Glance lists for the caller with these filters (up to ``limit``),
    page after page as glanceclient walks them for Nova."""
    filters = _glance_filters(request)
    marker = request.arg("marker")
    found: list[Any] = []
    while limit is None or len(found) < limit:
        want = listing.MAX_LIMIT if limit is None else min(listing.MAX_LIMIT, limit - len(found))
        query = {**filters, "limit": [str(want)]}
        if marker:
            query["marker"] = [marker]
        sub = proxy_calls.sub_request(request, query=query, path="/v2/images", method="GET")
        try:
            page = listing.index(sub, session)
        except rest.ApiError as exc:
            raise proxy_calls.nova_error(exc) from None
        found.extend(page["images"])
        if "next" not in page or not page["images"]:
            break
        marker = page["images"][-1]["id"]
    return found


def _list(request: rest.ApiRequest, session: Session, detail: bool) -> dict[str, Any]:
    proxy_calls.require_proxy(request)
    for name in ("page_size", "offset"):
        common.query_int(request, name, minimum=1)
    limit = common.query_int(request, "limit", minimum=1)
    bodies = _glance_list(request, session, limit)
    render = detailed if detail else basic
    result: dict[str, Any] = {"images": [render(request, body) for body in bodies]}
    page_size = min(limit or MAX_LIMIT, MAX_LIMIT)
    if bodies and len(bodies) == page_size:
        result["images_links"] = [common.next_link(request, str(bodies[-1]["id"]))]
    return result


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _list(request, session, detail=False)


def detail(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _list(request, session, detail=True)


# --- one image --------------------------------------------------------------------------------


def _image_id(request: rest.ApiRequest) -> str:
    return request.path_params["image_id"]


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    proxy_calls.require_proxy(request)
    sub = proxy_calls.sub_request(request, path_params={"image_id": _image_id(request)})
    try:
        body = glance.show(sub, session)
    except rest.NotFound:
        raise errors.not_found(NOT_FOUND) from None
    return {"image": detailed(request, body)}


def delete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    proxy_calls.require_proxy(request)
    sub = proxy_calls.sub_request(request, path_params={"image_id": _image_id(request)})
    try:
        glance.delete(sub, session)
    except rest.NotFound:
        raise errors.not_found(NOT_FOUND) from None
    except (rest.Forbidden, policy.PolicyNotAuthorized):
        raise errors.forbidden("You are not allowed to delete the image.") from None
    return rest.ApiResponse(204)


def no_id(request: rest.ApiRequest, session: Session) -> None:
    """``DELETE /images/`` names no image: Nova has no such route (404)."""
    raise errors.not_found("The resource could not be found.")


# --- metadata ---------------------------------------------------------------------------------


def _image(request: rest.ApiRequest, session: Session) -> models.Image:
    proxy_calls.require_proxy(request, METADATA_GATE)
    try:
        image = access.get_visible(session, request.context, _image_id(request))
        access.enforce(session, request, "get_image", image)
    except rest.NotFound:
        raise errors.not_found(NOT_FOUND) from None
    except policy.PolicyNotAuthorized as exc:
        raise errors.forbidden(str(exc)) from None
    return image


def _metadata(session: Session, request: rest.ApiRequest, image: models.Image) -> dict[str, Any]:
    return metadata_of(glance.render(session, image, request.context))


def _check_quota(session: Session, request: rest.ApiRequest, metadata: dict[str, Any]) -> None:
    allowed = quotas.limits(session, request.context.project_id or "")["metadata_items"]
    if metadata and 0 <= allowed < len(metadata):
        raise errors.forbidden("Image metadata limit exceeded")


def _save(
    session: Session, request: rest.ApiRequest, image: models.Image, metadata: dict[str, Any]
) -> None:
    """Make ``metadata`` the image's custom properties, as Glance's PATCH would."""
    try:
        access.enforce(session, request, "modify_image", image)
    except policy.PolicyNotAuthorized as exc:
        raise errors.forbidden(str(exc)) from None
    for key in metadata:
        if key.startswith("os_glance"):
            raise errors.forbidden(f"Attribute '{key}' is reserved.")
        if key in BASE:
            raise errors.forbidden(f"Attribute '{key}' is read-only.")
    if len(metadata) > glance.PROPERTY_QUOTA:
        raise rest.PayloadTooLarge(f"Attempted: {len(metadata)}, Maximum: {glance.PROPERTY_QUOTA}")
    P = models.ImageProperty
    rows = {row.name: row for row in session.query(P).filter(P.image_id == image.id)}
    for name, row in rows.items():
        if name == "os_glance_stage_host":
            continue
        if name not in metadata:
            session.delete(row)
        elif row.value != metadata[name]:
            row.value = metadata[name]
    for name, value in metadata.items():
        if name not in rows:
            session.add(P(image_id=image.id, name=name, value=value))
    glance.touch(image)
    session.flush()


def list_metadata(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    image = _image(request, session)
    return {"metadata": _metadata(session, request, image)}


def show_metadata(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    image = _image(request, session)
    key = request.path_params["key"]
    metadata = _metadata(session, request, image)
    if key not in metadata:
        raise errors.not_found("The resource could not be found.")
    return {"meta": {key: metadata[key]}}


def merge_metadata(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    image = _image(request, session)
    given = server_validation.body(request, server_schema.METADATA_SET)["metadata"]
    metadata = {**_metadata(session, request, image), **given}
    _check_quota(session, request, metadata)
    _save(session, request, image, metadata)
    return {"metadata": _metadata(session, request, image)}


def replace_metadata(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    image = _image(request, session)
    metadata = dict(server_validation.body(request, server_schema.METADATA_SET)["metadata"])
    _check_quota(session, request, metadata)
    _save(session, request, image, metadata)
    return {"metadata": metadata}


def set_metadata_item(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    image = _image(request, session)
    meta = server_validation.body(request, server_schema.METADATA_ITEM)["meta"]
    key = request.path_params["key"]
    if key not in meta:
        raise errors.bad_request("Request body and URI mismatch")
    metadata = {**_metadata(session, request, image), key: meta[key]}
    _check_quota(session, request, metadata)
    _save(session, request, image, metadata)
    return {"meta": meta}


def delete_metadata_item(request: rest.ApiRequest, session: Session) -> None:
    image = _image(request, session)
    key = request.path_params["key"]
    metadata = _metadata(session, request, image)
    if key not in metadata:
        raise errors.not_found("Invalid metadata key")
    del metadata[key]
    _save(session, request, image, metadata)


_ONE = "/v2.1/images/{image_id}"
_META = _ONE + "/metadata"
ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/images", index),
    rest.Route("GET", "/v2.1/images/detail", detail),
    rest.Route("DELETE", "/v2.1/images", no_id),
    rest.Route("GET", _ONE, show),
    rest.Route("DELETE", _ONE, delete),
    rest.Route("GET", _META, list_metadata),
    rest.Route("POST", _META, merge_metadata),
    rest.Route("PUT", _META, replace_metadata),
    rest.Route("GET", _META + "/{key}", show_metadata),
    rest.Route("PUT", _META + "/{key}", set_metadata_item),
    rest.Route("DELETE", _META + "/{key}", delete_metadata_item),
]
