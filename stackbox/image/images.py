"""Images: create, show, update (JSON patch), delete, deactivate/reactivate, tags."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox import context, rest, validation
from stackbox.db import session as db_session
from stackbox.image import access, locations, models, quotas, runtime, stores

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
)
READ_ONLY = (
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "file",
    "self",
    "schema",
    "direct_url",
    "locations",
    "stores",
)
# Columns of the image row a client may set.
WRITABLE = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "min_ram",
    "min_disk",
    "disk_format",
    "container_format",
    "owner",
)
MAX_TAG_LENGTH = 255
PROPERTY_QUOTA = 128
TAG_QUOTA = 128

CORE_SCHEMA: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "pattern": access.UUID_RE.pattern},
    "name": {"type": ["null", "string"], "maxLength": 255},
    "visibility": {"type": "string", "enum": list(VISIBILITIES)},
    "protected": {"type": "boolean"},
    "os_hidden": {"type": "boolean"},
    "owner": {"type": ["null", "string"], "maxLength": 255},
    "min_ram": {"type": "integer", "minimum": 0},
    "min_disk": {"type": "integer", "minimum": 0},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS]},
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": MAX_TAG_LENGTH}},
}
CREATE_SCHEMA = {
    "type": "object",
    "properties": CORE_SCHEMA,
    # Custom properties are strings (Glance's additionalProperties).
    "additionalProperties": {"type": "string"},
}


def isotime(moment: datetime.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def properties(session: Session, image_id: str) -> dict[str, str]:
    rows = session.scalars(
        select(models.ImageProperty).where(models.ImageProperty.image_id == image_id)
    )
    return {p.name: p.value for p in rows}


def tags(session: Session, image_id: str) -> list[str]:
    return sorted(
        session.scalars(select(models.ImageTag.value).where(models.ImageTag.image_id == image_id))
    )


def store_names(session: Session, image_id: str) -> list[str]:
    return list(
        session.scalars(
            select(models.ImageLocation.store)
            .where(
                models.ImageLocation.image_id == image_id,
                models.ImageLocation.status == "active",
                models.ImageLocation.store != stores.STAGING,
            )
            .order_by(models.ImageLocation.id)
        )
    )


def render(
    session: Session, image: models.Image, ctx: context.RequestContext | None = None
) -> dict[str, Any]:
    """The image's body; with the caller's ``ctx``, its locations when they are shown."""
    return view(
        image,
        properties(session, image.id),
        tags(session, image.id),
        store_names(session, image.id),
        locations.shown(session, image, ctx),
    )


def view(
    image: models.Image,
    custom: dict[str, str],
    tag_list: list[str],
    names: list[str],
    location_fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The API body of an image from its row and its already-loaded children (lists batch them).

    ``location_fields`` are ``locations`` / ``direct_url`` as ``locations.shown`` gives them
    for the caller (absent when the operator hides locations).
    """
    # os_glance_stage_host says which API node holds staged data: internal, as in Glance.
    body: dict[str, Any] = {k: v for k, v in custom.items() if k != "os_glance_stage_host"}
    body.update(
        {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "visibility": image.visibility,
            "protected": image.protected,
            "os_hidden": image.os_hidden,
            "checksum": image.checksum,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "owner": image.owner,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "min_ram": image.min_ram,
            "min_disk": image.min_disk,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "created_at": isotime(image.created_at),
            "updated_at": isotime(image.updated_at),
            "tags": tag_list,
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    if names:
        body["stores"] = ",".join(sorted(names))
    body.update(location_fields or {})
    return body


def touch(image: models.Image) -> None:
    image.updated_at = now()
    image.generation += 1


def _check_attributes(ref: dict[str, Any]) -> None:
    for key in ref:
        if key in READ_ONLY:
            raise rest.Forbidden(f"Attribute '{key}' is read-only.")
        if key.startswith("os_glance"):
            raise rest.Forbidden(f"Attribute '{key}' is reserved.")


def _check_visibility(
    session: Session, request: rest.ApiRequest, image: models.Image | None, visibility: str | None
) -> None:
    if visibility == "public":
        access.enforce(session, request, "publicize_image", image)
    elif visibility == "community":
        access.enforce(session, request, "communitize_image", image)


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = request.body
    if not isinstance(ref, dict):
        raise rest.BadRequest("Request body must be a JSON object.")
    _check_attributes(ref)
    validation.check(CREATE_SCHEMA, ref)
    ctx = request.context
    owner = ref.get("owner", ctx.project_id)
    access.enforce(session, request, "add_image", None, owner=owner)
    _check_visibility(session, request, None, ref.get("visibility"))
    image_id = ref.get("id") or str(uuid.uuid4())
    image_id = str(uuid.UUID(image_id))
    if session.get(models.Image, image_id) is not None:
        raise rest.Conflict(f"Image with identifier {image_id} already exists!")
    custom = {k: v for k, v in ref.items() if k not in CORE_SCHEMA}
    if len(custom) > PROPERTY_QUOTA:
        raise rest.PayloadTooLarge(f"Attempted: {len(custom)}, Maximum: {PROPERTY_QUOTA}")
    tag_list = list(dict.fromkeys(ref.get("tags") or []))
    if len(tag_list) > TAG_QUOTA:
        raise rest.PayloadTooLarge(f"Attempted: {len(tag_list)}, Maximum: {TAG_QUOTA}")
    quotas.check_image_count(session, owner)
    moment = now()
    image = models.Image(
        id=image_id,
        status="queued",
        visibility=ref.get("visibility", "shared"),
        protected=ref.get("protected", False),
        os_hidden=ref.get("os_hidden", False),
        owner=owner,
        min_ram=ref.get("min_ram", 0),
        min_disk=ref.get("min_disk", 0),
        name=ref.get("name"),
        disk_format=ref.get("disk_format"),
        container_format=ref.get("container_format"),
        created_at=moment,
        updated_at=moment,
        generation=1,
    )
    session.add(image)
    for key, value in custom.items():
        session.add(models.ImageProperty(image_id=image_id, name=key, value=value))
    for tag in tag_list:
        session.add(models.ImageTag(image_id=image_id, value=tag))
    session.flush()
    return rest.ApiResponse(
        201,
        render(session, image, ctx),
        headers={
            "Location": f"{_root()}/v2/images/{image_id}",
            # Clients learn from these which imports and stores they may use (as Glance).
            "OpenStack-image-import-methods": ",".join(runtime.get().import_methods()),
            "OpenStack-image-store-ids": ",".join(runtime.get().stores),
        },
    )


def _root() -> str:
    return f"{runtime.get().base_url}/image"


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, "get_image", image)
    return render(session, image, request.context)


def delete(request: rest.ApiRequest, session: Session) -> None:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, "delete_image", image)
    if image.protected:
        raise rest.Forbidden(f"Image {image.id} is protected and cannot be deleted.")
    delete_row(session, image)


