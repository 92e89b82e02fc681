"""Issue, validate and render tokens; build the request context other services see."""

from __future__ import annotations

import datetime
import re
from typing import Any

from sqlalchemy.orm import Session

from stackbox import context
from stackbox.identity import resources, revocations, runtime, token_facts, tokens
from stackbox.identity.token_facts import FactsKey, ScopeFacts, TokenNotValid


def _key(payload: tokens.TokenPayload) -> FactsKey:
    return FactsKey(
        user_id=payload.user_id,
        project_id=payload.project_id,
        domain_id=payload.domain_id,
        system=payload.system,
        trust_id=payload.trust_id,
        app_cred_id=payload.app_cred_id,
    )


def issue(
    session: Session,
    *,
    user_id: str,
    methods: tuple[str, ...],
    project_id: str | None = None,
    domain_id: str | None = None,
    system: str | None = None,
    trust_id: str | None = None,
    app_cred_id: str | None = None,
    expires_at: datetime.datetime | None = None,
    parent_audit_id: str | None = None,
) -> tuple[str, tokens.TokenPayload, ScopeFacts]:
    """Make a token; raises TokenNotValid if the scope is not usable right now."""
    rt = runtime.get()
    now = resources.utcnow()
    lifetime = now + datetime.timedelta(seconds=rt.settings.token_expiration)
    expires = min(lifetime, expires_at) if expires_at else lifetime
    audit_ids = (tokens.new_audit_id(),) + ((parent_audit_id,) if parent_audit_id else ())
    payload = tokens.TokenPayload(
        user_id=user_id,
        methods=methods,
        issued_at=now,
        expires_at=expires.replace(microsecond=0),
        audit_ids=audit_ids,
        project_id=project_id,
        domain_id=domain_id,
        system=system,
        trust_id=trust_id,
        app_cred_id=app_cred_id,
    )
    facts = token_facts.cached_or_load(session, _key(payload))
    if facts.valid_until is not None and facts.valid_until < payload.expires_at:
        payload = tokens.TokenPayload(
            **{**payload.__dict__, "expires_at": facts.valid_until.replace(microsecond=0)}
        )
    return tokens.encode(payload, rt.token_keys.fernet()), payload, facts


def decode(token: str, *, allow_expired: bool = False) -> tokens.TokenPayload:
    """Decrypt and check expiry and revocation; raises TokenNotValid."""
    rt = runtime.get()
    try:
        payload = tokens.decode(token, rt.token_keys.fernet())
    except tokens.MalformedToken as exc:
        raise TokenNotValid(f"malformed token: {exc}") from None
    now = resources.utcnow()
    deadline = payload.expires_at
    if allow_expired:
        deadline += datetime.timedelta(seconds=rt.settings.allow_expired_window)
    if deadline <= now:
        raise TokenNotValid("token expired")
    return payload


def _check_revoked(payload: tokens.TokenPayload, facts: ScopeFacts) -> None:
    users: tuple[str, ...] = (payload.user_id,)
    if facts.trust:
        users = (facts.trust["trustor_user"]["id"], facts.trust["trustee_user"]["id"])
    domains = tuple(
        d
        for d in (facts.user_domain_id, facts.project_domain_id, payload.domain_id)
        if d is not None
    )
    if revocations.INDEX.is_revoked(
        payload.issued_at,
        audit_ids=payload.audit_ids[:1],
        user_ids=users,
        project_id=payload.project_id,
        domain_ids=domains,
        trust_id=payload.trust_id,
        app_cred_id=payload.app_cred_id,
    ):
        raise TokenNotValid("token was revoked")


def validate(
    session: Session | None, token: str, *, allow_expired: bool = False
) -> tuple[tokens.TokenPayload, ScopeFacts]:
    """The payload and current facts of a valid token; raises TokenNotValid.

    With ``session`` None only cached facts are used, and ``LookupError`` means
    the caller must retry with a session.
    """
    payload = decode(token, allow_expired=allow_expired)
    key = _key(payload)
    if session is None:
        cached = runtime.get().cached_facts(key)
        if cached is None or (
            not isinstance(cached, TokenNotValid)
            and cached.valid_until is not None
            and cached.valid_until <= resources.utcnow()
        ):
            raise LookupError(token)
        if isinstance(cached, TokenNotValid):
            raise TokenNotValid(str(cached))
        facts = cached
    else:
        facts = token_facts.cached_or_load(session, key)
    _check_revoked(payload, facts)
    return payload, facts


