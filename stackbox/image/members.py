"""Image members: an owner shares a ``shared`` image with other projects.

A new member is ``pending``; only the member (or an admin) accepts or rejects it,
and only accepted images appear in the member's default image list (a pending
one is still visible to the member by id). Only images whose visibility is
``shared`` have members (403 otherwise, 404 for a lookup). The owner sees every
member of its image; a member sees only its own membership.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.image import access, images, models

STATUSES = ("pending", "accepted", "rejected")
# Glance's image_member_quota.
MEMBER_QUOTA = 128
MAX_MEMBER_ID_LENGTH = 64
LOOKUP_REFUSAL = "You are not authorized to lookup the members of the image {image_id}."


def view(member: models.ImageMember) -> dict[str, Any]:
    return {
        "created_at": images.isotime(member.created_at),
        "image_id": member.image_id,
        "member_id": member.member,
        "schema": "/v2/schemas/member",
        "status": member.status,
        "updated_at": images.isotime(member.updated_at),
    }


def _body(request: rest.ApiRequest, key: str, example: str) -> Any:
    body = request.body
    if body is None or (isinstance(body, (str, bytes)) and not body):
        raise rest.BadRequest("Body expected in request.")
    if not isinstance(body, dict):
        raise rest.BadRequest(f'Expected a {key} in the form: {{"{key}": "{example}"}}')
    if key not in body:
        raise rest.BadRequest(f"{key.capitalize()} not specified")
    return body[key]


def _shared_image(session: Session, request: rest.ApiRequest, refusal: str) -> models.Image:
    """The image (404 unless visible); 403 with ``refusal`` unless it is shared."""
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    if image.visibility != "shared":
        raise rest.Forbidden(
            refusal.format(image_id=image.id, why="Only shared images have members.")
        )
    return image


def _may_see(ctx: context.RequestContext, image: models.Image, member_id: str) -> bool:
    """Whether a membership row is visible: owners see all, members only their own."""
    return access.is_admin(ctx) or image.owner == ctx.project_id or member_id == ctx.project_id


def _enforce(
    session: Session, request: rest.ApiRequest, image: models.Image, action: str, refusal: str
) -> None:
    """Glance checks get_image before every member rule; a refusal says ``refusal``."""
    try:
        access.enforce(session, request, "get_image", image)
        access.enforce(session, request, action, image)
    except policy.PolicyNotAuthorized as denied:
        raise rest.Forbidden(refusal.format(image_id=image.id, why=str(denied))) from None


def _find(session: Session, request: rest.ApiRequest, image: models.Image) -> models.ImageMember:
    """The member named in the path, once the get_member policy allows the lookup."""
    member_id = request.path_params["member_id"]
    _enforce(session, request, image, "get_member", LOOKUP_REFUSAL)
    row = session.get(models.ImageMember, (image.id, member_id))
    if row is None or not _may_see(request.context, image, member_id):
        raise rest.NotFound(f"{member_id} not found in the member list of the image {image.id}.")
    return row


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    refusal = "Not allowed to list members for image {image_id}: {why}"
    image = _shared_image(session, request, refusal)
    _enforce(session, request, image, "get_members", refusal)
    ctx = request.context
    # Each member is then shown only if get_member allows (the target is the image).
    if not policy.allowed(ctx, "get_member", access.target(session, ctx, image), service="image"):
        return {"members": [], "schema": "/v2/schemas/members"}
    rows = session.scalars(
        select(models.ImageMember)
        .where(models.ImageMember.image_id == image.id)
        .order_by(models.ImageMember.created_at, models.ImageMember.member)
    )
    return {
        "members": [view(row) for row in rows if _may_see(ctx, image, row.member)],
        "schema": "/v2/schemas/members",
    }


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    if image.visibility != "shared":
        # A lookup hides why (Glance turns this refusal into 404).
        raise rest.NotFound("Only shared images have members.")
    try:
        row = _find(session, request, image)
    except rest.Forbidden as refused:
        raise rest.NotFound(refused.message) from None
    return view(row)


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    member_id = _body(request, "member", "image_id")
    if not member_id:
        raise rest.BadRequest("Member can't be empty")
    if not isinstance(member_id, str) or len(member_id) > MAX_MEMBER_ID_LENGTH:
        raise rest.BadRequest(
            f"Member must be a project ID of at most {MAX_MEMBER_ID_LENGTH} characters."
        )
    refusal = "Not allowed to create members for image {image_id}."
    image = _shared_image(session, request, refusal)
    _enforce(session, request, image, "add_member", refusal)
    count = session.scalar(select(func.count()).where(models.ImageMember.image_id == image.id)) or 0
    if count >= MEMBER_QUOTA:
        raise rest.PayloadTooLarge(
            f"Image member limit exceeded for image {image.id}: "
            f"Attempted: {count + 1}, Maximum: {MEMBER_QUOTA}"
        )
    if session.get(models.ImageMember, (image.id, member_id)) is not None:
        raise rest.Conflict(f"Member {member_id} is duplicated for image {image.id}")
    moment = images.now()
    row = models.ImageMember(
        image_id=image.id, member=member_id, status="pending", created_at=moment, updated_at=moment
    )
    session.add(row)
    session.flush()
    return rest.ApiResponse(200, view(row))


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    status = _body(request, "status", "status")
    refusal = "Not allowed to update members for image {image_id}."
    image = _shared_image(session, request, refusal)
    row = _find(session, request, image)
    _enforce(session, request, image, "modify_member", refusal)
    if status not in STATUSES:
        raise rest.BadRequest(
            'Incorrect request: Status must be "pending", "accepted" or "rejected".'
        )
    row.status = status
    row.updated_at = images.now()
    session.flush()
    return view(row)


def delete(request: rest.ApiRequest, session: Session) -> None:
    refusal = "Not allowed to delete members for image {image_id}."
    image = _shared_image(session, request, refusal)
    row = _find(session, request, image)
    _enforce(session, request, image, "delete_member", refusal)
    session.delete(row)


ROUTES = [
    rest.Route("GET", "/v2/images/{image_id}/members", index),
    rest.Route("POST", "/v2/images/{image_id}/members", create),
    rest.Route("GET", "/v2/images/{image_id}/members/{member_id}", show),
    rest.Route("PUT", "/v2/images/{image_id}/members/{member_id}", update),
    rest.Route("DELETE", "/v2/images/{image_id}/members/{member_id}", delete),
]
