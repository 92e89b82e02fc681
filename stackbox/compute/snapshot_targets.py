"""Where a compute agent sends a snapshot's data (the ``GetSnapshotTarget`` answer).

The agent has no database and no image store: like Nova's compute, it uploads
through the Image API (``PUT <base>/image/v2/images/<id>/file``). Nova does so
with the requester's own token, carried in its RPC; nudges carry no tokens, so
the controller mints one here, in-process: a project-scoped token, valid for
``TOKEN_LIFETIME``, for the user who asked for the snapshot (the newest
createImage / createBackup / shelve action on the server) in the image's owner
project — falling back to the server's owner. Glance's ``upload_image`` rule then
judges the upload as it would that user's own, and it works from any host that
reaches the API.

The image must be queued and name the server in its ``instance_uuid`` property
(Nova sets both when it creates a snapshot); an image deleted (or already
uploaded) meanwhile is ``gone``: not a failure, as in Nova.
"""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.bus import compute_messages
from stackbox.compute import desired, models, runtime
from stackbox.identity import resources as identity_resources
from stackbox.identity import token_facts, token_service
from stackbox.image import images
from stackbox.image import models as image_models

LOG = logging.getLogger(__name__)

TOKEN_LIFETIME = datetime.timedelta(minutes=30)
SNAPSHOT_ACTIONS = ("createImage", "createBackup", "shelve")


def _uploaders(session: Session, server: models.Server, owner: str | None) -> list[tuple[str, str]]:
    """(user, project) pairs that may upload, the most fitting first."""
    found: list[tuple[str, str]] = []
    action = session.scalars(
        select(models.InstanceAction)
        .where(
            models.InstanceAction.server_id == server.id,
            models.InstanceAction.action.in_(SNAPSHOT_ACTIONS),
        )
        .order_by(models.InstanceAction.start_time.desc(), models.InstanceAction.id.desc())
        .limit(1)
    ).first()
    if action is not None and action.user_id:
        found.append((action.user_id, owner or action.project_id or server.project_id))
    found.append((server.user_id, owner or server.project_id))
    return list(dict.fromkeys(found))


def mint_token(session: Session, candidates: list[tuple[str, str]]) -> str | None:
    expires = identity_resources.utcnow() + TOKEN_LIFETIME
    for user_id, project_id in candidates:
        try:
            token, _, _ = token_service.issue(
                session,
                user_id=user_id,
                methods=("token",),
                project_id=project_id,
                expires_at=expires,
            )
        except token_facts.TokenNotValid as exc:
            LOG.info("no snapshot token for user %s in %s: %s", user_id, project_id, exc)
            continue
        return token
    return None


def target(
    session: Session, request: compute_messages.GetSnapshotTarget
) -> compute_messages.SnapshotTarget:
    image_id = request.image_id
    server = session.get(models.Server, request.server_id)
    if server is None or server.deleted:
        return compute_messages.SnapshotTarget(
            image_id, error=f"Instance {request.server_id} could not be found."
        )
    image = session.get(image_models.Image, image_id)
    if image is None or image.status != "queued":
        return compute_messages.SnapshotTarget(image_id, gone=True)
    of = images.properties(session, image_id).get(desired.INSTANCE_PROPERTY)
    if of != server.id:
        return compute_messages.SnapshotTarget(
            image_id, error=f"Image {image_id} is not a snapshot of instance {server.id}."
        )
    if not image.disk_format or not image.container_format:
        # Nova's compute declares the formats it wrote when the image has none yet.
        image.disk_format = image.disk_format or request.disk_format or "raw"
        image.container_format = image.container_format or request.container_format or "bare"
        images.touch(image)
        session.flush()
    token = mint_token(session, _uploaders(session, server, image.owner))
    if token is None:
        return compute_messages.SnapshotTarget(
            image_id,
            error=f"No user may upload the snapshot of instance {server.id} to image {image_id}.",
        )
    return compute_messages.SnapshotTarget(
        image_id,
        url=f"{runtime.get().base_url}/image/v2/images/{image_id}/file",
        token=token,
        disk_format=image.disk_format or "",
        container_format=image.container_format or "",
    )
