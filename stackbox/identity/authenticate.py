"""POST /v3/auth/tokens: run the identity methods (``auth_methods``), resolve the scope,
spend a trust use if the scope is a trust, and issue the token.

Each step runs its own short transaction; issuing a Fernet token needs no write.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.db import session as db_session
from stackbox.identity import (
    assignments,
    auth_methods,
    models,
    resources,
    runtime,
    token_service,
    trusts,
)
from stackbox.identity.token_facts import TokenNotValid

_DOMAIN_REF = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    "additionalProperties": True,
}
_USER_REF = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "password": {"type": "string"},
        "domain": _DOMAIN_REF,
    },
    "additionalProperties": True,
}
AUTH_SCHEMA = {
    "type": "object",
    "properties": {
        "identity": {
            "type": "object",
            "properties": {
                "methods": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "password": {
                    "type": "object",
                    "properties": {"user": _USER_REF},
                    "required": ["user"],
                },
                "token": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                    "required": ["id"],
                },
                "application_credential": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "secret": {"type": "string"},
                        "user": _USER_REF,
                    },
                    "required": ["secret"],
                },
            },
            "required": ["methods"],
        },
        "scope": {
            "anyOf": [
                {"type": "string", "enum": ["unscoped"]},
                {
                    "type": "object",
                    "properties": {
                        "project": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "name": {"type": "string"},
                                "domain": _DOMAIN_REF,
                            },
                        },
                        "domain": _DOMAIN_REF,
                        "system": {"type": "object"},
                        "OS-TRUST:trust": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}},
                            "required": ["id"],
                        },
                    },
                },
            ]
        },
    },
    "required": ["identity"],
}


@dataclasses.dataclass
class Scope:
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    trust_id: str | None = None


def _resolve_scope(session: Session, auth: auth_methods.Authenticated, scope: Any) -> Scope:
    if scope == "unscoped":
        return Scope()
    if not scope:
        if auth.app_cred_project_id:
            return Scope(project_id=auth.app_cred_project_id)
        user = session.get(models.User, auth.user_id)
        default = user.default_project_id if user else None
        if default:
            project = session.get(models.Project, default)
            if (
                project is not None
                and project.enabled
                and not project.is_domain
                and assignments.direct_role_ids(session, auth.user_id, project_id=default)
            ):
                return Scope(project_id=default)
        return Scope()
    if auth.app_cred_id:
        raise auth_methods.unauthorized("Application credentials cannot request a scope.")
    keys = [k for k in ("project", "domain", "system", "OS-TRUST:trust") if k in scope]
    if len(keys) != 1:
        raise rest.BadRequest(
            "Invalid input for field 'scope': specify one of project, domain, system or "
            "OS-TRUST:trust"
        )
    kind = keys[0]
    if kind == "project":
        ref = scope["project"]
        if "id" in ref:
            project = session.get(models.Project, ref["id"])
        elif "name" in ref and "domain" in ref:
            domain = auth_methods.find_domain(session, ref["domain"])
            project = session.scalars(
                select(models.Project).where(
                    models.Project.domain_id == domain.id,
                    models.Project.name == ref["name"],
                    models.Project.is_domain.is_(False),
                )
            ).first()
        else:
            raise rest.BadRequest(
                "Invalid input for field 'scope/project': expecting id, or name and domain"
            )
        if project is None or project.is_domain:
            raise auth_methods.unauthorized()
        return Scope(project_id=project.id)
    if kind == "domain":
        domain = auth_methods.find_domain(session, scope["domain"])
        return Scope(domain_id=domain.id)
    if kind == "system":
        if scope["system"].get("all") is not True:
            raise rest.BadRequest("Invalid input for field 'scope/system': expecting all: true")
        return Scope(system="all")
    return Scope(trust_id=scope["OS-TRUST:trust"]["id"])


@dataclasses.dataclass
class _TrustUse:
    trust_id: str
    token_user: str
    project_id: str | None
    expires_at: datetime.datetime | None
    limited: bool


def _check_trust(
    db: db_session.Database, auth: auth_methods.Authenticated, trust_id: str
) -> _TrustUse:
    """Keystone's order: a trust that is gone, expired or used up is 401, a caller who is
    not its trustee or a disabled trustor 403; no use is spent until a token is issued."""

    def read(session: Session) -> _TrustUse:
        trust = session.get(models.Trust, trust_id)
        if (
            trust is None
            or not trusts.is_live(trust, resources.utcnow())
            or (trust.remaining_uses is not None and trust.remaining_uses <= 0)
        ):
            raise auth_methods.unauthorized(f"Could not find trust: {trust_id}.")
        problem = trusts.chain_problem(session, trust)
        if problem:
            raise rest.Forbidden(problem)
        if trust.trustee_user_id != auth.user_id:
            raise rest.Forbidden("User is not a trustee.")
        trustor = session.get(models.User, trust.trustor_user_id)
        if trustor is None or not trustor.enabled:
            raise rest.Forbidden("Trustor is disabled.")
        return _TrustUse(
            trust_id=trust.id,
            token_user=trust.trustor_user_id if trust.impersonation else trust.trustee_user_id,
            project_id=trust.project_id,
            expires_at=trust.expires_at,
            limited=trust.remaining_uses is not None,
        )

    return db.run(read, write=False)


def _spend_trust_use(db: db_session.Database, trust_id: str) -> None:
    def write(session: Session) -> None:
        # One conditional UPDATE, so concurrent requests never spend the same use twice.
        spent = session.execute(
            update(models.Trust)
            .where(
                models.Trust.id == trust_id,
                models.Trust.deleted_at.is_(None),
                models.Trust.remaining_uses > 0,
            )
            .values(remaining_uses=models.Trust.remaining_uses - 1)
        )
        if not spent.rowcount:  # type: ignore[attr-defined]
            raise rest.Forbidden(f"No remaining uses for trust: {trust_id}.")
        runtime.changed(session)

    db.run(write, write=True)


def authenticate(request: rest.ApiRequest, db: db_session.Database) -> rest.ApiResponse:
    body = request.body
    if not isinstance(body, dict) or "auth" not in body:
        raise rest.BadRequest(
            "Expecting to find auth in request body. The server could not comply with the "
            "request since it is either malformed or otherwise incorrect. The client is "
            "assumed to be in error."
        )
    auth_body = body["auth"]
    validation.check(AUTH_SCHEMA, auth_body)
    identity = auth_body["identity"]
    scope = auth_body.get("scope")
    methods = identity["methods"]
    for method in methods:
        if method not in auth_methods.SUPPORTED:
            raise auth_methods.unauthorized("Attempted to authenticate with an unsupported method.")
        if method not in identity:
            raise rest.BadRequest(
                f"Invalid input for field 'identity/{method}': '{method}' is a required property"
            )

    outcome: auth_methods.Authenticated | None = None
    for method in dict.fromkeys(methods):
        if method == "password":
            user_id = auth_methods.password_method(db, identity["password"])
            step = auth_methods.Authenticated(user_id=user_id, methods=["password"])
        elif method == "token":
            step = auth_methods.token_method(db, identity["token"], scope)
        else:
            step = auth_methods.app_cred_method(db, identity["application_credential"])
        if outcome is None:
            outcome = step
        elif outcome.user_id != step.user_id:
            raise auth_methods.unauthorized("Methods authenticated different users.")
        else:
            outcome.methods = list(dict.fromkeys(outcome.methods + step.methods))
    assert outcome is not None

    resolved = db.run(lambda s: _resolve_scope(s, outcome, scope), write=False)
    token_user = outcome.user_id
    expires_at = outcome.expires_at
    project_id = resolved.project_id
    trust_use = None
    if resolved.trust_id:
        trust_use = _check_trust(db, outcome, resolved.trust_id)
        token_user, project_id = trust_use.token_user, trust_use.project_id
        if trust_use.expires_at and (expires_at is None or trust_use.expires_at < expires_at):
            expires_at = trust_use.expires_at

    def issue(session: Session) -> tuple[str, Any, Any]:
        return token_service.issue(
            session,
            user_id=token_user,
            methods=tuple(outcome.methods),
            project_id=project_id,
            domain_id=resolved.domain_id,
            system=resolved.system,
            trust_id=resolved.trust_id,
            app_cred_id=outcome.app_cred_id,
            expires_at=expires_at,
            parent_audit_id=outcome.parent_audit_id,
        )

    try:
        token, payload, facts = db.run(issue, write=False)
    except TokenNotValid as exc:
        if resolved.trust_id and "delegated roles" in str(exc):
            raise rest.Forbidden("Trustee has no delegated roles.") from None
        raise auth_methods.unauthorized(_scope_failure(exc, resolved, token_user)) from None
    if trust_use is not None and trust_use.limited:
        _spend_trust_use(db, trust_use.trust_id)
    include_catalog = not request.has_arg("nocatalog")
    return rest.ApiResponse(
        201,
        token_service.render(payload, facts, include_catalog=include_catalog),
        headers={"X-Subject-Token": token},
    )


def _scope_failure(exc: TokenNotValid, scope: Scope, user_id: str) -> str:
    reason = str(exc)
    if "no role" in reason:
        if scope.project_id:
            return f"User {user_id} has no access to project {scope.project_id}"
        if scope.domain_id:
            return f"User {user_id} has no access to domain {scope.domain_id}"
        if scope.system:
            return f"User {user_id} has no access to the system"
    if "disabled" in reason:
        return f"The request you have made requires authentication: {reason}."
    return "The request you have made requires authentication."
