"""Credentials (``/v3/credentials``) and the EC2 view of them under a user.

Blobs are stored encrypted with the credential key repository, next to a hash of
the primary key that encrypted them (so a rotation can tell which rows still need
re-encrypting). An ``ec2`` credential's id is the sha256 of its access key: the
EC2 API and ec2tokens find a credential from the access key alone.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import policy, rest, validation
from stackbox.identity import errors, keys, models, resources, runtime

EC2 = "ec2"

_PROPERTIES: dict[str, Any] = {
    "blob": {"type": "string"},
    "project_id": {"type": ["string", "null"], "maxLength": 64},
    "type": {"type": "string", "minLength": 1, "maxLength": 255},
    "user_id": {"type": "string", "minLength": 1, "maxLength": 64},
}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "string", "maxLength": 64}, **_PROPERTIES},
    "required": ["blob", "type", "user_id"],
    # Keystone keeps unknown attributes as extra properties.
    "additionalProperties": True,
}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "string"}, **_PROPERTIES},
    "minProperties": 1,
    "additionalProperties": True,
}
EC2_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"tenant_id": {"type": "string", "minLength": 1, "maxLength": 64}},
    "required": ["tenant_id"],
    "additionalProperties": True,
}

_COLUMNS = ("id", "user_id", "project_id", "type", "blob", "links")
# Blob keys that tie an ec2 credential to a delegation or identity; fixed once made.
_FIXED_EC2_KEYS = ("trust_id", "app_cred_id", "access_token_id", "access_id")


def is_ec2(kind: str) -> bool:
    return kind.lower() == EC2


def ec2_id(access: str) -> str:
    return hashlib.sha256(access.encode("utf-8")).hexdigest()


# Encryption -----------------------------------------------------------------


def primary_key_hash(repo: keys.KeyRepository) -> str:
    """sha1 of the key that encrypts now (the highest-numbered file), as Keystone records."""
    indexes = [int(entry.name) for entry in repo.path.iterdir() if entry.name.isdigit()]
    primary = repo.path / str(max(indexes))
    return hashlib.sha1(primary.read_bytes().strip()).hexdigest()


def encrypt(blob: str) -> tuple[bytes, str]:
    repo = runtime.get().credential_keys
    return repo.fernet().encrypt(blob.encode("utf-8")), primary_key_hash(repo)


def decrypt(cred: models.Credential) -> str:
    try:
        return runtime.get().credential_keys.fernet().decrypt(cred.encrypted_blob).decode("utf-8")
    except (InvalidToken, UnicodeDecodeError, TypeError, ValueError):
        raise rest.ApiError(
            "Credential could not be decrypted. Please contact the administrator"
        ) from None


def store_blob(cred: models.Credential, blob: str) -> None:
    cred.encrypted_blob, cred.key_hash = encrypt(blob)


# Shapes and checks ----------------------------------------------------------


def render(cred: models.Credential, blob: str) -> dict[str, Any]:
    body: dict[str, Any] = dict(cred.extra)
    body.update(
        {
            "id": cred.id,
            "user_id": cred.user_id,
            "project_id": cred.project_id,
            "type": cred.type,
            "blob": blob,
            "links": resources.self_link(f"/v3/credentials/{cred.id}"),
        }
    )
    return body


def target(cred: models.Credential) -> dict[str, Any]:
    return {
        "credential": {
            "id": cred.id,
            "user_id": cred.user_id,
            "project_id": cred.project_id,
            "type": cred.type,
        }
    }


def parse_ec2_blob(blob: Any) -> dict[str, Any]:
    """An ec2 blob is a JSON object with an ``access`` key; 400 otherwise."""
    try:
        parsed = json.loads(blob)
    except (TypeError, ValueError):
        raise rest.BadRequest("Invalid blob in credential") from None
    if not parsed or not isinstance(parsed, dict):
        raise _missing("blob")
    if not isinstance(parsed.get("access"), str) or not parsed["access"]:
        raise _missing("access")
    return parsed


def _missing(attribute: str) -> rest.BadRequest:
    return rest.BadRequest(
        f"Expecting to find {attribute} in credential. The server could not comply with the "
        "request since it is either malformed or otherwise incorrect. The client is assumed "
        "to be in error."
    )


def _delegated(ctx: Any) -> bool:
    return bool(ctx.trust_id or ctx.application_credential_id)


def check_delegation(request: rest.ApiRequest, project_id: str | None) -> None:
    """A trust or application credential token reaches only its own project's credentials."""
    ctx = request.context
    if _delegated(ctx) and project_id != ctx.project_id:
        raise errors.forbidden(
            "Credential project does not match the project scope of the delegated token"
        )


def check_unrestricted(request: rest.ApiRequest, session: Session) -> None:
    """A restricted application credential may not mint further credentials."""
    ctx = request.context
    if "application_credential" not in ctx.auth_methods:
        return
    app_cred = session.get(models.ApplicationCredential, ctx.application_credential_id or "")
    if app_cred is None or not app_cred.unrestricted:
        raise errors.forbidden(
            "Using method 'application_credential' is not allowed for managing additional "
            "credentials"
        )


