"""createImage and createBackup: a queued image in the Image service (made in-process,
in the action's transaction) that the agent's driver fills with the server's disk.

The image is what Nova's compute_utils.create_image makes: the base image's
inheritable properties, ``image_type`` (snapshot or backup), ``instance_uuid``,
``user_id`` and ``base_image_ref``, no disk/container format (the driver says what it
wrote), private to the caller's project or shared with the server's project when
someone else (an admin) takes it. The agent finds the server's queued images
(``compute_specs.ServerSpec.snapshots``), uploads, and the image goes active.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, models, quotas, runtime, states
from stackbox.compute import server_action_base as base
from stackbox.compute import server_action_schemas as schemas
from stackbox.db import session as db_session
from stackbox.image import access as image_access
from stackbox.image import images as image_images
from stackbox.image import models as image_models
from stackbox.image import quotas as image_quotas

# Properties a snapshot never inherits from its base image (Nova's
# NON_INHERITABLE_IMAGE_PROPERTIES and namespaces).
NOT_INHERITED = frozenset(
    {
        "cache_in_nova",
        "bittorrent",
        "img_signature_hash_method",
        "img_signature",
        "img_signature_key_type",
        "img_signature_certificate_uuid",
        "image_type",
        "instance_uuid",
        "user_id",
        "base_image_ref",
        "backup_type",
        "instance_owner",
    }
)
NOT_INHERITED_PREFIXES = ("os_glance", "img_signature")


def _inherited(session: Session, base_image_id: str) -> tuple[dict[str, str], int, int]:
    """The base image's inheritable properties and its min_ram / min_disk."""
    image = session.get(image_models.Image, base_image_id) if base_image_id else None
    if image is None:
        return {}, 0, 0
    props = {
        k: v
        for k, v in image_images.properties(session, image.id).items()
        if k not in NOT_INHERITED and not k.startswith(NOT_INHERITED_PREFIXES)
    }
    return props, image.min_ram or 0, image.min_disk or 0


def create_image(
    session: Session,
    request: rest.ApiRequest,
    server: models.Server,
    name: str,
    image_type: str,
    extra: dict[str, str] | None = None,
) -> image_models.Image:
    """A queued image for the server's data, as the caller creates it in Glance."""
    ctx = request.context
    owner = ctx.project_id
    image_access.enforce(session, request, "add_image", None, owner=owner)
    image_quotas.check_image_count(session, owner)
    props, min_ram, min_disk = _inherited(session, server.image_ref)
    props.update(
        {
            "instance_uuid": server.id,
            "user_id": str(ctx.user_id),
            "image_type": image_type,
            "base_image_ref": server.image_ref or "",
            "owner_project_name": ctx.project_name or "",
            "owner_user_name": ctx.user_name or "",
        }
    )
    shared = owner != server.project_id
    if shared:
        props["instance_owner"] = server.project_id
    props.update(extra or {})
    moment = image_images.now()
    image = image_models.Image(
        id=common.new_id(),
        name=name,
        status="queued",
        visibility="shared" if shared else "private",
        protected=False,
        os_hidden=False,
        owner=owner,
        min_ram=min_ram,
        min_disk=max(min_disk, int((server.flavor or {}).get("root_gb", 0) or 0)),
        created_at=moment,
        updated_at=moment,
        generation=1,
    )
    session.add(image)
    session.flush()
    for key, value in props.items():
        session.add(image_models.ImageProperty(image_id=image.id, name=key, value=str(value)))
    if shared:
        # The server's project must see what was made of its server.
        session.add(
            image_models.ImageMember(
                image_id=image.id,
                member=server.project_id,
                status="accepted",
                created_at=moment,
                updated_at=moment,
            )
        )
    session.flush()
    return image


def _check_metadata_quota(
    session: Session, request: rest.ApiRequest, server: models.Server, metadata: dict[str, str]
) -> None:
    """Before 2.39 the image's metadata counts against metadata_items (403)."""
    if microversions.at_least(request, "image_metadata_limits_removed"):
        return
    allowed = quotas.limits(session, server.project_id)["metadata_items"]
    if 0 <= allowed < len(metadata):
        raise errors.forbidden("Image metadata limit exceeded")


def _answer(request: rest.ApiRequest, image: image_models.Image, location: str | None) -> Any:
    if microversions.at_least(request, "create_image_no_location"):
        return rest.ApiResponse(202, {"image_id": image.id})
    headers = {"Location": location} if location else {}
    return rest.ApiResponse(202, headers=headers)


def _image_url(image_id: str) -> str:
    return f"{runtime.get().base_url}/image/v2/images/{image_id}"


def create_snapshot(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    body = base.whole(request, "createImage", schemas.CREATE_IMAGE)
    metadata = dict(body.get("metadata") or {})

    def apply(session: Session) -> base.Result:
        server = base.load(
            session, request, server_id, "os_compute_api:servers:create_image", with_user=False
        )
        _check_metadata_quota(session, request, server, metadata)
        # Nova does not check the lock: a lock guards against change, a snapshot is none.
        base.check_action(server, "createImage", "createImage")
        image = create_image(session, request, server, body["name"], "snapshot", metadata)
        base.start_task(session, request, server, states.IMAGE_SNAPSHOT, "createImage")
        return _answer(request, image, _image_url(image.id))

    return db.run(apply, write=True)


def _rotate(
    session: Session, server: models.Server, backup_type: str, rotation: int, newest: str
) -> None:
    """Keep the ``rotation`` newest backups of this type of the server (the new one
    counted), deleting older ones, as Nova's compute does after a backup."""
    P = image_models.ImageProperty

    def has(name: str, value: str) -> Any:
        return select(P.image_id).where(P.name == name, P.value == value).scalar_subquery()

    backups = list(
        session.scalars(
            select(image_models.Image)
            .where(
                image_models.Image.id.in_(has("instance_uuid", server.id)),
                image_models.Image.id.in_(has("image_type", "backup")),
                image_models.Image.id.in_(has("backup_type", backup_type)),
                image_models.Image.id != newest,
            )
            .order_by(image_models.Image.created_at.desc(), image_models.Image.id.desc())
        )
    )
    keep = max(rotation - 1, 0)
    for image in backups[keep:]:
        image_images.delete_row(session, image)


def create_backup(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = base.whole(request, "createBackup", schemas.CREATE_BACKUP)
    metadata = dict(body.get("metadata") or {})
    rotation = int(body["rotation"])
    backup_type = body["backup_type"]

    def apply(session: Session) -> base.Result:
        server = base.load(
            session, request, server_id, "os_compute_api:os-create-backup", with_user=False
        )
        _check_metadata_quota(session, request, server, metadata)
        # A backup is a snapshot the rotation prunes (Nova's task image_backup; the agent
        # carries it out as image_snapshot).
        base.check_action(server, "createImage", "createBackup")
        if not server.image_ref:
            raise errors.bad_request("Backup is not supported for volume-backed instances.")
        extra = {**metadata, "backup_type": backup_type}
        image = create_image(session, request, server, body["name"], "backup", extra)
        _rotate(session, server, backup_type, rotation, image.id)
        base.start_task(session, request, server, states.IMAGE_SNAPSHOT, "createBackup")
        location = f"{request.url.rsplit('/servers/', 1)[0]}/images/{image.id}"
        return _answer(request, image, location if rotation > 0 else None)

    return db.run(apply, write=True)


ACTIONS: list[base.Action] = [
    base.Action("createImage", create_snapshot),
    base.Action("createBackup", create_backup),
]
