"""POST /v3/auth/tokens: the password, token and application_credential methods, and scope.

The flow reads what it needs in one short read transaction, checks secrets with
no transaction open (bcrypt takes a quarter second and must not hold SQLite's
write lock), writes back lockout counters or trust uses only when they change,
and issues a Fernet token, which itself needs no write at all.
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
    errors,
    models,
    passwords,
    resources,
    runtime,
    token_service,
    trusts,
    users,
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

SUPPORTED = ("password", "token", "application_credential")


def _unauthorized(message: str | None = None) -> rest.Unauthorized:
    return errors.unauthorized(message or "The request you have made requires authentication.")


@dataclasses.dataclass
class Authenticated:
    """The outcome of the identity methods, before scoping."""

    user_id: str
    methods: list[str]
    expires_at: datetime.datetime | None = None
    parent_audit_id: str | None = None
    app_cred_id: str | None = None
    app_cred_project_id: str | None = None
    # The token method carries the scope rules of the token it consumed.
    from_token: token_service.tokens.TokenPayload | None = None


def _find_domain(session: Session, ref: dict[str, Any]) -> models.Project:
    if "id" in ref:
        domain = session.get(models.Project, ref["id"])
    elif "name" in ref:
        domain = resources.domain_by_name(session, ref["name"])
    else:
        raise rest.BadRequest("Invalid input for field 'domain': expecting id or name")
    if domain is None or not domain.is_domain:
        raise _unauthorized()
    return domain


def _find_user(session: Session, ref: dict[str, Any]) -> models.User:
    if "id" in ref:
        user = session.get(models.User, ref["id"])
    elif "name" in ref:
        if "domain" not in ref:
            raise rest.BadRequest(
                "Expecting to find domain in user. The server could not comply with the "
                "request since it is either malformed or otherwise incorrect. The client is "
                "assumed to be in error."
            )
        domain = _find_domain(session, ref["domain"])
        user = session.scalars(
            select(models.User).where(
                models.User.domain_id == domain.id, models.User.name == ref["name"]
            )
        ).first()
    else:
        raise rest.BadRequest("Invalid input for field 'user': expecting id or name")
    if user is None:
        raise _unauthorized()
    return user


@dataclasses.dataclass
class _PasswordFacts:
    user_id: str
    enabled: bool
    domain_enabled: bool
    options: dict[str, Any]
    hash: str | None
    expires_at: datetime.datetime | None
    failed_count: int
    failed_at: datetime.datetime | None
    last_active_at: datetime.datetime | None


def _password_method(db: db_session.Database, payload: dict[str, Any]) -> str:
    ref = payload["user"]
    if "password" not in ref:
        raise rest.BadRequest(
            "Invalid input for field 'identity/password/user/password': "
            "'password' is a required property"
        )

    def read(session: Session) -> _PasswordFacts:
        user = _find_user(session, ref)
        domain = session.get(models.Project, user.domain_id)
        current = users.current_password(session, user.id)
        return _PasswordFacts(
            user_id=user.id,
            enabled=user.enabled,
            domain_enabled=bool(domain and domain.enabled),
            options=dict(user.options),
            hash=current.hash if current else None,
            expires_at=current.expires_at if current else None,
            failed_count=user.failed_auth_count,
            failed_at=user.failed_auth_at,
            last_active_at=user.last_active_at,
        )

    facts = db.run(read, write=False)
    settings = runtime.get().settings
    now = resources.utcnow()
    lockout = settings.lockout_failure_attempts > 0 and not facts.options.get(
        "ignore_lockout_failure_attempts"
    )
    locked_until = None
    if lockout and facts.failed_count >= settings.lockout_failure_attempts and facts.failed_at:
        locked_until = facts.failed_at + datetime.timedelta(seconds=settings.lockout_duration)
    if locked_until is not None and now < locked_until:
        raise _unauthorized(f"The account is locked for user: {facts.user_id}.")

    if not passwords.check_password(ref["password"], facts.hash):
        if lockout:

            def count(session: Session) -> None:
                user = session.get(models.User, facts.user_id)
                if user is None:
                    return
                expired_lock = (
                    user.failed_auth_at is not None
                    and user.failed_auth_count >= settings.lockout_failure_attempts
                    and now
                    >= user.failed_auth_at + datetime.timedelta(seconds=settings.lockout_duration)
                )
                user.failed_auth_count = 1 if expired_lock else user.failed_auth_count + 1
                user.failed_auth_at = now

            db.run(count, write=True)
        raise _unauthorized()

    inactive_days = settings.disable_user_account_days_inactive
    inactive = (
        inactive_days > 0
        and not facts.options.get("ignore_user_inactivity")
        and facts.last_active_at is not None
        and facts.last_active_at < now - datetime.timedelta(days=inactive_days)
    )
    if not facts.enabled or inactive:
        raise _unauthorized(f"The account is disabled for user: {facts.user_id}.")
    if not facts.domain_enabled:
        raise _unauthorized()
    if (
        facts.expires_at is not None
        and facts.expires_at <= now
        and not facts.options.get("ignore_password_expiry")
    ):
        raise _unauthorized(
            f"The password is expired and needs to be changed for user: {facts.user_id}."
        )
    track_activity = inactive_days > 0 and (
        facts.last_active_at is None or facts.last_active_at.date() < now.date()
    )
    if facts.failed_count or track_activity:

        def reset(session: Session) -> None:
            user = session.get(models.User, facts.user_id)
            if user is not None:
                user.failed_auth_count = 0
                user.failed_auth_at = None
                if track_activity:
                    user.last_active_at = now

        db.run(reset, write=True)
    return facts.user_id


def _token_method(db: db_session.Database, payload: dict[str, Any], scope: Any) -> Authenticated:
    try:
        parent, facts = db.run(lambda s: token_service.validate(s, payload["id"]), write=False)
    except TokenNotValid:
        # Keystone's token method looks the token up first: gone means 404, not 401.
        raise errors.not_found("token", payload["id"]) from None
    if parent.trust_id:
        raise rest.Forbidden(
            "You are not authorized to perform the requested action: Using trust-scoped "
            "token to create another token. Create a new trust-scoped token instead."
        )
    wants_scope = isinstance(scope, dict) and ("project" in scope or "domain" in scope)
    if parent.system and wants_scope:
        raise rest.Forbidden(
            "You are not authorized to perform the requested action: Using a system-scoped "
            "token to create a project-scoped or domain-scoped token is not allowed."
        )
    if parent.app_cred_id and scope:
        raise rest.Forbidden(
            "You are not authorized to perform the requested action: Using an application "
            "credential token to create a scoped token is not allowed."
        )
    del facts
    return Authenticated(
        user_id=parent.user_id,
        methods=["token", *parent.methods],
        expires_at=parent.expires_at,
        parent_audit_id=parent.audit_ids[-1] if len(parent.audit_ids) > 1 else parent.audit_ids[0],
        app_cred_id=parent.app_cred_id,
        app_cred_project_id=parent.project_id if parent.app_cred_id else None,
        from_token=parent,
    )


def _app_cred_method(db: db_session.Database, payload: dict[str, Any]) -> Authenticated:
    def read(session: Session) -> tuple[models.ApplicationCredential, models.User]:
        if "id" in payload:
            cred = session.get(models.ApplicationCredential, payload["id"])
        elif "name" in payload and "user" in payload:
            user = _find_user(session, payload["user"])
            cred = session.scalars(
                select(models.ApplicationCredential).where(
                    models.ApplicationCredential.user_id == user.id,
                    models.ApplicationCredential.name == payload["name"],
                )
            ).first()
        else:
            raise rest.BadRequest(
                "Invalid input for field 'identity/application_credential': expecting id, "
                "or name and user"
            )
        if cred is None:
            raise _unauthorized()
        owner = session.get(models.User, cred.user_id)
        if owner is None:
            raise _unauthorized()
        return cred, owner

    cred, owner = db.run(read, write=False)
    if not passwords.check_password(payload["secret"], cred.secret_hash):
        raise _unauthorized()
    if cred.expires_at is not None and cred.expires_at <= resources.utcnow():
        raise _unauthorized(f"Application credential {cred.id} has expired.")
    if not owner.enabled:
        raise _unauthorized(f"The account is disabled for user: {owner.id}.")
    return Authenticated(
        user_id=cred.user_id,
        methods=["application_credential"],
        expires_at=cred.expires_at,
        app_cred_id=cred.id,
        app_cred_project_id=cred.project_id,
    )


@dataclasses.dataclass
class Scope:
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    trust_id: str | None = None


def _resolve_scope(session: Session, auth: Authenticated, scope: Any) -> Scope:
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
        raise _unauthorized("Application credentials cannot request a scope.")
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
            domain = _find_domain(session, ref["domain"])
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
            raise _unauthorized()
        return Scope(project_id=project.id)
    if kind == "domain":
        domain = _find_domain(session, scope["domain"])
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


def _check_trust(db: db_session.Database, auth: Authenticated, trust_id: str) -> _TrustUse:
    """Keystone's order: a trust that is gone, expired or used up is 401, a caller who is
    not its trustee or a disabled trustor 403; no use is spent until a token is issued."""

    def read(session: Session) -> _TrustUse:
        trust = session.get(models.Trust, trust_id)
        if (
            trust is None
            or not trusts.is_live(trust, resources.utcnow())
            or (trust.remaining_uses is not None and trust.remaining_uses <= 0)
        ):
            raise _unauthorized(f"Could not find trust: {trust_id}.")
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
        if method not in SUPPORTED:
            raise _unauthorized("Attempted to authenticate with an unsupported method.")
        if method not in identity:
            raise rest.BadRequest(
                f"Invalid input for field 'identity/{method}': '{method}' is a required property"
            )

    outcome: Authenticated | None = None
    for method in dict.fromkeys(methods):
        if method == "password":
            user_id = _password_method(db, identity["password"])
            step = Authenticated(user_id=user_id, methods=["password"])
        elif method == "token":
            step = _token_method(db, identity["token"], scope)
        else:
            step = _app_cred_method(db, identity["application_credential"])
        if outcome is None:
            outcome = step
        elif outcome.user_id != step.user_id:
            raise _unauthorized("Methods authenticated different users.")
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
        raise _unauthorized(_scope_failure(exc, resolved, token_user)) from None
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