def _require_user(session: Session, user_id: str) -> None:
    if session.get(models.User, user_id) is None:
        raise errors.not_found("user", user_id)


def _require_project(session: Session, project_id: str | None) -> None:
    if project_id is not None:
        resources.get_project(session, project_id)


def _extra(ref: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ref.items() if k not in _COLUMNS}


def _load(session: Session, credential_id: str) -> models.Credential | None:
    return session.get(models.Credential, credential_id)


def _enforce_on(
    request: rest.ApiRequest, action: str, cred: models.Credential | None
) -> models.Credential:
    """Check ``action`` against the stored credential (its owner), then 404 if absent."""
    credential_id = request.path_params["credential_id"]
    resources.enforce(request, action, target(cred) if cred else {})
    if cred is None:
        raise errors.not_found("credential", credential_id)
    check_delegation(request, cred.project_id)
    return cred


# /v3/credentials ------------------------------------------------------------


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = dict(resources.body_of(request, "credential", CREATE_SCHEMA))
    resources.enforce(request, "identity:create_credential", {"credential": ref})
    ec2 = is_ec2(ref["type"])
    if ec2:
        check_unrestricted(request, session)
    check_delegation(request, ref.get("project_id"))
    _require_user(session, ref["user_id"])
    blob = ref["blob"]
    if ec2:
        if not ref.get("project_id"):
            raise _missing("project_id")
        parsed = parse_ec2_blob(blob)
        credential_id = ec2_id(parsed["access"])
        if ref.get("id") not in (None, credential_id):
            raise rest.BadRequest(
                "The ID of an ec2 credential is the sha256 of its access key; "
                f"expected {credential_id}"
            )
        # Remember the delegation that made it, so ec2tokens later issues the same scope.
        ctx = request.context
        if ctx.trust_id:
            parsed["trust_id"] = ctx.trust_id
        if ctx.application_credential_id:
            parsed["app_cred_id"] = ctx.application_credential_id
        if ctx.trust_id or ctx.application_credential_id:
            blob = json.dumps(parsed)
    else:
        credential_id = resources.new_id()
    _require_project(session, ref.get("project_id"))
    if _load(session, credential_id) is not None:
        raise errors.conflict("credential", f"Duplicate ID, {credential_id}")
    cred = models.Credential(
        id=credential_id,
        user_id=ref["user_id"],
        project_id=ref.get("project_id"),
        type=ref["type"],
        extra=_extra(ref),
    )
    store_blob(cred, blob)
    session.add(cred)
    session.flush()
    runtime.changed(session)
    return rest.ApiResponse(201, {"credential": render(cred, blob)})


def may_read(request: rest.ApiRequest, cred: models.Credential) -> bool:
    try:
        resources.enforce(request, "identity:get_credential", target(cred))
        check_delegation(request, cred.project_id)
    except (policy.PolicyNotAuthorized, rest.Forbidden):
        return False
    return True