def delete_row(session: Session, image: models.Image) -> None:
    """Remove an image and its data (files go only after the rows are gone)."""
    rt = runtime.get()
    # Data at a URL (http store) is not ours to delete: only our files go.
    files = [
        (loc.store, loc.path)
        for loc in session.scalars(
            select(models.ImageLocation).where(
                models.ImageLocation.image_id == image.id, models.ImageLocation.url.is_(None)
            )
        )
    ]
    session.delete(image)
    session.flush()

    def remove_files() -> None:
        for store_name, path in files:
            try:
                rt.store(store_name).delete(path)
            except (KeyError, ValueError):
                pass

    db_session.after_commit(session, remove_files)


def _action(request: rest.ApiRequest, session: Session, action: str) -> None:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, action, image)
    if action == "deactivate":
        if image.status == "deactivated":
            return
        if image.status != "active":
            raise rest.BadRequest(f"Not allowed to deactivate image in status '{image.status}'")
        image.status = "deactivated"
    else:
        if image.status == "active":
            return
        if image.status != "deactivated":
            raise rest.BadRequest(f"Not allowed to reactivate image in status '{image.status}'")
        image.status = "active"
    touch(image)


def deactivate(request: rest.ApiRequest, session: Session) -> None:
    _action(request, session, "deactivate")


def reactivate(request: rest.ApiRequest, session: Session) -> None:
    _action(request, session, "reactivate")


def add_tag(request: rest.ApiRequest, session: Session) -> None:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, "modify_image", image)
    tag = request.path_params["tag"]
    if len(tag) > MAX_TAG_LENGTH:
        raise rest.BadRequest(f"Tag is longer than {MAX_TAG_LENGTH} characters.")
    if session.get(models.ImageTag, (image.id, tag)) is None:
        count = (
            session.scalar(select(func.count()).where(models.ImageTag.image_id == image.id)) or 0
        )
        if count >= TAG_QUOTA:
            raise rest.PayloadTooLarge(f"Attempted: {count + 1}, Maximum: {TAG_QUOTA}")
        session.add(models.ImageTag(image_id=image.id, value=tag))
        touch(image)


def delete_tag(request: rest.ApiRequest, session: Session) -> None:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, "modify_image", image)
    row = session.get(models.ImageTag, (image.id, request.path_params["tag"]))
    if row is None:
        raise rest.NotFound(f"Tag {request.path_params['tag']} not found")
    session.delete(row)
    touch(image)


ROUTES = [
    rest.Route("POST", "/v2/images", create),
    rest.Route("GET", "/v2/images/{image_id}", show),
    rest.Route("DELETE", "/v2/images/{image_id}", delete),
    rest.Route("POST", "/v2/images/{image_id}/actions/deactivate", deactivate),
    rest.Route("POST", "/v2/images/{image_id}/actions/reactivate", reactivate),
    rest.Route("PUT", "/v2/images/{image_id}/tags/{tag}", add_tag),
    rest.Route("DELETE", "/v2/images/{image_id}/tags/{tag}", delete_tag),
]
