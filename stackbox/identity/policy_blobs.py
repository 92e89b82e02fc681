"""OS-POLICY: opaque policy documents (``blob`` plus a ``type``) kept for other services.

Identity never interprets them; it only stores, lists and hands them back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.identity import errors, models, resources, runtime

_PROPERTIES: dict[str, Any] = {
    "blob": {"type": "string"},
    "type": {"type": "string", "maxLength": 255},
}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _PROPERTIES,
    "required": ["blob", "type"],
    # Keystone keeps unknown attributes as extra properties.
    "additionalProperties": True,
}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _PROPERTIES,
    "minProperties": 1,
    "additionalProperties": True,
}

_COLUMNS = ("id", "blob", "type", "links")


def render(row: models.PolicyBlob) -> dict[str, Any]:
    body: dict[str, Any] = dict(row.extra)
    body.update(
        {
            "id": row.id,
            "blob": row.blob,
            "type": row.type,
            "links": resources.self_link(f"/v3/policies/{row.id}"),
        }
    )
    return body


def _extra(ref: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ref.items() if k not in _COLUMNS}


def _get(session: Session, policy_id: str) -> models.PolicyBlob:
    return resources.get_or_404(session, models.PolicyBlob, policy_id, "policy")


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    resources.enforce(request, "identity:create_policy")
    ref = resources.body_of(request, "policy", CREATE_SCHEMA)
    row = models.PolicyBlob(
        id=resources.new_id(), blob=ref["blob"], type=ref["type"], extra=_extra(ref)
    )
    session.add(row)
    session.flush()
    runtime.changed(session)
    return rest.ApiResponse(201, {"policy": render(row)})


def list_policies(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_policies")
    query = select(models.PolicyBlob).order_by(models.PolicyBlob.id)
    kind = request.arg("type")
    if kind is not None:
        query = query.where(models.PolicyBlob.type == kind)
    rows = list(session.scalars(query))
    return resources.limited(rows, "policies", request, [render(r) for r in rows])


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_policy")
    return {"policy": render(_get(session, request.path_params["policy_id"]))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:update_policy")
    ref = resources.body_of(request, "policy", UPDATE_SCHEMA)
    policy_id = request.path_params["policy_id"]
    if "id" in ref and ref["id"] != policy_id:
        raise errors.validation("Cannot change policy ID")
    row = _get(session, policy_id)
    if "blob" in ref:
        row.blob = ref["blob"]
    if "type" in ref:
        row.type = ref["type"]
    extra = _extra(ref)
    if extra:
        row.extra = {**row.extra, **extra}
    session.flush()
    runtime.changed(session)
    return {"policy": render(row)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:delete_policy")
    session.delete(_get(session, request.path_params["policy_id"]))
    runtime.changed(session)


ROUTES = [
    rest.Route("POST", "/v3/policies", create),
    rest.Route("GET", "/v3/policies", list_policies),
    rest.Route("GET", "/v3/policies/{policy_id}", show),
    rest.Route("PATCH", "/v3/policies/{policy_id}", update),
    rest.Route("DELETE", "/v3/policies/{policy_id}", delete),
]
