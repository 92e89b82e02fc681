"""OS-TRUST: a trustor delegates roles on a project to a trustee, as in Keystone.

A trust may be redelegated (a trust-scoped token creates a narrower trust, whose
``redelegated_trust_id`` points at its parent), limited in uses, and expire.
Deletion is soft (``deleted_at``) and takes the trust's redelegated children with
it. A trust that is deleted, expired or used up is "not found"; a trust whose
chain has become invalid is refused. Application-credential tokens may not touch
trusts at all (Keystone's rule: a credential bound to one project must not read
or extend the delegation chain).
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.identity import (
    assignments,
    errors,
    models,
    resources,
    revocations,
    roles,
    runtime,
)

# Keystone's [trust] max_redelegation_count default.
MAX_REDELEGATION_COUNT = 3

_ID_STRING = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[a-zA-Z0-9-]+$"}
_ROLE_REF = {
    "type": "object",
    "properties": {"id": _ID_STRING, "name": validation.NAME},
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "trustor_user_id": {"type": "string"},
        "trustee_user_id": {"type": "string"},
        "impersonation": {"type": "boolean"},
        "project_id": {"type": ["string", "null"]},
        "remaining_uses": {"type": ["integer", "null"], "minimum": 1},
        "expires_at": {"type": ["string", "null"]},
        "allow_redelegation": {"type": ["boolean", "null"]},
        "redelegation_count": {"type": ["integer", "null"], "minimum": 0},
        "redelegated_trust_id": {"type": ["string", "null"]},
        "roles": {"type": "array", "items": _ROLE_REF},
    },
    "required": ["trustor_user_id", "trustee_user_id", "impersonation"],
    # Keystone keeps unknown attributes of a trust as extra properties.
    "additionalProperties": True,
}
# Request members that are columns or derived, never extra properties.
_NOT_EXTRA = set(CREATE_SCHEMA["properties"]) | {"id", "links", "deleted_at", "roles_links"}


def _forbidden(reason: str) -> rest.Forbidden:
    return rest.Forbidden(f"You are not authorized to perform the requested action: {reason}")


def refuse_app_cred_token(request: rest.ApiRequest) -> None:
    ctx = request.context
    if ctx.application_credential_id or "application_credential" in ctx.auth_methods:
        raise _forbidden(
            "Using method 'application_credential' is not allowed for managing trusts."
        )


# -- lookups shared with token validation ---------------------------------------------------


def role_ids(session: Session, trust_id: str) -> list[str]:
    return list(
        session.scalars(
            select(models.TrustRole.role_id)
            .where(models.TrustRole.trust_id == trust_id)
            .order_by(models.TrustRole.role_id)
        )
    )


def pedigree(session: Session, trust: models.Trust) -> list[models.Trust | None]:
    """The trust, its parent, grandparent... (None where a parent row is missing)."""
    chain: list[models.Trust | None] = [trust]
    seen = {trust.id}
    parent_id = trust.redelegated_trust_id
    while parent_id and parent_id not in seen:
        seen.add(parent_id)
        parent = session.get(models.Trust, parent_id)
        chain.append(parent)
        if parent is None:
            break
        parent_id = parent.redelegated_trust_id
    return chain


def is_live(trust: models.Trust | None, now: datetime.datetime) -> bool:
    """Not deleted and not expired (uses are counted only when issuing tokens)."""
    return (
        trust is not None
        and trust.deleted_at is None
        and (trust.expires_at is None or trust.expires_at > now)
    )


def _redelegation_problem(
    parent: models.Trust,
    parent_roles: set[str],
    child_expires: datetime.datetime | None,
    child_roles: set[str],
    child_impersonation: bool,
    child_remaining_uses: int | None,
) -> str | None:
    depth = parent.redelegation_count or 0
    if not 0 < depth <= MAX_REDELEGATION_COUNT:
        return (
            f"Remaining redelegation depth of {depth} out of allowed range of "
            f"[0..{MAX_REDELEGATION_COUNT}]"
        )
    if child_remaining_uses is not None:
        return (
            f'Field "remaining_uses" is set to {child_remaining_uses} while it must not be '
            "set in order to redelegate a trust"
        )
    if (
        child_expires is not None
        and parent.expires_at is not None
        and parent.expires_at < child_expires
    ):
        return "Requested expiration time is more than redelegated trust can provide"
    if not child_roles <= parent_roles:
        return "Some of requested roles are not in redelegated trust"
    if child_impersonation and not parent.impersonation:
        return (
            "Impersonation is not allowed because redelegated trust does not specify "
            f"impersonation. Redelegated trust id: {parent.id}"
        )
    return None


def chain_problem(session: Session, trust: models.Trust) -> str | None:
    """Why a redelegated trust's chain no longer holds, or None if it does."""
    if not trust.redelegated_trust_id:
        return None
    now = resources.utcnow()
    chain = pedigree(session, trust)
    for parent, child in zip(chain[1:], chain, strict=False):
        if child is None or not is_live(parent, now):
            return "One of the trusts in the redelegation chain is gone"
        assert parent is not None
        problem = _redelegation_problem(
            parent,
            set(role_ids(session, parent.id)),
            child.expires_at,
            set(role_ids(session, child.id)),
            child.impersonation,
            child.remaining_uses,
        )
        if problem:
            return problem
        trustee = session.get(models.User, parent.trustee_user_id)
        if trustee is None or not trustee.enabled:
            return "One of the trust agents is disabled or deleted"
    return None


