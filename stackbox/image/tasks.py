"""Glance's legacy tasks API (``/v2/tasks``): list, show, and ``import`` tasks.

An ``import`` task creates an image from ``input.image_properties`` and fills it
with the data at ``input.import_from`` (http or https only; local files are
refused, as Glance refuses them). The task answers 201 at once as ``pending``
and runs in a thread: ``processing``, then ``success`` with
``result.image_id``, or ``failure`` with a message and the image removed.
Finished tasks expire after ``TIME_TO_LIVE`` and then vanish.
"""

from __future__ import annotations

import datetime
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest, validation
from stackbox.db import session as db_session
from stackbox.image import access, data, httpstore, images, ingest, models, quotas, runtime

LOG = logging.getLogger(__name__)

TYPES = ("import", "api_image_import", "location_import")
STATUSES = ("pending", "processing", "success", "failure")
# Glance's [task] task_time_to_live: hours a finished task is kept.
TIME_TO_LIVE = datetime.timedelta(hours=48)
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = ("id", "type", "status", "owner", "created_at", "updated_at", "expires_at")
FETCH_TIMEOUT = 60.0
CHUNK = 1024 * 1024

CREATE_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": list(TYPES)},
        "input": {"type": ["null", "object"]},
    },
    "required": ["type", "input"],
    "additionalProperties": False,
}


class ImportFailed(Exception):
    """Why an import task failed, worded for the task's message."""


def _access(request: rest.ApiRequest, action: str, task: models.Task | None = None) -> None:
    target = {"project_id": task.owner if task else request.context.project_id}
    policy.enforce(request.context, "tasks_api_access", target, service="image")
    policy.enforce(request.context, action, target, service="image")


def _live(query: Any, ctx: context.RequestContext) -> Any:
    """Unexpired tasks the caller may see: its project's, or all for an admin."""
    now = images.now()
    query = query.where((models.Task.expires_at.is_(None)) | (models.Task.expires_at > now))
    if not access.is_admin(ctx):
        query = query.where(models.Task.owner == (ctx.project_id or ""))
    return query


