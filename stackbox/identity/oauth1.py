"""OS-OAUTH1 consumers: the applications that may ask users for delegated access.

A consumer's secret signs its OAuth requests, so it is generated here and shown
once, in the answer to the create; no later read returns it and no update sets it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.identity import models, resources, runtime

_PROPERTIES: dict[str, Any] = {"description": {"type": ["string", "null"]}}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _PROPERTIES,
    # Keystone keeps unknown attributes as extra properties.
    "additionalProperties": True,
}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _PROPERTIES,
    "minProperties": 1,
    "additionalProperties": True,
}

_COLUMNS = ("id", "description", "secret", "links")
_PATH = "/v3/OS-OAUTH1/consumers"


def render(row: models.Consumer) -> dict[str, Any]:
    body: dict[str, Any] = dict(row.extra)
    body.update(
        {
            "id": row.id,
            "description": row.description,
            "links": resources.self_link(f"{_PATH}/{row.id}"),
        }
    )
    return body


def _extra(ref: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ref.items() if k not in _COLUMNS}


def _get(session: Session, consumer_id: str) -> models.Consumer:
    row = session.get(models.Consumer, consumer_id)
    if row is None:
        raise rest.NotFound("Consumer not found")
    return row


def _ref(request: rest.ApiRequest, schema: dict[str, Any]) -> dict[str, Any]:
    body = request.body
    if body is None or (isinstance(body, dict) and "consumer" not in body):
        # Keystone accepts a missing body or member as an empty consumer.
        ref: Any = {}
        validation.check(schema, ref)
    else:
        ref = resources.body_of(request, "consumer", schema)
    return dict(ref)


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    resources.enforce(request, "identity:create_consumer")
    ref = _ref(request, CREATE_SCHEMA)
    row = models.Consumer(
        id=resources.new_id(),
        description=ref.get("description"),
        secret=resources.new_id(),
        extra=_extra(ref),
    )
    session.add(row)
    session.flush()
    runtime.changed(session)
    return rest.ApiResponse(201, {"consumer": {**render(row), "secret": row.secret}})


def list_consumers(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_consumers")
    rows = list(session.scalars(select(models.Consumer).order_by(models.Consumer.id)))
    return resources.limited(rows, "consumers", request, [render(r) for r in rows])


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_consumer")
    return {"consumer": render(_get(session, request.path_params["consumer_id"]))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:update_consumer")
    ref = _ref(request, UPDATE_SCHEMA)
    if "secret" in ref:
        raise rest.BadRequest("Invalid input for field 'secret': a consumer's secret is generated")
    consumer_id = request.path_params["consumer_id"]
    if ref.get("id") is not None and ref["id"] != consumer_id:
        raise rest.BadRequest("Cannot change ID")
    row = _get(session, consumer_id)
    if "description" in ref:
        row.description = ref["description"]
    extra = _extra(ref)
    if extra:
        row.extra = {**row.extra, **extra}
    session.flush()
    runtime.changed(session)
    return {"consumer": render(row)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:delete_consumer")
    session.delete(_get(session, request.path_params["consumer_id"]))
    # Tokens a consumer obtained stop working: runtime.changed drops the token caches.
    runtime.changed(session)


ROUTES = [
    rest.Route("POST", _PATH, create),
    rest.Route("GET", _PATH, list_consumers),
    rest.Route("GET", _PATH + "/{consumer_id}", show),
    rest.Route("PATCH", _PATH + "/{consumer_id}", update),
    rest.Route("DELETE", _PATH + "/{consumer_id}", delete),
]
