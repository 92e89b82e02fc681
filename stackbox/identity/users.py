"""Users: CRUD, password changes, and the user's projects and groups.

Password hashing takes a quarter second, so these handlers run their own
transactions (``manual_tx``): read, hash with no transaction open, then write.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.db import session as db_session
from stackbox.identity import (
    app_creds,
    assignments,
    errors,
    groups,
    models,
    passwords,
    projects,
    resources,
    revocations,
    runtime,
)

OPTION_NAMES = {
    "ignore_change_password_upon_first_use": "boolean",
    "ignore_password_expiry": "boolean",
    "ignore_lockout_failure_attempts": "boolean",
    "lock_password": "boolean",
    "ignore_user_inactivity": "boolean",
    "multi_factor_auth_rules": "rules",
    "multi_factor_auth_enabled": "boolean",
}

_OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: (
            {"type": ["boolean", "null"]}
            if kind == "boolean"
            else {
                "type": ["array", "null"],
                "items": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            }
        )
        for name, kind in OPTION_NAMES.items()
    },
    "additionalProperties": False,
}

_USER_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"[\S]+"},
    "domain_id": {"type": "string", "minLength": 1, "maxLength": 64},
    "default_project_id": {"type": ["string", "null"], "maxLength": 64},
    "description": {"type": ["string", "null"]},
    "enabled": {"type": "boolean"},
    "password": {"type": ["string", "null"]},
    "email": {"type": ["string", "null"]},
    "options": _OPTIONS_SCHEMA,
    "federated": {"type": "array"},
}

CREATE_SCHEMA = {
    "type": "object",
    "properties": _USER_PROPERTIES,
    "required": ["name"],
    # Keystone keeps unknown attributes of a user as extra properties.
    "additionalProperties": True,
}
UPDATE_SCHEMA = validation.updating(_USER_PROPERTIES)
PASSWORD_CHANGE_SCHEMA = {
    "type": "object",
    "properties": {
        "original_password": {"type": "string"},
        "password": {"type": "string"},
    },
    "required": ["original_password", "password"],
    "additionalProperties": False,
}

_COLUMNS = ("name", "domain_id", "enabled", "default_project_id", "description", "options")


def current_password(session: Session, user_id: str) -> models.Password | None:
    return session.scalars(
        select(models.Password)
        .where(models.Password.user_id == user_id)
        .order_by(models.Password.id.desc())
        .limit(1)
    ).first()


def render(user: models.User, password: models.Password | None) -> dict[str, Any]:
    body: dict[str, Any] = dict(user.extra)
    body.update(
        {
            "id": user.id,
            "name": user.name,
            "domain_id": user.domain_id,
            "enabled": user.enabled,
            "password_expires_at": resources.isotime(password.expires_at if password else None),
            "options": dict(user.options),
            "links": resources.self_link(f"/v3/users/{user.id}"),
        }
    )
    if user.default_project_id:
        body["default_project_id"] = user.default_project_id
    if user.description is not None:
        body["description"] = user.description
    return body


def render_many(session: Session, users: list[models.User]) -> list[dict[str, Any]]:
    latest: dict[str, models.Password] = {}
    ids = [u.id for u in users]
    for start in range(0, len(ids), 500):
        for pw in session.scalars(
            select(models.Password)
            .where(models.Password.user_id.in_(ids[start : start + 500]))
            .order_by(models.Password.id)
        ):
            latest[pw.user_id] = pw
    return [render(u, latest.get(u.id)) for u in users]


def get_user(session: Session, user_id: str) -> models.User:
    return resources.get_or_404(session, models.User, user_id, "user")


def target(user: models.User) -> dict[str, Any]:
    return {"user": {"id": user.id, "domain_id": user.domain_id, "name": user.name}}


def _split(ref: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    columns = {k: ref[k] for k in _COLUMNS if k in ref}
    extra = {
        k: v
        for k, v in ref.items()
        if k not in _COLUMNS and k not in ("password", "id", "links", "federated")
    }
    return columns, extra


def _check_default_project(session: Session, project_id: str | None) -> None:
    if project_id is None:
        return
    project = session.get(models.Project, project_id)
    if project is None:
        raise errors.not_found("project", project_id)
    if project.is_domain:
        raise rest.BadRequest("Invalid input for field 'default_project_id': it names a domain")


def _new_password_row(
    user_id: str, hashed: str, options: dict[str, Any], *, self_service: bool
) -> models.Password:
    now = resources.utcnow()
    settings = runtime.get().settings
    expires = passwords.expires_at(now, bool(options.get("ignore_password_expiry")))
    if (
        not self_service
        and settings.change_password_upon_first_use
        and not options.get("ignore_change_password_upon_first_use")
    ):
        # An administrator's password must be replaced by the user at first use.
        expires = now
    return models.Password(
        user_id=user_id, hash=hashed, created_at=now, expires_at=expires, self_service=self_service
    )


def create(request: rest.ApiRequest, db: db_session.Database) -> rest.ApiResponse:
    ref = resources.body_of(request, "user", CREATE_SCHEMA)
    ctx = request.context
    domain_id = ref.get("domain_id") or ctx.domain_id or "default"
    ref = {**ref, "domain_id": domain_id}
    password = ref.get("password")
    if password is not None:
        passwords.validate_new(password)

    def check(session: Session) -> None:
        resources.enforce(request, "identity:create_user", {"user": ref})
        resources.get_domain(session, domain_id)

    db.run(check, write=False)
    hashed = passwords.hash_password(password) if password is not None else None

    def write(session: Session) -> dict[str, Any]:
        resources.get_domain(session, domain_id)
        _check_default_project(session, ref.get("default_project_id"))
        columns, extra = _split(ref)
        user = models.User(id=resources.new_id(), **columns, extra=extra)
        user.options = {k: v for k, v in (ref.get("options") or {}).items() if v is not None}
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            raise errors.duplicate("user", ref["name"], domain_id) from None
        pw = None
        if hashed is not None:
            pw = _new_password_row(user.id, hashed, user.options, self_service=False)
            session.add(pw)
        runtime.changed(session)
        return render(user, pw)

    return rest.ApiResponse(201, {"user": db.run(write, write=True)})


def list_users(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    domain_id = request.arg("domain_id")
    resources.enforce(request, "identity:list_users", {"domain_id": domain_id})
    ctx = request.context
    query = select(models.User).order_by(models.User.name)
    if domain_id is None and ctx.domain_id:
        # Domain-scoped callers list their own domain, as in Keystone.
        domain_id = ctx.domain_id
    if domain_id is not None:
        query = query.where(models.User.domain_id == domain_id)
    enabled = resources.query_bool(request, "enabled")
    if enabled is not None:
        query = query.where(models.User.enabled.is_(enabled))
    users = resources.filter_by_name(request, session.scalars(query), lambda u: u.name)
    rendered = render_many(session, users)
    expires_filter = request.arg("password_expires_at")
    if expires_filter:
        rendered = filter_password_expiry(rendered, expires_filter)
    return resources.limited(users, "users", request, rendered)


def filter_password_expiry(users: list[dict[str, Any]], expression: str) -> list[dict[str, Any]]:
    op, _, value = expression.partition(":")
    if not value:
        op, value = "eq", op
    moment = resources.parse_time(value, "password_expires_at")
    ops = {
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "eq": lambda a, b: a == b,
        "neq": lambda a, b: a != b,
    }
    if op not in ops:
        raise rest.BadRequest(
            f"Invalid input for field 'password_expires_at': unknown operator {op}"
        )
    result = []
    for user in users:
        raw = user.get("password_expires_at")
        if raw is None:
            continue
        if ops[op](resources.parse_time(raw, "password_expires_at"), moment):
            result.append(user)
    return result


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    user = session.get(models.User, request.path_params["user_id"])
    resources.enforce(
        request,
        "identity:get_user",
        target(user) if user else {"user": {"id": request.path_params["user_id"]}},
    )
    if user is None:
        raise errors.not_found("user", request.path_params["user_id"])
    return {"user": render(user, current_password(session, user.id))}


def update(request: rest.ApiRequest, db: db_session.Database) -> dict[str, Any]:
    user_id = request.path_params["user_id"]
    ref = resources.body_of(request, "user", UPDATE_SCHEMA)
    password = ref.get("password")
    if password is not None:
        passwords.validate_new(password)

    def check(session: Session) -> None:
        user = get_user(session, user_id)
        resources.enforce(request, "identity:update_user", target(user))
        if "domain_id" in ref and ref["domain_id"] != user.domain_id:
            raise rest.BadRequest("Cannot change Domain ID")

    db.run(check, write=False)
    # An administrator's reset is not held to the password history (as in Keystone).
    hashed = passwords.hash_password(password) if password is not None else None

    def write(session: Session) -> dict[str, Any]:
        user = get_user(session, user_id)
        columns, extra = _split(ref)
        columns.pop("domain_id", None)
        if "default_project_id" in columns:
            _check_default_project(session, columns["default_project_id"])
        was_enabled = user.enabled
        for key, value in columns.items():
            if key == "options":
                merged = dict(user.options)
                for name, option in (value or {}).items():
                    if option is None:
                        merged.pop(name, None)
                    else:
                        merged[name] = option
                user.options = merged
            else:
                setattr(user, key, value)
        if extra:
            merged_extra = dict(user.extra)
            for key, value in extra.items():
                merged_extra[key] = value
            user.extra = merged_extra
        try:
            session.flush()
        except IntegrityError:
            raise errors.duplicate("user", ref.get("name", user.name), user.domain_id) from None
        if was_enabled and not user.enabled:
            revocations.revoke(session, user_id=user.id)
            # As Keystone: a disabled user's application credentials go with it.
            app_creds.delete_for_user(session, user.id)
        if hashed is not None:
            session.add(_new_password_row(user.id, hashed, user.options, self_service=False))
            revocations.revoke(session, user_id=user.id)
            user.failed_auth_count = 0
        runtime.changed(session)
        session.flush()
        return {"user": render(user, current_password(session, user.id))}

    return db.run(write, write=True)


def delete(request: rest.ApiRequest, session: Session) -> None:
    user = get_user(session, request.path_params["user_id"])
    resources.enforce(request, "identity:delete_user", target(user))
    session.query(models.Assignment).filter(
        models.Assignment.actor_type == "user", models.Assignment.actor_id == user.id
    ).delete()
    session.query(models.Credential).filter(models.Credential.user_id == user.id).delete()
    for trust in session.scalars(
        select(models.Trust).where(
            (models.Trust.trustor_user_id == user.id) | (models.Trust.trustee_user_id == user.id)
        )
    ):
        session.delete(trust)
    session.delete(user)
    revocations.revoke(session, user_id=user.id)
    runtime.changed(session)


def history(session: Session, user_id: str) -> list[str]:
    """Hashes the history rule compares a new password against, newest first."""
    count = runtime.get().settings.unique_last_password_count
    if count <= 0:
        return []
    return list(
        session.scalars(
            select(models.Password.hash)
            .where(models.Password.user_id == user_id)
            .order_by(models.Password.id.desc())
            .limit(count)
        )
    )


def check_history(password: str, hashes: list[str]) -> None:
    for old in hashes:
        if passwords.check_password(password, old):
            count = runtime.get().settings.unique_last_password_count
            raise rest.BadRequest(
                "The new password cannot be identical to a previous password. The total "
                f"number which includes the new password must be unique is {count}."
            )


def change_password(request: rest.ApiRequest, db: db_session.Database) -> None:
    """Self-service change; needs no token, only the original password (as in Keystone)."""
    user_id = request.path_params["user_id"]
    ref = resources.body_of(request, "user", PASSWORD_CHANGE_SCHEMA)
    passwords.validate_new(ref["password"])

    def read(session: Session) -> tuple[models.Password | None, dict[str, Any], list[str]]:
        user = get_user(session, user_id)
        return current_password(session, user_id), dict(user.options), history(session, user_id)

    current, options, old_hashes = db.run(read, write=False)
    if current is None or not passwords.check_password(ref["original_password"], current.hash):
        raise errors.unauthorized("Error when changing user password: Invalid user / password")
    if options.get("lock_password"):
        raise rest.Forbidden(
            "You cannot change your password at this time due to password policy "
            "disallowing password changes. Please contact your administrator to reset "
            "your password."
        )
    settings = runtime.get().settings
    if settings.minimum_password_age and current.self_service:
        ready = current.created_at + datetime.timedelta(days=settings.minimum_password_age)
        now = resources.utcnow()
        if now < ready:
            raise rest.BadRequest(
                "You cannot change your password at this time due to the minimum password "
                "age. Once you change your password, it must be used for "
                f"{settings.minimum_password_age} day(s) before it can be changed. Please try "
                f"again in {(ready - now).days} day(s) or contact your administrator to reset "
                "your password."
            )
    check_history(ref["password"], old_hashes)
    hashed = passwords.hash_password(ref["password"])

    def write(session: Session) -> None:
        user = get_user(session, user_id)
        session.add(_new_password_row(user.id, hashed, user.options, self_service=True))
        user.failed_auth_count = 0
        revocations.revoke(session, user_id=user.id)
        runtime.changed(session)

    db.run(write, write=True)


def password_get_not_allowed(request: rest.ApiRequest, session: Session) -> None:
    raise rest.MethodNotAllowed(
        "The method GET is not allowed for the requested URL.", headers={"Allow": "POST"}
    )


def list_projects(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    user = session.get(models.User, request.path_params["user_id"])
    resources.enforce(
        request,
        "identity:list_user_projects",
        target(user) if user else {"user": {"id": request.path_params["user_id"]}},
    )
    if user is None:
        raise errors.not_found("user", request.path_params["user_id"])
    found = projects_with_roles(session, user.id)
    rows = projects.apply_filters(request, found)
    return {
        "projects": [projects.render(session, p) for p in rows],
        "links": resources.collection_links(request),
    }


def projects_with_roles(session: Session, user_id: str) -> list[models.Project]:
    """Projects where the user effectively has a role (direct, group or inherited)."""
    candidates = session.scalars(
        select(models.Project)
        .where(models.Project.is_domain.is_(False))
        .order_by(models.Project.name)
    )
    return [p for p in candidates if assignments.direct_role_ids(session, user_id, project_id=p.id)]


def list_groups(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    user = session.get(models.User, request.path_params["user_id"])
    resources.enforce(
        request,
        "identity:list_groups_for_user",
        target(user) if user else {"user": {"id": request.path_params["user_id"]}},
    )
    if user is None:
        raise errors.not_found("user", request.path_params["user_id"])
    rows = session.scalars(
        select(models.Group)
        .join(models.GroupMembership, models.GroupMembership.group_id == models.Group.id)
        .where(models.GroupMembership.user_id == user.id)
        .order_by(models.Group.name)
    )
    found = resources.filter_by_name(request, rows, lambda g: g.name)
    return {
        "groups": [groups.render(g) for g in found],
        "links": resources.collection_links(request),
    }


ROUTES = [
    rest.Route("POST", "/v3/users", create, manual_tx=True),
    rest.Route("GET", "/v3/users", list_users),
    rest.Route("GET", "/v3/users/{user_id}", show),
    rest.Route("PATCH", "/v3/users/{user_id}", update, manual_tx=True),
    rest.Route("DELETE", "/v3/users/{user_id}", delete),
    rest.Route("POST", "/v3/users/{user_id}/password", change_password, manual_tx=True, auth=False),
    rest.Route("GET", "/v3/users/{user_id}/password", password_get_not_allowed, auth=False),
    rest.Route("GET", "/v3/users/{user_id}/projects", list_projects),
    rest.Route("GET", "/v3/users/{user_id}/groups", list_groups),
]