def list_credentials(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    filters = {k: request.arg(k) for k in ("user_id", "type") if request.has_arg(k)}
    scope_target = None if ctx.system_scope else {"credential": {"user_id": ctx.user_id}}
    resources.enforce(request, "identity:list_credentials", scope_target, **filters)
    query = select(models.Credential).order_by(models.Credential.id)
    if "user_id" in filters:
        query = query.where(models.Credential.user_id == filters["user_id"])
    if "type" in filters:
        query = query.where(models.Credential.type == filters["type"])
    # Each credential is checked like a GET of it, so members see only their own.
    rows = [c for c in session.scalars(query) if may_read(request, c)]
    return resources.limited(rows, "credentials", request, [render(c, decrypt(c)) for c in rows])


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    cred = _load(session, request.path_params["credential_id"])
    cred = _enforce_on(request, "identity:get_credential", cred)
    return {"credential": render(cred, decrypt(cred))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = dict(resources.body_of(request, "credential", UPDATE_SCHEMA))
    cred = _load(session, request.path_params["credential_id"])
    cred = _enforce_on(request, "identity:update_credential", cred)
    if ref.get("id") is not None and ref["id"] != cred.id:
        raise rest.BadRequest("Cannot change ID")
    new_type = ref.get("type", cred.type)
    if is_ec2(new_type) != is_ec2(cred.type):
        # The id of an ec2 credential derives from its access key; others' do not.
        raise rest.BadRequest("Cannot change the type of a credential to or from ec2")
    current_blob = decrypt(cred)
    if is_ec2(new_type):
        if not ref.get("project_id", cred.project_id):
            raise _missing("project_id")
        if "blob" in ref:
            _check_ec2_blob_update(current_blob, ref["blob"])
    # The owner and scope after the change must be allowed too (no giving it away).
    merged = {**target(cred)["credential"], **{k: v for k, v in ref.items() if k != "blob"}}
    resources.enforce(request, "identity:update_credential", {"credential": merged})
    if "user_id" in ref and ref["user_id"] != cred.user_id:
        _require_user(session, ref["user_id"])
        cred.user_id = ref["user_id"]
    if "project_id" in ref and ref["project_id"] != cred.project_id:
        _require_project(session, ref["project_id"])
        cred.project_id = ref["project_id"]
    cred.type = new_type
    blob = current_blob
    if "blob" in ref:
        blob = ref["blob"]
        store_blob(cred, blob)
    extra = _extra(ref)
    if extra:
        cred.extra = {**cred.extra, **extra}
    session.flush()
    runtime.changed(session)
    return {"credential": render(cred, blob)}


def _check_ec2_blob_update(current: str, new: Any) -> None:
    new_blob = parse_ec2_blob(new)
    try:
        old_blob = json.loads(current)
    except ValueError:
        old_blob = {}
    if not isinstance(old_blob, dict):
        old_blob = {}
    for key in _FIXED_EC2_KEYS:
        if old_blob.get(key) != new_blob.get(key):
            raise rest.BadRequest(f"{key} can not be updated for credential")


def delete(request: rest.ApiRequest, session: Session) -> None:
    cred = _load(session, request.path_params["credential_id"])
    cred = _enforce_on(request, "identity:delete_credential", cred)
    session.delete(cred)
    runtime.changed(session)


# /v3/users/{user_id}/credentials/OS-EC2 -------------------------------------


def render_ec2(cred: models.Credential, blob: str) -> dict[str, Any]:
    try:
        parsed = json.loads(blob)
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    access = parsed.get("access")
    return {
        "user_id": cred.user_id,
        "tenant_id": cred.project_id,
        "access": access,
        "secret": parsed.get("secret"),
        "trust_id": parsed.get("trust_id"),
        "links": resources.self_link(f"/v3/users/{cred.user_id}/credentials/OS-EC2/{access}"),
    }


def ec2_list(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    user_id = request.path_params["user_id"]
    resources.enforce(request, "identity:ec2_list_credentials")
    _require_user(session, user_id)
    rows = session.scalars(
        select(models.Credential)
        .where(models.Credential.user_id == user_id)
        .order_by(models.Credential.id)
    )
    found = []
    for cred in rows:
        if not is_ec2(cred.type):
            continue
        try:
            check_delegation(request, cred.project_id)
        except rest.Forbidden:
            continue
        found.append(render_ec2(cred, decrypt(cred)))
    return {"credentials": found, "links": resources.collection_links(request)}


def ec2_create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    user_id = request.path_params["user_id"]
    resources.enforce(
        request, "identity:ec2_create_credential", {"credential": {"user_id": user_id}}
    )
    check_unrestricted(request, session)
    _require_user(session, user_id)
    body = request.body if request.body is not None else {}
    if not isinstance(body, dict):
        raise rest.BadRequest("Invalid input: the request body must be an object")
    validation.check(EC2_CREATE_SCHEMA, body)
    tenant_id = body["tenant_id"]
    resources.get_project(session, tenant_id)
    check_delegation(request, tenant_id)
    access = resources.new_id()
    blob = json.dumps(
        {"access": access, "secret": resources.new_id(), "trust_id": request.context.trust_id}
    )
    cred = models.Credential(
        id=ec2_id(access),
        user_id=user_id,
        project_id=tenant_id,
        type=EC2,
        extra={},
    )
    store_blob(cred, blob)
    session.add(cred)
    session.flush()
    runtime.changed(session)
    return rest.ApiResponse(201, {"credential": render_ec2(cred, blob)})


def _ec2_lookup(request: rest.ApiRequest, session: Session, action: str) -> models.Credential:
    """The ec2 credential named by its access key, after the same checks as Keystone."""
    user_id = request.path_params["user_id"]
    access = request.path_params["credential_id"]
    cred = _load(session, ec2_id(access))
    if cred is None:
        raise errors.not_found("credential", ec2_id(access))
    resources.enforce(request, action, target(cred))
    _require_user(session, user_id)
    if cred.user_id != user_id:
        # Another user's key is not found under this user.
        raise errors.not_found("credential", ec2_id(access))
    if not is_ec2(cred.type):
        raise errors.unauthorized("EC2 access key not found.")
    check_delegation(request, cred.project_id)
    return cred


def ec2_show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    cred = _ec2_lookup(request, session, "identity:ec2_get_credential")
    return {"credential": render_ec2(cred, decrypt(cred))}


def ec2_delete(request: rest.ApiRequest, session: Session) -> None:
    cred = _ec2_lookup(request, session, "identity:ec2_delete_credential")
    session.delete(cred)
    runtime.changed(session)


_EC2 = "/v3/users/{user_id}/credentials/OS-EC2"

ROUTES = [
    rest.Route("POST", "/v3/credentials", create),
    rest.Route("GET", "/v3/credentials", list_credentials),
    rest.Route("GET", "/v3/credentials/{credential_id}", show),
    rest.Route("PATCH", "/v3/credentials/{credential_id}", update),
    rest.Route("DELETE", "/v3/credentials/{credential_id}", delete),
    rest.Route("GET", _EC2, ec2_list),
    rest.Route("POST", _EC2, ec2_create),
    rest.Route("GET", _EC2 + "/{credential_id}", ec2_show),
    rest.Route("DELETE", _EC2 + "/{credential_id}", ec2_delete),
]
