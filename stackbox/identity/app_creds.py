"""Application credentials and their access rules, under /v3/users/{user_id}.

A user makes a credential for the project of their current token, carrying a
subset of the token's roles; its secret is shown once and kept as a bcrypt hash,
so creation hashes outside any transaction (``manual_tx``). Access rules limit
which API requests a credential's tokens may make; a rule is the user's own
object, shared by credentials and deletable only when none uses it.

As in Keystone, trust-scoped tokens may not manage either, and a token from a
restricted (the default) application credential may not create or delete
application credentials.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.db import session as db_session
from stackbox.identity import (
    assignments,
    errors,
    models,
    passwords,
    resources,
    roles,
    runtime,
)

_ID_STRING = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[a-zA-Z0-9-]+$"}
METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
_ACCESS_RULE = {
    "type": "object",
    "properties": {
        "id": _ID_STRING,
        "path": {"type": "string", "minLength": 0, "maxLength": 225, "pattern": r"^/"},
        "service": _ID_STRING,
        "method": {"type": "string", "enum": list(METHODS)},
    },
    "additionalProperties": False,
}
_ROLE_REF = {
    "type": "object",
    "properties": {"id": _ID_STRING, "name": validation.NAME},
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}
CREATE_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "secret": {"type": ["string", "null"]},
        "name": validation.NAME,
        "description": {"type": ["string", "null"]},
        "expires_at": {"type": ["string", "null"]},
        "project_id": {"type": "string"},
        "access_rules": {"type": "array", "items": _ACCESS_RULE},
        "unrestricted": {"type": ["boolean", "null"]},
        "system": {"type": ["string", "null"]},
        "roles": {"type": "array", "items": _ROLE_REF},
    },
    "required": ["name"],
    "additionalProperties": False,
}


def _forbidden(reason: str) -> rest.Forbidden:
    return rest.Forbidden(f"You are not authorized to perform the requested action: {reason}")


def _refuse_trust_token(request: rest.ApiRequest) -> None:
    if request.context.trust_id:
        raise rest.Forbidden(
            "Cannot manage application credentials with a token issued via delegation."
        )


def _refuse_restricted(request: rest.ApiRequest, session: Session) -> None:
    cred_id = request.context.application_credential_id
    if cred_id is None:
        return
    cred = session.get(models.ApplicationCredential, cred_id)
    if cred is None or not cred.unrestricted:
        raise _forbidden(
            "Using method 'application_credential' is not allowed for managing additional "
            "application credentials."
        )


def _user_target(session: Session, user_id: str) -> dict[str, Any]:
    user = session.get(models.User, user_id)
    if user is None:
        # Existence is checked later, as in Keystone; the owner rule cannot match.
        return {}
    return {"user": {"id": user.id, "domain_id": user.domain_id}}


# -- rendering --------------------------------------------------------------------------------


def _expiry_text(moment: datetime.datetime | None) -> str | None:
    # Keystone serialises application credential times without a zone suffix.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") if moment is not None else None


def rule_body(rule: models.AccessRule) -> dict[str, Any]:
    return {"id": rule.id, "service": rule.service, "path": rule.path, "method": rule.method}


def _cred_rules(session: Session, cred_id: str) -> list[models.AccessRule]:
    return list(
        session.scalars(
            select(models.AccessRule)
            .join(
                models.ApplicationCredentialAccessRule,
                models.ApplicationCredentialAccessRule.access_rule_id == models.AccessRule.id,
            )
            .where(models.ApplicationCredentialAccessRule.app_cred_id == cred_id)
            .order_by(models.AccessRule.service, models.AccessRule.path, models.AccessRule.method)
        )
    )


def _cred_roles(session: Session, cred_id: str) -> list[dict[str, Any]]:
    ids = select(models.ApplicationCredentialRole.role_id).where(
        models.ApplicationCredentialRole.app_cred_id == cred_id
    )
    roles = session.scalars(select(models.Role).where(models.Role.id.in_(ids)))
    return [
        {
            "id": r.id,
            "name": r.name,
            "domain_id": None if r.domain_id == models.GLOBAL else r.domain_id,
        }
        for r in sorted(roles, key=lambda r: r.name)
    ]


def render(session: Session, cred: models.ApplicationCredential) -> dict[str, Any]:
    return {
        "id": cred.id,
        "name": cred.name,
        "description": cred.description,
        "expires_at": _expiry_text(cred.expires_at),
        "project_id": cred.project_id,
        "roles": _cred_roles(session, cred.id),
        "unrestricted": bool(cred.unrestricted),
        "access_rules": [rule_body(r) for r in _cred_rules(session, cred.id)],
        "links": resources.self_link(f"/v3/users/{cred.user_id}/application_credentials/{cred.id}"),
    }


# -- create -----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Plan:
    """What the read transaction decided; the write transaction only stores it."""

    project_id: str | None
    role_ids: list[str]
    expires_at: datetime.datetime | None
    # Existing rule ids to reuse, and (service, path, method) rules to create.
    reuse_rules: list[str]
    new_rules: list[tuple[str, str, str]]


def new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()


def _invalid(detail: str) -> rest.BadRequest:
    return rest.BadRequest(f"Invalid application credential: {detail}")


def _chosen_roles(
    session: Session, request: rest.ApiRequest, refs: list[dict[str, str]] | None
) -> list[str]:
    """The requested roles plus what they imply, all of which the token must carry."""
    token_roles = list(request.context.role_ids)
    if not refs:
        return token_roles
    asked = [r["id"] if "id" in r else roles.role_by_name(session, r["name"]).id for r in refs]
    wanted = list(dict.fromkeys(asked))
    for role_id in sorted(assignments.implied_closure(session, set(wanted)) - set(wanted)):
        wanted.append(role_id)
    for role_id in wanted:
        if role_id not in token_roles:
            raise _invalid("Cannot create an application credential with unassigned role")
    return wanted


def _expiry(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    moment = resources.parse_time(value, "expires_at")
    if moment is not None and moment <= resources.utcnow():
        raise rest.BadRequest(
            "The 'expires_at' must not be before now. The server could not comply with the "
            "request since it is either malformed or otherwise incorrect. The client is "
            "assumed to be in error."
        )
    return moment


def _plan_rules(
    session: Session, user_id: str, refs: list[dict[str, str]]
) -> tuple[list[str], list[tuple[str, str, str]]]:
    reuse: list[str] = []
    new: list[tuple[str, str, str]] = []
    for ref in refs:
        if "id" in ref:
            rule = session.get(models.AccessRule, ref["id"])
            if rule is None or rule.user_id != user_id:
                raise rest.NotFound(f"Could not find Access Rule: {ref['id']}.")
        else:
            missing = [k for k in ("service", "path", "method") if k not in ref]
            if missing:
                raise rest.BadRequest(
                    f"Invalid input for field 'access_rules': '{missing[0]}' is a required property"
                )
            rule = session.scalars(
                select(models.AccessRule).where(
                    models.AccessRule.user_id == user_id,
                    models.AccessRule.service == ref["service"],
                    models.AccessRule.path == ref["path"],
                    models.AccessRule.method == ref["method"],
                )
            ).first()
        if rule is not None:
            if rule.id not in reuse:
                reuse.append(rule.id)
        else:
            triple = (ref["service"], ref["path"], ref["method"])
            if triple not in new:
                new.append(triple)
    return reuse, new


def _name_taken(session: Session, user_id: str, name: str) -> bool:
    return (
        session.scalars(
            select(models.ApplicationCredential.id).where(
                models.ApplicationCredential.user_id == user_id,
                models.ApplicationCredential.name == name,
            )
        ).first()
        is not None
    )


def _duplicate() -> rest.Conflict:
    return errors.conflict("application_credential", "Duplicate Entry")


def create(request: rest.ApiRequest, db: db_session.Database) -> rest.ApiResponse:
    user_id = request.path_params["user_id"]
    ref = resources.body_of(request, "application_credential", CREATE_SCHEMA)

    def check(session: Session) -> _Plan:
        resources.enforce(request, "identity:create_application_credential")
        _refuse_trust_token(request)
        _refuse_restricted(request, session)
        ctx = request.context
        if ctx.user_id != user_id:
            raise _forbidden("Cannot create an application credential for another user.")
        role_ids = _chosen_roles(session, request, ref.get("roles"))
        expires_at = _expiry(ref.get("expires_at"))
        reuse, new = _plan_rules(session, user_id, ref.get("access_rules") or [])
        held = assignments.implied_closure(
            session, assignments.direct_role_ids(session, user_id, project_id=ctx.project_id)
        )
        for role_id in role_ids:
            if session.get(models.Role, role_id) is None:
                raise errors.not_found("role", role_id)
            if role_id not in held:
                raise _invalid(
                    f"Could not find role assignment with role: {role_id}, user or group: "
                    f"{user_id}, project, domain, or system: {ctx.project_id}."
                )
        if _name_taken(session, user_id, ref["name"]):
            raise _duplicate()
        return _Plan(ctx.project_id, role_ids, expires_at, reuse, new)

    plan = db.run(check, write=False)
    secret = ref.get("secret") or new_secret()
    hashed = passwords.hash_password(secret)

    def write(session: Session) -> dict[str, Any]:
        if _name_taken(session, user_id, ref["name"]):
            raise _duplicate()
        cred = models.ApplicationCredential(
            id=resources.new_id(),
            name=ref["name"],
            secret_hash=hashed,
            description=ref.get("description"),
            user_id=user_id,
            project_id=plan.project_id,
            expires_at=plan.expires_at,
            unrestricted=bool(ref.get("unrestricted")),
        )
        session.add(cred)
        for role_id in plan.role_ids:
            session.add(models.ApplicationCredentialRole(app_cred_id=cred.id, role_id=role_id))
        rule_ids = [r for r in plan.reuse_rules if session.get(models.AccessRule, r) is not None]
        for service, path, method in plan.new_rules:
            rule = models.AccessRule(
                id=resources.new_id(), user_id=user_id, service=service, path=path, method=method
            )
            session.add(rule)
            rule_ids.append(rule.id)
        try:
            session.flush()
        except IntegrityError:
            raise _duplicate() from None
        for rule_id in rule_ids:
            session.add(
                models.ApplicationCredentialAccessRule(app_cred_id=cred.id, access_rule_id=rule_id)
            )
        session.flush()
        runtime.changed(session)
        body = render(session, cred)
        body["secret"] = secret
        return body

    return rest.ApiResponse(201, {"application_credential": db.run(write, write=True)})


# -- read and delete --------------------------------------------------------------------------


def list_creds(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    user_id = request.path_params["user_id"]
    resources.enforce(request, "identity:list_application_credentials")
    _refuse_trust_token(request)
    found = session.scalars(
        select(models.ApplicationCredential)
        .where(models.ApplicationCredential.user_id == user_id)
        .order_by(models.ApplicationCredential.name)
    )
    creds = resources.filter_by_name(request, found, lambda c: c.name)
    rendered = [render(session, c) for c in creds]
    return resources.limited(creds, "application_credentials", request, rendered)


def _enforced_cred(
    request: rest.ApiRequest, session: Session, action: str
) -> models.ApplicationCredential:
    cred_id = request.path_params["application_credential_id"]
    cred = session.get(models.ApplicationCredential, cred_id)
    # The owner rule is judged against the credential's real owner, not the path (Keystone).
    owner = cred.user_id if cred is not None else request.path_params["user_id"]
    resources.enforce(request, action, user_id=owner)
    _refuse_trust_token(request)
    if cred is None:
        raise rest.NotFound(f"Could not find Application Credential: {cred_id}.")
    return cred


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    cred = _enforced_cred(request, session, "identity:get_application_credential")
    return {"application_credential": render(session, cred)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    cred = _enforced_cred(request, session, "identity:delete_application_credential")
    _refuse_restricted(request, session)
    session.delete(cred)
    runtime.changed(session)


def delete_for_user(session: Session, user_id: str, project_id: str | None = None) -> None:
    """Keystone drops a user's credentials when the user is disabled or deleted, and those
    on a project when the user loses a role there (for users/grants code to call)."""
    query = select(models.ApplicationCredential).where(
        models.ApplicationCredential.user_id == user_id
    )
    if project_id is not None:
        query = query.where(models.ApplicationCredential.project_id == project_id)
    for cred in list(session.scalars(query)):
        session.delete(cred)
    runtime.changed(session)


def _rule_body(rule: models.AccessRule) -> dict[str, Any]:
    body = rule_body(rule)
    body["links"] = resources.self_link(f"/v3/users/{rule.user_id}/access_rules/{rule.id}")
    return body


def list_rules(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    user_id = request.path_params["user_id"]
    resources.enforce(request, "identity:list_access_rules", _user_target(session, user_id))
    _refuse_trust_token(request)
    query = select(models.AccessRule).where(models.AccessRule.user_id == user_id)
    for name in ("service", "path", "method"):
        value = request.arg(name)
        if value is not None:
            query = query.where(getattr(models.AccessRule, name) == value)
    rules = list(session.scalars(query.order_by(models.AccessRule.id)))
    return resources.limited(rules, "access_rules", request, [_rule_body(r) for r in rules])


def _enforced_rule(request: rest.ApiRequest, session: Session, action: str) -> models.AccessRule:
    user_id = request.path_params["user_id"]
    resources.enforce(request, action, _user_target(session, user_id))
    _refuse_trust_token(request)
    rule_id = request.path_params["access_rule_id"]
    rule = session.get(models.AccessRule, rule_id)
    if rule is None or rule.user_id != user_id:
        raise rest.NotFound(f"Could not find Access Rule: {rule_id}.")
    return rule


def show_rule(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    rule = _enforced_rule(request, session, "identity:get_access_rule")
    return {"access_rule": _rule_body(rule)}


def delete_rule(request: rest.ApiRequest, session: Session) -> None:
    rule = _enforced_rule(request, session, "identity:delete_access_rule")
    in_use = session.scalars(
        select(models.ApplicationCredentialAccessRule.app_cred_id).where(
            models.ApplicationCredentialAccessRule.access_rule_id == rule.id
        )
    ).first()
    if in_use is not None:
        raise rest.Forbidden("May not delete access rule in use")
    session.delete(rule)
    runtime.changed(session)


_CREDS = "/v3/users/{user_id}/application_credentials"
_RULES = "/v3/users/{user_id}/access_rules"
ROUTES = [
    rest.Route("POST", _CREDS, create, manual_tx=True),
    rest.Route("GET", _CREDS, list_creds),
    rest.Route("GET", _CREDS + "/{application_credential_id}", show),
    rest.Route("DELETE", _CREDS + "/{application_credential_id}", delete),
    rest.Route("GET", _RULES, list_rules),
    rest.Route("GET", _RULES + "/{access_rule_id}", show_rule),
    rest.Route("DELETE", _RULES + "/{access_rule_id}", delete_rule),
]
