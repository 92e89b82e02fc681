"""Where a compute agent downloads an image's data (the ``GetImageSource`` answer).

Like Nova's compute, the agent reads images through the Image API with a token of
the server's user (minted here, as for snapshot uploads: nudges carry no tokens),
so Glance's own rules decide whether that user may read the image.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from stackbox.bus import compute_messages
from stackbox.compute import models, runtime, snapshot_targets
from stackbox.image import models as image_models


def source(
    session: Session, request: compute_messages.GetImageSource
) -> compute_messages.ImageSource:
    image_id = request.image_id
    server = session.get(models.Server, request.server_id)
    if server is None or server.deleted:
        return compute_messages.ImageSource(
            image_id, error=f"Instance {request.server_id} could not be found."
        )
    image = session.get(image_models.Image, image_id)
    if image is None or image.status != "active":
        return compute_messages.ImageSource(
            image_id, error=f"Image {image_id} is not active and cannot be read."
        )
    token = snapshot_targets.mint_token(session, [(server.user_id, server.project_id)])
    if token is None:
        return compute_messages.ImageSource(
            image_id, error=f"The owner of instance {server.id} may not read image {image_id}."
        )
    return compute_messages.ImageSource(
        image_id,
        url=f"{runtime.get().base_url}/image/v2/images/{image_id}/file",
        token=token,
        checksum=image.checksum or "",
        size=image.size,
    )