def get_active(session: Session, trust_id: str) -> models.Trust:
    """A trust that can still be used: 404 if deleted, expired or used up (as Keystone)."""
    trust = session.get(models.Trust, trust_id)
    if (
        trust is None
        or not is_live(trust, resources.utcnow())
        or (trust.remaining_uses is not None and trust.remaining_uses <= 0)
    ):
        raise errors.not_found("trust", trust_id)
    problem = chain_problem(session, trust)
    if problem:
        raise rest.Forbidden(problem)
    return trust


# -- rendering --------------------------------------------------------------------------------


def role_body(role: models.Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "domain_id": None if role.domain_id == models.GLOBAL else role.domain_id,
        "description": role.description,
        "options": dict(role.options),
        "links": resources.self_link(f"/v3/roles/{role.id}"),
    }


def _roles(session: Session, trust_id: str) -> list[models.Role]:
    ids = role_ids(session, trust_id)
    if not ids:
        return []
    found = session.scalars(select(models.Role).where(models.Role.id.in_(ids)))
    return sorted(found, key=lambda r: r.name)


def render(trust: models.Trust, roles: list[models.Role] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = dict(trust.extra)
    body.update(
        {
            "id": trust.id,
            "trustor_user_id": trust.trustor_user_id,
            "trustee_user_id": trust.trustee_user_id,
            "project_id": trust.project_id,
            "impersonation": trust.impersonation,
            "expires_at": resources.isotime(trust.expires_at),
            "remaining_uses": trust.remaining_uses,
            "redelegated_trust_id": trust.redelegated_trust_id,
            "redelegation_count": trust.redelegation_count,
            "deleted_at": resources.isotime(trust.deleted_at),
            "links": resources.self_link(f"/v3/OS-TRUST/trusts/{trust.id}"),
        }
    )
    if roles is not None:
        body["roles"] = [role_body(r) for r in roles]
        body["roles_links"] = {
            "self": resources.url(f"/v3/OS-TRUST/trusts/{trust.id}/roles"),
            "previous": None,
            "next": None,
        }
    return body


def target(trust: models.Trust) -> dict[str, Any]:
    return {
        "trust": {
            "id": trust.id,
            "trustor_user_id": trust.trustor_user_id,
            "trustee_user_id": trust.trustee_user_id,
            "project_id": trust.project_id,
        }
    }


# -- create -----------------------------------------------------------------------------------


def _names_a_role(session: Session, name: str) -> bool:
    return (
        session.scalars(select(models.Role.id).where(models.Role.name == name)).first() is not None
    )


def _requested_role_ids(session: Session, refs: list[dict[str, str]]) -> list[str]:
    ids: list[str] = []
    for ref in refs:
        if "name" in ref:
            role_id = roles.role_by_name(session, ref["name"]).id
        elif session.get(models.Role, ref["id"]) is None and _names_a_role(session, ref["id"]):
            # The openstack CLI sends a role name as its id when the caller may not look
            # roles up (any non-admin); Keystone then answers 404, which helps no one.
            role_id = roles.role_by_name(session, ref["id"]).id
        else:
            role_id = ref["id"]
        if role_id not in ids:
            ids.append(role_id)
    return ids


def _check_trustor_roles(
    session: Session, trustor_id: str, project_id: str | None, wanted: list[str]
) -> None:
    """The trustor must hold every delegated role on the project (domain roles included)."""
    held: set[str] = set()
    if project_id:
        resources.get_project(session, project_id)
        held = assignments.implied_closure(
            session, assignments.direct_role_ids(session, trustor_id, project_id=project_id)
        )
    for role_id in wanted:
        if role_id not in held:
            raise errors.not_found("role", role_id)


def _expiry(value: Any) -> datetime.datetime | None:
    moment = resources.parse_time(value, "expires_at")
    if moment is not None and moment <= resources.utcnow():
        raise rest.BadRequest(
            "The 'expires_at' must not be before now. The server could not comply with the "
            "request since it is either malformed or otherwise incorrect. The client is "
            "assumed to be in error."
        )
    return moment


def _redelegation_count(ref: dict[str, Any], parent: models.Trust | None) -> int:
    """Keystone's rules for the depth a new trust may still be redelegated."""
    requested = ref.get("redelegation_count")
    redelegatable = bool(ref.get("allow_redelegation")) and requested != 0
    if redelegatable:
        if requested and requested > MAX_REDELEGATION_COUNT:
            raise _forbidden(
                f"Requested redelegation depth of {requested} is greater than allowed "
                f"{MAX_REDELEGATION_COUNT}"
            )
        if ref.get("remaining_uses") is not None:
            raise rest.BadRequest(
                "Invalid input for field 'remaining_uses': remaining_uses must not be set if "
                "redelegation is allowed"
            )
    if parent is None:
        if not redelegatable:
            return 0
        return MAX_REDELEGATION_COUNT if requested is None else int(requested)
    remaining = (parent.redelegation_count or 0) - 1
    if not redelegatable:
        return 0
    if requested and requested != remaining:
        raise _forbidden(
            'Modifying "redelegation_count" upon redelegation is forbidden. Omitting this '
            "parameter is advised."
        )
    return remaining


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = resources.body_of(request, "trust", CREATE_SCHEMA)
    resources.enforce(request, "identity:create_trust", {"trust": ref})
    refuse_app_cred_token(request)
    ctx = request.context
    project_id = ref.get("project_id") or None
    if project_id and not ref.get("roles"):
        raise _forbidden("At least one role should be specified.")
    if ctx.user_id != ref["trustor_user_id"]:
        raise _forbidden("The authenticated user should match the trustor.")
    if session.get(models.User, ref["trustee_user_id"]) is None:
        raise errors.not_found("user", ref["trustee_user_id"])
    wanted = _requested_role_ids(session, ref.get("roles") or [])
    _check_trustor_roles(session, ref["trustor_user_id"], project_id, wanted)
    expires_at = _expiry(ref.get("expires_at"))

    parent = None
    if ctx.trust_id:
        parent = get_active(session, ctx.trust_id)
        if parent.project_id != project_id:
            raise _forbidden("A redelegated trust must be on the project of its parent.")
    count = _redelegation_count(ref, parent)
    if parent is not None:
        for ancestor in pedigree(session, parent):
            assert ancestor is not None  # get_active checked the chain
            problem = _redelegation_problem(
                ancestor,
                set(role_ids(session, ancestor.id)),
                expires_at,
                set(wanted),
                ref["impersonation"],
                ref.get("remaining_uses"),
            )
            if problem:
                raise rest.Forbidden(problem)
        if expires_at is None:
            expires_at = parent.expires_at
    _check_duplicate(session, ref, project_id, expires_at)

    trust = models.Trust(
        id=resources.new_id(),
        trustor_user_id=ref["trustor_user_id"],
        trustee_user_id=ref["trustee_user_id"],
        project_id=project_id,
        impersonation=ref["impersonation"],
        expires_at=expires_at,
        remaining_uses=ref.get("remaining_uses"),
        allow_redelegation=count > 0,
        redelegation_count=count,
        redelegated_trust_id=parent.id if parent is not None else None,
        extra={k: v for k, v in ref.items() if k not in _NOT_EXTRA},
    )
    session.add(trust)
    for role_id in wanted:
        session.add(models.TrustRole(trust_id=trust.id, role_id=role_id))
    session.flush()
    runtime.changed(session)
    return rest.ApiResponse(201, {"trust": render(trust, _roles(session, trust.id))})


def _check_duplicate(
    session: Session,
    ref: dict[str, Any],
    project_id: str | None,
    expires_at: datetime.datetime | None,
) -> None:
    """Keystone's unique (trustor, trustee, project, impersonation, expires_at); NULLs differ."""
    if expires_at is None:
        return
    T = models.Trust
    clash = session.scalars(
        select(T.id).where(
            T.trustor_user_id == ref["trustor_user_id"],
            T.trustee_user_id == ref["trustee_user_id"],
            T.project_id == project_id,
            T.impersonation.is_(ref["impersonation"]),
            T.expires_at == expires_at,
            T.deleted_at.is_(None),
        )
    ).first()
    if clash is not None:
        raise errors.conflict("trust", "Duplicate entry")


# -- read and delete --------------------------------------------------------------------------


def _user_filter(request: rest.ApiRequest, name: str) -> str | None:
    value = request.arg(name)
    # openstacksdk (4.x) sends filters it was not given as the string "None".
    return None if value in (None, "", "None") else value


def list_trusts(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    trustor = _user_filter(request, "trustor_user_id")
    trustee = _user_filter(request, "trustee_user_id")
    if trustor:
        resources.enforce(
            request, "identity:list_trusts_for_trustor", {"trust": {"trustor_user_id": trustor}}
        )
    elif trustee:
        resources.enforce(
            request, "identity:list_trusts_for_trustee", {"trust": {"trustee_user_id": trustee}}
        )
    else:
        resources.enforce(request, "identity:list_trusts")
    refuse_app_cred_token(request)
    query = select(models.Trust).where(models.Trust.deleted_at.is_(None))
    if trustor:
        query = query.where(models.Trust.trustor_user_id == trustor)
    elif trustee:
        query = query.where(models.Trust.trustee_user_id == trustee)
    found = list(session.scalars(query.order_by(models.Trust.id)))
    return resources.limited(found, "trusts", request, [render(t) for t in found])


def _enforced(request: rest.ApiRequest, session: Session, action: str) -> models.Trust:
    # A missing trust is 404 before any policy check, as in Keystone.
    trust = get_active(session, request.path_params["trust_id"])
    resources.enforce(request, action, target(trust))
    refuse_app_cred_token(request)
    return trust


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    trust = _enforced(request, session, "identity:get_trust")
    return {"trust": render(trust, _roles(session, trust.id))}


def list_roles(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    trust = _enforced(request, session, "identity:list_roles_for_trust")
    return {
        "roles": [role_body(r) for r in _roles(session, trust.id)],
        "links": resources.collection_links(request),
    }


def show_role(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    trust = _enforced(request, session, "identity:get_role_for_trust")
    role_id = request.path_params["role_id"]
    for role in _roles(session, trust.id):
        if role.id == role_id:
            return {"role": role_body(role)}
    raise errors.not_found("role", role_id)


def _soft_delete(session: Session, trust: models.Trust, now: datetime.datetime) -> None:
    trust.deleted_at = now
    revocations.revoke(session, trust_id=trust.id)
    children = session.scalars(
        select(models.Trust).where(
            models.Trust.redelegated_trust_id == trust.id, models.Trust.deleted_at.is_(None)
        )
    )
    for child in list(children):
        _soft_delete(session, child, now)


def delete(request: rest.ApiRequest, session: Session) -> None:
    trust = _enforced(request, session, "identity:delete_trust")
    _soft_delete(session, trust, resources.utcnow())
    runtime.changed(session)


def delete_for_project(session: Session, project_id: str) -> None:
    """Keystone deletes a project's trusts with the project (for projects.delete to call)."""
    now = resources.utcnow()
    for trust in list(
        session.scalars(
            select(models.Trust).where(
                models.Trust.project_id == project_id, models.Trust.deleted_at.is_(None)
            )
        )
    ):
        _soft_delete(session, trust, now)
    runtime.changed(session)


ROUTES = [
    rest.Route("POST", "/v3/OS-TRUST/trusts", create),
    rest.Route("GET", "/v3/OS-TRUST/trusts", list_trusts),
    rest.Route("GET", "/v3/OS-TRUST/trusts/{trust_id}", show),
    rest.Route("DELETE", "/v3/OS-TRUST/trusts/{trust_id}", delete),
    rest.Route("GET", "/v3/OS-TRUST/trusts/{trust_id}/roles", list_roles),
    rest.Route("GET", "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}", show_role),
]
