"""PATCH /v2/images/{id}: RFC 6902 JSON patch with Glance's media types and rules.

Only top-level attributes are patched. Core attributes are replaced (``add`` on
one is a replace), custom ones are added, replaced or removed; read-only and
reserved attributes are refused; ``disk_format`` and ``container_format``
change only while the image has no data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.db import session as db_session
from stackbox.image import access, images, location_import, locations, models

MEDIA_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
OPERATION_SCHEMA = {
    "type": "object",
    "properties": {
        "op": {"type": "string", "enum": ["add", "replace", "remove"]},
        "path": {"type": "string"},
        "value": {},
    },
    "required": ["op", "path"],
}
# Core attributes that may not be removed, only replaced.
UNREMOVABLE = (*images.WRITABLE, "id", "tags")


def _attribute(path: str) -> str:
    if not path.startswith("/") or "/" in path[1:]:
        raise rest.BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    return path[1:].replace("~1", "/").replace("~0", "~")


def _normalized(operation: Any) -> Any:
    """The v2.0 patch form ``{"replace": "/name", "value": x}`` as RFC 6902's."""
    if not isinstance(operation, dict) or "op" in operation:
        return operation
    verbs = [verb for verb in ("add", "replace", "remove") if verb in operation]
    if len(verbs) != 1:
        raise rest.BadRequest("Each operation needs exactly one of add, replace or remove.")
    result = {"op": verbs[0], "path": operation[verbs[0]]}
    if "value" in operation:
        result["value"] = operation["value"]
    return result


def _check_value(name: str, value: Any) -> None:
    schema = images.CORE_SCHEMA.get(name, {"type": "string"})
    try:
        validation.check({"type": "object", "properties": {name: schema}}, {name: value})
    except rest.BadRequest as exc:
        raise rest.BadRequest(exc.message) from None


def apply(request: rest.ApiRequest, db: db_session.Database) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype not in MEDIA_TYPES:
        raise rest.UnsupportedMediaType(
            f"Content-Type must be one of {', '.join(MEDIA_TYPES)}",
            headers={"Accept-Patch": ", ".join(MEDIA_TYPES)},
        )
    operations = request.body
    if not isinstance(operations, list):
        raise rest.BadRequest("Request body must be a JSON array of operation objects.")
    normalize = _normalized if ctype == MEDIA_TYPES[1] else _as_given
    # New location URLs are asked for their size before the write transaction starts.
    probes = locations.probe(db, request, [_leniently(normalize, o) for o in operations])
    return db.run(lambda s: _apply(s, request, operations, normalize, probes), write=True)


def _as_given(operation: Any) -> Any:
    return operation


def _leniently(normalize: Callable[[Any], Any], operation: Any) -> Any:
    # For probing only: the transaction reports a malformed operation in its turn.
    try:
        return normalize(operation)
    except rest.ApiError:
        return None


def _apply(
    session: Session,
    request: rest.ApiRequest,
    operations: list[Any],
    normalize: Callable[[Any], Any],
    probes: dict[str, locations.Probe],
) -> dict[str, Any]:
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, "modify_image", image)
    custom = images.properties(session, image.id)
    for given in operations:
        operation = normalize(given)
        validation.check(OPERATION_SCHEMA, operation)
        op = operation["op"]
        if locations.is_locations_path(operation["path"]):
            locations.patch(session, request, image, operation, probes)
            continue
        name = _attribute(operation["path"])
        if name in images.READ_ONLY:
            raise rest.Forbidden(f"Attribute '{name}' is read-only.")
        if name.startswith("os_glance"):
            raise rest.Forbidden(f"Attribute '{name}' is reserved.")
        if name == "id":
            raise rest.Forbidden("Attribute 'id' is read-only.")
        if op != "remove" and "value" not in operation:
            raise rest.BadRequest(f"Operation '{op}' needs a value.")
        if name in images.CORE_SCHEMA:
            if op == "remove":
                raise rest.Forbidden(f"Properties {name} must not be removed.")
            _replace_core(session, request, image, name, operation["value"])
        elif op == "remove":
            if name not in custom:
                raise rest.Conflict(f"Property {name} does not exist.")
            del custom[name]
        else:
            if op == "replace" and name not in custom:
                raise rest.Conflict(f"Property {name} does not exist.")
            _check_value(name, operation["value"])
            custom[name] = operation["value"]
    if len(custom) > images.PROPERTY_QUOTA:
        raise rest.PayloadTooLarge(f"Attempted: {len(custom)}, Maximum: {images.PROPERTY_QUOTA}")
    session.query(models.ImageProperty).filter(models.ImageProperty.image_id == image.id).delete()
    for key, value in custom.items():
        session.add(models.ImageProperty(image_id=image.id, name=key, value=value))
    images.touch(image)
    session.flush()
    return images.render(session, image, request.context)


def _replace_core(
    session: Session, request: rest.ApiRequest, image: models.Image, name: str, value: Any
) -> None:
    _check_value(name, value)
    if name == "tags":
        wanted = list(dict.fromkeys(value))
        if len(wanted) > images.TAG_QUOTA:
            raise rest.PayloadTooLarge(f"Attempted: {len(wanted)}, Maximum: {images.TAG_QUOTA}")
        session.query(models.ImageTag).filter(models.ImageTag.image_id == image.id).delete()
        for tag in wanted:
            session.add(models.ImageTag(image_id=image.id, value=tag))
        return
    if (
        name in ("disk_format", "container_format")
        and image.status != "queued"
        and getattr(image, name) != value
    ):
        raise rest.Forbidden(f"Attribute {name} can be only replaced for a queued image.")
    if name == "visibility" and value != image.visibility:
        if value == "public":
            access.enforce(session, request, "publicize_image", image)
        elif value == "community":
            access.enforce(session, request, "communitize_image", image)
    if name == "owner" and value != image.owner and not access.is_admin(request.context):
        raise rest.Forbidden("Only an administrator may change the owner of an image.")
    setattr(image, name, value)


ROUTES = [
    rest.Route("PATCH", "/v2/images/{image_id}", apply, manual_tx=True),
    # The 2.17 location routes ride here: api.MODULES (not ours to edit) lists neither module.
    *locations.ROUTES,
    *location_import.ROUTES,
]