def render(
    payload: tokens.TokenPayload, facts: ScopeFacts, *, include_catalog: bool = True
) -> dict[str, Any]:
    methods = list(payload.methods)
    if "token" in methods:
        # A re-scoped token lists "token" first, then the original methods.
        methods.remove("token")
        methods.insert(0, "token")
    body: dict[str, Any] = {
        "methods": methods,
        "user": facts.user,
        "audit_ids": list(payload.audit_ids),
        "expires_at": resources.isotime(payload.expires_at),
        "issued_at": resources.isotime(payload.issued_at),
    }
    if facts.project is not None:
        body["project"] = facts.project
        body["is_domain"] = False
    elif facts.domain is not None:
        body["domain"] = facts.domain
    elif facts.system:
        body["system"] = {"all": True}
    if facts.project is not None or facts.domain is not None or facts.system:
        body["roles"] = list(facts.roles)
        if include_catalog:
            body["catalog"] = list(facts.catalog)
    if facts.trust is not None:
        body["OS-TRUST:trust"] = facts.trust
    if facts.app_cred is not None:
        body["application_credential"] = facts.app_cred
    return {"token": body}


def request_context(
    token: str, payload: tokens.TokenPayload, facts: ScopeFacts, request_id: str
) -> context.RequestContext:
    project = facts.project
    return context.RequestContext(
        request_id=request_id,
        user_id=payload.user_id,
        user_name=facts.user["name"],
        user_domain_id=facts.user_domain_id,
        project_id=project["id"] if project else None,
        project_name=project["name"] if project else None,
        project_domain_id=project["domain"]["id"] if project else None,
        domain_id=facts.domain["id"] if facts.domain else None,
        domain_name=facts.domain["name"] if facts.domain else None,
        system_scope="all" if facts.system else None,
        roles=facts.role_names,
        role_ids=facts.role_ids,
        trust_id=payload.trust_id,
        trustor_user_id=facts.trust["trustor_user"]["id"] if facts.trust else None,
        trustee_user_id=facts.trust["trustee_user"]["id"] if facts.trust else None,
        application_credential_id=payload.app_cred_id,
        access_rules=facts.access_rules,
        audit_ids=payload.audit_ids,
        auth_methods=payload.methods,
        token=token,
        is_admin_project=bool(project),
    )


def _path_pattern(rule_path: str) -> re.Pattern[str]:
    """keystonemiddleware's syntax: ``*`` and ``{name}`` match one segment, ``**`` any."""
    parts = []
    for match in re.finditer(r"(\{[^}]*\})|(\*\*)|(\*)|([^{}*]+)", rule_path):
        tag, any_depth, one, literal = match.groups()
        if any_depth:
            parts.append(".*")
        elif tag or one:
            parts.append(r"[^/]+")
        else:
            parts.append(re.escape(literal))
    return re.compile("^" + "".join(parts) + "$")


def access_rules_allow(
    rules: tuple[dict[str, str], ...] | None, service_type: str, method: str, path: str
) -> bool:
    """Whether an application credential's access rules let its token make this request.

    ``path`` is the request path below the service's endpoint (``/v3/users``,
    ``/v2.1/servers/ID``). Keystone enforces this on its own API in its auth
    middleware (keystonemiddleware's ``validate_allowed_request`` with service
    type ``identity``) and answers 401 when no rule matches; validating a token
    (``GET /v3/auth/tokens``) is always allowed. No rules at all means no limit.
    """
    if rules is None:
        return True
    if (
        service_type == "identity"
        and method == "GET"
        and path.rstrip("/").endswith("/v3/auth/tokens")
    ):
        return True
    return any(
        rule["service"] == service_type
        and rule["method"] == method
        and _path_pattern(rule["path"]).match(path) is not None
        for rule in rules
    )
