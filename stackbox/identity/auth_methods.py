"""The identity methods of POST /v3/auth/tokens: password, token and application_credential.

Each checks its secret with no transaction open (bcrypt takes a quarter second
and must not hold SQLite's write lock) and writes back only what changed
(lockout counters), then hands the flow in ``authenticate`` who the caller is.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.db import session as db_session
from stackbox.identity import errors, models, passwords, resources, runtime, token_service, users
from stackbox.identity.token_facts import TokenNotValid

SUPPORTED = ("password", "token", "application_credential")


def unauthorized(message: str | None = None) -> rest.Unauthorized:
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


def find_domain(session: Session, ref: dict[str, Any]) -> models.Project:
    if "id" in ref:
        domain = session.get(models.Project, ref["id"])
    elif "name" in ref:
        domain = resources.domain_by_name(session, ref["name"])
    else:
        raise rest.BadRequest("Invalid input for field 'domain': expecting id or name")
    if domain is None or not domain.is_domain:
        raise unauthorized()
    return domain


def find_user(session: Session, ref: dict[str, Any]) -> models.User:
    if "id" in ref:
        user = session.get(models.User, ref["id"])
    elif "name" in ref:
        if "domain" not in ref:
            raise rest.BadRequest(
                "Expecting to find domain in user. The server could not comply with the "
                "request since it is either malformed or otherwise incorrect. The client is "
                "assumed to be in error."
            )
        domain = find_domain(session, ref["domain"])
        user = session.scalars(
            select(models.User).where(
                models.User.domain_id == domain.id, models.User.name == ref["name"]
            )
        ).first()
    else:
        raise rest.BadRequest("Invalid input for field 'user': expecting id or name")
    if user is None:
        raise unauthorized()
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


def password_method(db: db_session.Database, payload: dict[str, Any]) -> str:
    ref = payload["user"]
    if "password" not in ref:
        raise rest.BadRequest(
            "Invalid input for field 'identity/password/user/password': "
            "'password' is a required property"
        )

    def read(session: Session) -> _PasswordFacts:
        user = find_user(session, ref)
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
        raise unauthorized(f"The account is locked for user: {facts.user_id}.")

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
        raise unauthorized()

    inactive_days = settings.disable_user_account_days_inactive
    inactive = (
        inactive_days > 0
        and not facts.options.get("ignore_user_inactivity")
        and facts.last_active_at is not None
        and facts.last_active_at < now - datetime.timedelta(days=inactive_days)
    )
    if not facts.enabled or inactive:
        raise unauthorized(f"The account is disabled for user: {facts.user_id}.")
    if not facts.domain_enabled:
        raise unauthorized()
    if (
        facts.expires_at is not None
        and facts.expires_at <= now
        and not facts.options.get("ignore_password_expiry")
    ):
        raise unauthorized(
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


def token_method(db: db_session.Database, payload: dict[str, Any], scope: Any) -> Authenticated:
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


def app_cred_method(db: db_session.Database, payload: dict[str, Any]) -> Authenticated:
    def read(session: Session) -> tuple[models.ApplicationCredential, models.User]:
        if "id" in payload:
            cred = session.get(models.ApplicationCredential, payload["id"])
        elif "name" in payload and "user" in payload:
            user = find_user(session, payload["user"])
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
            raise unauthorized()
        owner = session.get(models.User, cred.user_id)
        if owner is None:
            raise unauthorized()
        return cred, owner

    cred, owner = db.run(read, write=False)
    if not passwords.check_password(payload["secret"], cred.secret_hash):
        raise unauthorized()
    if cred.expires_at is not None and cred.expires_at <= resources.utcnow():
        raise unauthorized(f"Application credential {cred.id} has expired.")
    if not owner.enabled:
        raise unauthorized(f"The account is disabled for user: {owner.id}.")
    return Authenticated(
        user_id=cred.user_id,
        methods=["application_credential"],
        expires_at=cred.expires_at,
        app_cred_id=cred.id,
        app_cred_project_id=cred.project_id,
    )
