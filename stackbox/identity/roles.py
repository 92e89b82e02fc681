"""Roles (global and domain-specific) and implied roles (role inference rules)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.identity import assignments, errors, models, resources, runtime

# Keystone refuses to let any role imply admin (``[assignment] prohibited_implied_role``).
PROHIBITED_IMPLIED = ("admin",)

_OPTIONS = {
    "type": "object",
    "properties": {"immutable": {"type": ["boolean", "null"]}},
    "additionalProperties": False,
}
_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"[\S]+"},
    "domain_id": {"type": ["string", "null"], "maxLength": 64},
    "description": {"type": ["string", "null"]},
    "options": _OPTIONS,
}
CREATE_SCHEMA = validation.creating(_PROPERTIES, "name")
UPDATE_SCHEMA = validation.updating(_PROPERTIES)


def domain_of(role: models.Role) -> str | None:
    return None if role.domain_id == models.GLOBAL else role.domain_id


def render(role: models.Role) -> dict[str, Any]:
    body: dict[str, Any] = dict(role.extra)
    body.update(
        {
            "id": role.id,
            "name": role.name,
            "domain_id": domain_of(role),
            "description": role.description,
            "options": dict(role.options),
            "links": resources.self_link(f"/v3/roles/{role.id}"),
        }
    )
    return body


def brief(role: models.Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "links": resources.self_link(f"/v3/roles/{role.id}"),
    }


def target(role: models.Role) -> dict[str, Any]:
    return {"role": {"id": role.id, "name": role.name, "domain_id": domain_of(role)}}


def get_role(session: Session, role_id: str) -> models.Role:
    return resources.get_or_404(session, models.Role, role_id, "role")


def role_by_name(session: Session, name: str) -> models.Role:
    """The one role with this name, global or domain-specific (400 when ambiguous)."""
    found = list(session.scalars(select(models.Role).where(models.Role.name == name)))
    if not found:
        raise errors.not_found("role", name)
    if len(found) > 1:
        raise rest.BadRequest(
            f"There are multiple role entities named '{name}'. Please use ID instead of "
            "names to resolve the ambiguity."
        )
    return found[0]


def _role_action(role: models.Role | None, ref: dict[str, Any] | None, verb: str) -> str:
    domain = (ref or {}).get("domain_id") if role is None else domain_of(role)
    return f"identity:{verb}_domain_role" if domain else f"identity:{verb}_role"


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = resources.body_of(request, "role", CREATE_SCHEMA)
    resources.enforce(request, _role_action(None, ref, "create"), {"role": ref})
    domain_id = ref.get("domain_id")
    if domain_id:
        resources.get_domain(session, domain_id)
    extra = {
        k: v
        for k, v in ref.items()
        if k not in ("name", "domain_id", "description", "options", "id", "links")
    }
    role = models.Role(
        id=resources.new_id(),
        name=ref["name"],
        domain_id=domain_id or models.GLOBAL,
        description=ref.get("description"),
        options={k: v for k, v in (ref.get("options") or {}).items() if v is not None},
        extra=extra,
    )
    session.add(role)
    try:
        session.flush()
    except IntegrityError:
        raise errors.duplicate("role", ref["name"], domain_id) from None
    runtime.changed(session)
    return rest.ApiResponse(201, {"role": render(role)})


def list_roles(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    domain_id = request.arg("domain_id")
    action = "identity:list_domain_roles" if domain_id else "identity:list_roles"
    resources.enforce(request, action, {"domain_id": domain_id})
    query = select(models.Role).where(models.Role.domain_id == (domain_id or models.GLOBAL))
    rows = resources.filter_by_name(
        request, session.scalars(query.order_by(models.Role.name)), lambda r: r.name
    )
    return resources.limited(rows, "roles", request, [render(r) for r in rows])


def _role(request: rest.ApiRequest, session: Session, verb: str) -> models.Role:
    role_id = request.path_params["role_id"]
    role = session.get(models.Role, role_id)
    resources.enforce(
        request,
        _role_action(role, None, verb),
        target(role) if role else {"role": {"id": role_id, "domain_id": None, "name": None}},
    )
    if role is None:
        raise errors.not_found("role", role_id)
    return role


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return {"role": render(_role(request, session, "get"))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = resources.body_of(request, "role", UPDATE_SCHEMA)
    role = _role(request, session, "update")
    if "domain_id" in ref and ref["domain_id"] != domain_of(role):
        raise rest.BadRequest("Update of `domain_id` is not allowed.")
    options = dict(role.options)
    if options.get("immutable") and (ref.get("options") or {}).get("immutable") is not False:
        raise rest.Forbidden(f"Cannot modify immutable role: {role.id}.")
    extra = dict(role.extra)
    for key, value in ref.items():
        if key in ("name", "description"):
            setattr(role, key, value)
        elif key == "options":
            for name, option in value.items():
                if option is None:
                    options.pop(name, None)
                else:
                    options[name] = option
            role.options = options
        elif key not in ("domain_id", "id", "links"):
            extra[key] = value
    role.extra = extra
    try:
        session.flush()
    except IntegrityError:
        raise errors.duplicate("role", ref.get("name", role.name), domain_of(role)) from None
    runtime.changed(session)
    return {"role": render(role)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    role = _role(request, session, "delete")
    if role.options.get("immutable"):
        raise rest.Forbidden(
            f"Unable to delete immutable role resource: `{role.id}. Set resource option "
            '"immutable" to false first.'
        )
    session.query(models.Assignment).filter(models.Assignment.role_id == role.id).delete()
    session.query(models.ImpliedRole).filter(
        (models.ImpliedRole.prior_role_id == role.id)
        | (models.ImpliedRole.implied_role_id == role.id)
    ).delete()
    session.delete(role)
    runtime.changed(session)


# Implied roles.


def _pair(
    request: rest.ApiRequest, session: Session, action: str
) -> tuple[models.Role, models.Role]:
    resources.enforce(request, action)
    prior = get_role(session, request.path_params["prior_role_id"])
    implied = get_role(session, request.path_params["implied_role_id"])
    return prior, implied


def _inference(prior: models.Role, implied: models.Role) -> dict[str, Any]:
    return {
        "role_inference": {"prior_role": brief(prior), "implies": brief(implied)},
        "links": resources.self_link(f"/v3/roles/{prior.id}/implies/{implied.id}"),
    }


def create_implied(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    prior, implied = _pair(request, session, "identity:create_implied_role")
    if implied.name in PROHIBITED_IMPLIED:
        raise rest.Forbidden(f"{implied.id} cannot be an implied roles.")
    if domain_of(prior) is None and domain_of(implied) is not None:
        raise rest.Forbidden("Global role cannot imply a domain-specific role")
    if prior.id == implied.id or prior.id in assignments.implied_closure(session, {implied.id}):
        raise rest.Forbidden(f"{implied.id} cannot be an implied roles.")
    key = (prior.id, implied.id)
    if session.get(models.ImpliedRole, key) is None:
        session.add(models.ImpliedRole(prior_role_id=prior.id, implied_role_id=implied.id))
        runtime.changed(session)
    return rest.ApiResponse(201, _inference(prior, implied))


def _existing_implied(
    request: rest.ApiRequest, session: Session, action: str
) -> tuple[models.Role, models.Role, models.ImpliedRole]:
    prior, implied = _pair(request, session, action)
    row = session.get(models.ImpliedRole, (prior.id, implied.id))
    if row is None:
        raise rest.NotFound(f"{prior.id} does not imply {implied.id}.")
    return prior, implied, row


def show_implied(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    prior, implied, _ = _existing_implied(request, session, "identity:get_implied_role")
    return _inference(prior, implied)


def check_implied(request: rest.ApiRequest, session: Session) -> None:
    _existing_implied(request, session, "identity:check_implied_role")


def delete_implied(request: rest.ApiRequest, session: Session) -> None:
    _, _, row = _existing_implied(request, session, "identity:delete_implied_role")
    session.delete(row)
    runtime.changed(session)


def _implied_of(session: Session, prior: models.Role) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(models.Role)
        .join(models.ImpliedRole, models.ImpliedRole.implied_role_id == models.Role.id)
        .where(models.ImpliedRole.prior_role_id == prior.id)
        .order_by(models.Role.name)
    )
    return [brief(r) for r in rows]


def list_implied(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_implied_roles")
    prior = get_role(session, request.path_params["prior_role_id"])
    return {
        "role_inference": {"prior_role": brief(prior), "implies": _implied_of(session, prior)},
        "links": resources.self_link(f"/v3/roles/{prior.id}/implies"),
    }


def list_inferences(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_role_inference_rules")
    priors = session.scalars(
        select(models.Role)
        .where(models.Role.id.in_(select(models.ImpliedRole.prior_role_id).scalar_subquery()))
        .order_by(models.Role.name)
    )
    return {
        "role_inferences": [
            {"prior_role": brief(p), "implies": _implied_of(session, p)} for p in priors
        ],
        "links": resources.self_link("/v3/role_inferences"),
    }


ROUTES = [
    rest.Route("POST", "/v3/roles", create),
    rest.Route("GET", "/v3/roles", list_roles),
    rest.Route("GET", "/v3/roles/{role_id}", show),
    rest.Route("PATCH", "/v3/roles/{role_id}", update),
    rest.Route("DELETE", "/v3/roles/{role_id}", delete),
    rest.Route("GET", "/v3/roles/{prior_role_id}/implies", list_implied),
    rest.Route("PUT", "/v3/roles/{prior_role_id}/implies/{implied_role_id}", create_implied),
    rest.Route("GET", "/v3/roles/{prior_role_id}/implies/{implied_role_id}", show_implied),
    rest.Route("HEAD", "/v3/roles/{prior_role_id}/implies/{implied_role_id}", check_implied),
    rest.Route("DELETE", "/v3/roles/{prior_role_id}/implies/{implied_role_id}", delete_implied),
    rest.Route("GET", "/v3/role_inferences", list_inferences),
]
