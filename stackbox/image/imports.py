"""Interoperable image import: staging, ``POST /v2/images/{id}/import``, and the
discovery calls that go with it (``/v2/info/import``, ``/v2/info/stores``).

Staging streams data into the staging area as an upload streams into a store
(no transaction open meanwhile) and leaves the image ``uploading``. An import
is accepted in one short transaction (checks, a task row, the image's lock,
``importing``) and answered 202; the copying runs in a background thread
(``import_jobs``).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from stackbox import policy, rest
from stackbox.db import session as db_session
from stackbox.image import (
    access,
    data,
    images,
    import_jobs,
    import_sources,
    ingest,
    models,
    quotas,
    runtime,
    stores,
)


def enabled_methods() -> list[str]:
    return runtime.get().import_methods()


# --- staging ---


def _too_large_to_stage(size: int, room: int | None) -> rest.PayloadTooLarge:
    if size > runtime.get().settings.image_size_cap:
        return data.too_large(size, None)
    return rest.PayloadTooLarge(
        f"Image exceeds the staging quota: the project may stage {room} more bytes."
    )


def _begin_stage(
    session: Session, request: rest.ApiRequest, image_id: str, hint: int | None
) -> data.Transfer:
    image = access.get_visible(session, request.context, image_id)
    # Staging has no policy of its own: it needs the right to change the image.
    access.enforce(session, request, "modify_image", image)
    if image.status != "queued":
        raise rest.Conflict(
            f"Image status transition from {image.status} to uploading is not allowed"
        )
    if hint is not None:
        quotas.check_stage_size(session, image.owner, hint, excluding=image.id)
    room = quotas.stage_room(session, image.owner, excluding=image.id)
    image.status = "uploading"
    images.touch(image)
    return data.Transfer(
        image.id,
        image.created_at,
        "uploading",
        image.disk_format,
        image.container_format,
        room,
    )


def _finish_stage(
    session: Session, start: data.Transfer, received: ingest.Received, placed: list[Path]
) -> None:
    image = session.get(models.Image, start.image_id)
    if image is None or not data.same_transfer(image, start, "uploading"):
        raise rest.Gone(
            f"Image {start.image_id} could not be found after staging. The image may have "
            "been deleted meanwhile; the staged data is removed."
        )
    quotas.check_stage_size(session, image.owner, received.size, excluding=image.id)
    rt = runtime.get()
    session.query(models.ImageLocation).filter(
        models.ImageLocation.image_id == image.id,
        models.ImageLocation.store == stores.STAGING,
    ).delete()
    relative = data.place(rt.staging, received, image.id, placed)
    session.add(models.ImageLocation(image_id=image.id, store=stores.STAGING, path=relative))
    image.size = received.size
    # Which API node holds the staged data (Glance's worker self-reference).
    import_jobs.set_property(session, image.id, import_jobs.STAGE_HOST, f"{rt.base_url}/image")
    images.touch(image)


def stage(request: rest.ApiRequest, db: db_session.Database) -> None:
    if import_jobs.GLANCE_DIRECT not in enabled_methods():
        raise rest.NotFound("'glance-direct' method is not available at this site.")
    data.require_octet_stream(request)
    image_id = request.path_params["image_id"]
    hint = data.size_hint(request)
    if hint is not None and hint > runtime.get().settings.image_size_cap:
        raise data.too_large(hint, None)
    start = db.run(lambda s: _begin_stage(s, request, image_id, hint), write=True)
    received = data.receive(
        db,
        start,
        runtime.get().staging,
        request.body_stream or (),
        on_limit=lambda n: _too_large_to_stage(n, start.room),
        inspect=False,
        hashes=False,
    )
    data.finish(db, start, received, lambda s, placed: _finish_stage(s, start, received, placed))


# --- import ---


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise rest.BadRequest(f"'{name}' must be boolean value only")
    return value


def _parse(request: rest.ApiRequest) -> tuple[dict[str, Any], str, bool, bool]:
    body = request.body
    if not isinstance(body, dict):
        raise rest.BadRequest("Import request body must be a JSON object.")
    method = body.get("method")
    if method is None:
        raise rest.BadRequest("Import request requires a 'method' field.")
    if not isinstance(method, dict) or "name" not in method:
        raise rest.BadRequest("Import request requires a 'name' field.")
    name = method["name"]
    if name not in enabled_methods():
        raise rest.BadRequest(f"Unknown import method name '{name}'.")
    must_succeed = _flag(body, "all_stores_must_succeed", True)
    all_stores = _flag(body, "all_stores", False)
    requested = body.get("stores")
    if requested is not None and (
        not isinstance(requested, list) or not all(isinstance(x, str) for x in requested)
    ):
        raise rest.BadRequest("'stores' must be a list of store names.")
    return body, name, must_succeed, all_stores


def _target_stores(request: rest.ApiRequest, body: dict[str, Any], all_stores: bool) -> list[str]:
    rt = runtime.get()
    header = request.headers.get("x-image-meta-store")
    if all_stores:
        if "stores" in body or header is not None:
            raise rest.BadRequest(
                "All_stores parameter can't be used with x-image-meta-store header or "
                "stores parameter"
            )
        return list(rt.stores)
    if "stores" in body:
        if header is not None:
            raise rest.BadRequest(
                "Stores parameter and x-image-meta-store header can't be both specified"
            )
        wanted = list(dict.fromkeys(body["stores"]))
    else:
        wanted = [header if header is not None else rt.default_store.name]
    for name in wanted:
        if name not in rt.stores:
            raise rest.Conflict(f"Store {name!r} is not configured.")
    return wanted


def _check_status(image: models.Image, method: str) -> None:
    if image.status == "active" and method != import_jobs.COPY_IMAGE:
        raise rest.Conflict("Image with status active cannot be target for import")
    if image.status != "active" and method == import_jobs.COPY_IMAGE:
        raise rest.Conflict("Only images with status active can be targeted for copying")
    if image.status != "queued" and method in import_jobs.DOWNLOADS:
        raise rest.Conflict(f"Image needs to be in 'queued' state to use '{method}' method")
    if image.status != "uploading" and method == import_jobs.GLANCE_DIRECT:
        raise rest.Conflict("Image needs to be staged before 'glance-direct' method can be used")
    if not image.container_format:
        raise rest.Conflict("'container_format' needs to be set before import")
    if not image.disk_format:
        raise rest.Conflict("'disk_format' needs to be set before import")


def _accept(
    session: Session,
    request: rest.ApiRequest,
    body: dict[str, Any],
    method: str,
    must_succeed: bool,
    all_stores: bool,
) -> import_jobs.Job | None:
    ctx = request.context
    quotas.check_image_size(session, ctx.project_id, 0)
    image = access.get_visible(session, ctx, request.path_params["image_id"])
    _check_status(image, method)
    if method == import_sources.GLANCE_DOWNLOAD:
        import_sources.check_glance_download(body["method"])
    if method == import_jobs.COPY_IMAGE:
        access.enforce(session, request, "copy_image", image)
    else:
        # Only the owner (or an admin) may put data into an image.
        access.enforce(session, request, "modify_image", image)
    wanted = _target_stores(request, body, all_stores)
    if method == import_jobs.COPY_IMAGE:
        present = set(images.store_names(session, image.id))
        if all_stores:
            wanted = [name for name in wanted if name not in present]
            if not wanted:
                # Nothing to copy: say so the way a finished copy does.
                import_jobs.merge_stores(session, image.id, import_jobs.IMPORTING, [], True)
                import_jobs.merge_stores(session, image.id, import_jobs.FAILED, [], True)
                return None
        for name in wanted:
            if name in present:
                raise rest.BadRequest(f"Image is already present at store '{name}'")
    caller = None
    if method in import_jobs.DOWNLOADS:
        if method == import_sources.WEB_DOWNLOAD:
            import_sources.check_web_download(body["method"])
        # The data goes through the staging area first: refuse an owner already over it.
        quotas.check_stage_size(session, image.owner, 0, excluding=image.id)
        if ctx.token is None:
            raise rest.Unauthorized("The request you have made requires authentication.")
        caller = import_sources.Caller(ctx, ctx.token)
    moment = images.now()
    task = models.Task(
        id=str(uuid.uuid4()),
        type=import_jobs.TASK_TYPE,
        status="pending",
        owner=ctx.project_id,
        image_id=image.id,
        input={"image_id": image.id, "import_req": body, "backend": wanted},
        message="",
        request_id=ctx.request_id,
        user_id=ctx.user_id,
        created_at=moment,
        updated_at=moment,
    )
    session.add(task)
    import_jobs.take_lock(session, image, task.id)
    if method != import_jobs.COPY_IMAGE:
        image.status = "importing"
    import_jobs.merge_stores(session, image.id, import_jobs.IMPORTING, wanted, remove=False)
    import_jobs.merge_stores(session, image.id, import_jobs.FAILED, wanted, remove=True)
    import_jobs.pop_property(session, image.id, import_jobs.STAGE_HOST)
    if method == import_jobs.GLANCE_DIRECT:
        quotas.check_image_size(session, image.owner, image.size or 0, excluding=image.id)
    images.touch(image)
    return import_jobs.Job(
        task.id, image.id, method, tuple(wanted), must_succeed, dict(body["method"]), caller
    )


def import_image(request: rest.ApiRequest, db: db_session.Database) -> rest.ApiResponse:
    body, method, must_succeed, all_stores = _parse(request)
    job = db.run(lambda s: _accept(s, request, body, method, must_succeed, all_stores), write=True)
    if job is not None:
        import_jobs.start(db, job)
    return rest.ApiResponse(202)


# --- discovery ---


def info_import(request: rest.ApiRequest, session: None) -> dict[str, Any]:
    return {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": enabled_methods(),
        }
    }


def _store_list() -> list[dict[str, Any]]:
    rt = runtime.get()
    listed = []
    for store in rt.stores.values():
        entry: dict[str, Any] = {"id": store.name}
        if store.description:
            entry["description"] = store.description
        if store is rt.default_store:
            entry["default"] = "true"
        listed.append(entry)
    return listed


def info_stores(request: rest.ApiRequest, session: None) -> dict[str, Any]:
    return {"stores": _store_list()}


def info_stores_detail(request: rest.ApiRequest, session: None) -> dict[str, Any]:
    ctx = request.context
    policy.enforce(ctx, "stores_info_detail", {"project_id": ctx.project_id}, service="image")
    rt = runtime.get()
    listed = _store_list()
    for entry in listed:
        store = rt.stores[entry["id"]]
        entry["type"] = "file"
        entry["properties"] = {
            "data_dir": str(store.root),
            "chunk_size": ingest.BLOCK,
            "thin_provisioning": False,
        }
        entry["weight"] = 0
    return {"stores": listed}


def delete_from_store(request: rest.ApiRequest, session: Session) -> None:
    """DELETE /v2/stores/{store_id}/{image_id}: drop one store's copy of an active image."""
    rt = runtime.get()
    store_id = request.path_params["store_id"]
    if store_id not in rt.stores:
        raise rest.Conflict(f"The selected store {store_id} is not available on this node.")
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, "get_image_location", image)
    access.enforce(session, request, "delete_image_location", image)
    if image.status != "active":
        raise rest.Conflict(
            "It's not allowed to remove image data from store if image status is not 'active'"
        )
    copies = {
        loc.store: loc
        for loc in session.query(models.ImageLocation).filter(
            models.ImageLocation.image_id == image.id,
            models.ImageLocation.store != stores.STAGING,
        )
    }
    if store_id not in copies:
        raise rest.NotFound(f"Image {image.id} is not stored in store {store_id}.")
    if len(copies) == 1:
        raise rest.Forbidden(
            "Cannot delete image data from the only store containing it. Consider deleting "
            "the image instead."
        )
    location = copies[store_id]
    session.delete(location)
    images.touch(image)
    store = rt.store(store_id)
    db_session.after_commit(session, lambda: store.delete(location.path))


ROUTES = [
    rest.Route("DELETE", "/v2/stores/{store_id}/{image_id}", delete_from_store),
    rest.Route("PUT", "/v2/images/{image_id}/stage", stage, stream=True),
    rest.Route("POST", "/v2/images/{image_id}/import", import_image, manual_tx=True),
    rest.Route("GET", "/v2/info/import", info_import, no_db=True),
    rest.Route("GET", "/v2/info/stores", info_stores, no_db=True),
    rest.Route("GET", "/v2/info/stores/detail", info_stores_detail, no_db=True),
]