def render(task: models.Task, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "created_at": images.isotime(task.created_at),
        "updated_at": images.isotime(task.updated_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
    if full:
        body.update({"input": task.input, "result": task.result, "message": task.message or ""})
        for key in ("image_id", "request_id", "user_id"):
            if getattr(task, key):
                body[key] = getattr(task, key)
    if task.expires_at:
        body["expires_at"] = images.isotime(task.expires_at)
    return body


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    task_id = request.path_params["task_id"]
    task = session.scalars(
        _live(select(models.Task).where(models.Task.id == task_id), request.context)
    ).first()
    _access(request, "get_task", task)
    if task is None:
        raise rest.NotFound(f"Could not find task {task_id}")
    return render(task)


def _int_arg(request: rest.ApiRequest, name: str) -> int | None:
    raw = request.arg(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise rest.BadRequest(f"{name} param must be an integer") from None
    if value < 0:
        raise rest.BadRequest(f"{name} param must be positive")
    return value


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _access(request, "get_tasks")
    sort_dir = request.arg("sort_dir", "desc") or "desc"
    if sort_dir not in ("asc", "desc"):
        raise rest.BadRequest(f"Invalid sort direction: {sort_dir}")
    sort_key = request.arg("sort_key", "created_at") or "created_at"
    if sort_key not in SORT_KEYS:
        raise rest.BadRequest(f"Invalid sort key: {sort_key}")
    limit = _int_arg(request, "limit")
    limit = min(DEFAULT_LIMIT if limit is None else limit, MAX_LIMIT)
    query = _live(select(models.Task), request.context)
    status = request.arg("status")
    if status:
        if status not in STATUSES:
            raise rest.BadRequest(f"Invalid status value: {status}")
        query = query.where(models.Task.status == status)
    kind = request.arg("type")
    if kind:
        if kind != "import":
            raise rest.BadRequest(f"Invalid type value: {kind}")
        query = query.where(models.Task.type == kind)
    column = getattr(models.Task, sort_key)
    order = [column.asc(), models.Task.id.asc()]
    if sort_dir == "desc":
        order = [column.desc(), models.Task.id.desc()]
    rows = list(session.scalars(query.order_by(*order)))
    marker = request.arg("marker")
    if marker is not None:
        if not access.UUID_RE.match(marker):
            raise rest.BadRequest("Invalid marker format")
        ids = [t.id for t in rows]
        if marker not in ids:
            raise rest.BadRequest(f"Task {marker} could not be found")
        rows = rows[ids.index(marker) + 1 :]
    page = rows[:limit]
    params = {k: v[-1] for k, v in request.query.items() if k != "marker"}
    body: dict[str, Any] = {
        "tasks": [render(t, full=False) for t in page],
        "first": "/v2/tasks" + (f"?{urlencode(params)}" if params else ""),
        "schema": "/v2/schemas/tasks",
    }
    if page and len(page) == limit:
        body["next"] = "/v2/tasks?" + urlencode({**params, "marker": page[-1].id})
    return body


def delete_task(request: rest.ApiRequest, session: Session) -> None:
    _access(request, "get_task")
    raise rest.MethodNotAllowed(
        "This operation is currently not permitted on Glance Tasks. They are auto deleted "
        "after reaching the time based on their expires_at property.",
        headers={"Allow": "GET"},
    )


def _import_source(task_input: dict[str, Any]) -> str:
    """The ``import_from`` URL if Glance's legacy import would accept it; 400 otherwise."""
    location = task_input.get("import_from")
    if not location or not isinstance(location, str):
        raise rest.BadRequest(f"Invalid location: {location}")
    if location.startswith(("file:///", "filesystem:///")):
        raise rest.BadRequest(
            "File based imports are not allowed. Please use a non-local source of image data."
        )
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme not in ("http", "https"):
        raise rest.BadRequest(
            "The given uri is not valid. Please specify a valid uri from the following list "
            "of supported uri ['http']"
        )
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise rest.BadRequest(f"URI for legacy import task is malformed: {location}") from None
    if not parsed.hostname:
        raise rest.BadRequest(f"URI for legacy import task does not pass filtering: {location}")
    return location


def _image_properties(task_input: dict[str, Any]) -> dict[str, Any]:
    props = task_input.get("image_properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise rest.BadRequest("Invalid input for field 'image_properties': not an object")
    props = dict(props)
    if not props:
        # Glance's placeholders for an import without properties.
        props = {"disk_format": "qcow2", "container_format": "bare"}
    for key in props:
        if key in images.READ_ONLY or key == "id":
            raise rest.Forbidden(f"Attribute '{key}' is read-only.")
        if key.startswith("os_glance"):
            raise rest.Forbidden(f"Attribute '{key}' is reserved.")
    validation.check(images.CREATE_SCHEMA, props)
    return props


def create(request: rest.ApiRequest, database: db_session.Database) -> rest.ApiResponse:
    body = request.body
    if not isinstance(body, dict):
        raise rest.BadRequest("Body expected in request.")
    for key in ("type", "input"):
        if key not in body:
            raise rest.BadRequest(f"Task '{key}' is required")
    validation.check(CREATE_SCHEMA, body)

    def record(session: Session) -> dict[str, Any]:
        _access(request, "add_task")
        task_input = body["input"] or {}
        if body["type"] != "import":
            raise rest.BadRequest(f"Task type {body['type']} cannot be created through this API")
        _import_source(task_input)
        props = _image_properties(task_input)
        owner = request.context.project_id
        access.enforce(session, request, "add_image", None, owner=owner)
        if props.get("visibility") == "public":
            access.enforce(session, request, "publicize_image", None)
        moment = images.now()
        # Expired tasks are invisible already; creating a task is a good moment to drop them.
        session.execute(delete(models.Task).where(models.Task.expires_at < moment))
        task = models.Task(
            id=str(uuid.uuid4()),
            type="import",
            status="pending",
            owner=owner,
            image_id=task_input.get("image_id"),
            input=task_input,
            result=None,
            message="",
            request_id=request.context.request_id,
            user_id=request.context.user_id,
            created_at=moment,
            updated_at=moment,
        )
        session.add(task)
        session.flush()
        return render(task)

    view = database.run(record, write=True)
    worker = threading.Thread(
        target=_run_import,
        args=(database, view["id"]),
        name=f"image-task-{view['id'][:8]}",
        daemon=True,
    )
    worker.start()
    return rest.ApiResponse(201, view, headers={"Location": f"/v2/tasks/{view['id']}"})


def _finish(database: db_session.Database, task_id: str, **changes: Any) -> None:
    def write(session: Session) -> None:
        task = session.get(models.Task, task_id)
        if task is None:
            return
        for key, value in changes.items():
            setattr(task, key, value)
        task.updated_at = images.now()
        if task.status in ("success", "failure"):
            task.expires_at = task.updated_at + TIME_TO_LIVE

    database.run(write, write=True)


def _start(session: Session, task_id: str) -> tuple[str, str, dict[str, Any], str | None]:
    """Mark the task processing and create its image; return (image id, url, props, owner)."""
    task = session.get(models.Task, task_id)
    if task is None or task.status != "pending":
        raise ImportFailed("the task is gone or already running")
    task.status = "processing"
    task.updated_at = images.now()
    props = dict(task.input.get("image_properties") or {}) or {
        "disk_format": "qcow2",
        "container_format": "bare",
    }
    quotas.check_image_count(session, task.owner)
    image_id = str(uuid.uuid4())
    moment = images.now()
    image = models.Image(id=image_id, owner=task.owner, created_at=moment, updated_at=moment)
    image.status = "saving"
    image.visibility = props.get("visibility", "shared")
    for key in ("name", "protected", "os_hidden", "min_ram", "min_disk"):
        if key in props:
            setattr(image, key, props[key])
    image.disk_format = props.get("disk_format")
    image.container_format = props.get("container_format")
    image.generation = 1
    session.add(image)
    for key, value in props.items():
        if key not in images.CORE_SCHEMA:
            session.add(models.ImageProperty(image_id=image_id, name=key, value=value))
    for tag in dict.fromkeys(props.get("tags") or []):
        session.add(models.ImageTag(image_id=image_id, value=tag))
    return image_id, task.input["import_from"], props, task.owner


def _fetch(url: str) -> Iterator[bytes]:
    """The data at ``url``, chunk by chunk, through the server's URL allow-list;
    ImportFailed if it cannot be fetched."""
    try:
        yield from httpstore.read(url)
    except httpstore.FetchFailed as exc:
        raise ImportFailed(str(exc)) from None


def _run_import(database: db_session.Database, task_id: str) -> None:
    """The import task's body, in its own thread."""
    rt = runtime.get()
    store = rt.default_store
    image_id: str | None = None
    received: ingest.Received | None = None
    try:
        image_id, url, _, owner = database.run(lambda s: _start(s, task_id), write=True)
        room = database.run(lambda s: quotas.size_room(s, owner, image_id), write=False)
        cap = rt.settings.image_size_cap
        limit = cap if room is None else min(room, cap)
        try:
            received = ingest.receive(
                _fetch(url),
                store,
                image_id,
                limit=limit,
                on_limit=lambda n: ImportFailed(
                    f"Image exceeds the storage limit of {limit} bytes"
                ),
            )
        except ingest.SourceFailed as exc:
            cause = exc.__cause__
            raise ImportFailed(str(cause) if cause else str(exc)) from None
        got = received

        def activate(session: Session, placed: list[Path]) -> None:
            image = session.get(models.Image, image_id)
            if image is None or image.status != "saving":
                raise ImportFailed("the image was deleted during the import")
            quotas.check_image_size(session, image.owner, got.size, excluding=image.id)
            relative = data.place(store, got, image.id, placed)
            session.add(models.ImageLocation(image_id=image.id, store=store.name, path=relative))
            image.size = got.size
            image.checksum = got.checksum
            image.os_hash_algo = ingest.HASH_ALGO
            image.os_hash_value = got.hash_value
            image.status = "active"
            images.touch(image)

        data.commit_or_discard(database, got, activate)
        received = None
        _finish(database, task_id, status="success", result={"image_id": image_id}, message="")
    except (ImportFailed, rest.ApiError) as exc:
        _fail(database, task_id, image_id, str(exc))
    except Exception:
        LOG.exception("image import task %s failed", task_id)
        _fail(database, task_id, image_id, "Task failed due to Internal Error")
    finally:
        if received is not None:
            received.discard()


def _fail(database: db_session.Database, task_id: str, image_id: str | None, why: str) -> None:
    if image_id is not None:

        def remove(session: Session) -> None:
            image = session.get(models.Image, image_id)
            if image is not None:
                images.delete_row(session, image)

        try:
            database.run(remove, write=True)
        except Exception:
            LOG.exception("could not remove image %s of failed task %s", image_id, task_id)
    _finish(database, task_id, status="failure", message=why)


def image_tasks(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    """GET /v2/images/{id}/tasks (v2.12): the tasks that worked on an image, for anyone
    who may see the image (no tasks_api_access needed, as in Glance)."""
    image = access.get_visible(session, request.context, request.path_params["image_id"])
    access.enforce(session, request, "get_image", image)
    rows = session.scalars(
        select(models.Task)
        .where(models.Task.image_id == image.id)
        .order_by(models.Task.created_at, models.Task.id)
    )
    return {"tasks": [render(task) for task in rows]}


ROUTES = [
    rest.Route("GET", "/v2/images/{image_id}/tasks", image_tasks),
    rest.Route("POST", "/v2/tasks", create, manual_tx=True),
    rest.Route("GET", "/v2/tasks", index),
    rest.Route("GET", "/v2/tasks/{task_id}", show),
    rest.Route("DELETE", "/v2/tasks/{task_id}", delete_task, write=False),
]
