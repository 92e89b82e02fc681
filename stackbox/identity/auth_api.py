"""/v3/auth/*: tokens (issue, validate, check, revoke), catalog, and what a token may scope to;
the version documents; and the token check every other request goes through."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.identity import (
    assignments,
    authenticate,
    domains,
    errors,
    models,
    projects,
    resources,
    revocations,
    runtime,
    token_service,
)
from stackbox.identity.token_facts import TokenNotValid

V3_ID = "v3.14"
V3_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def _v3_document() -> dict[str, Any]:
    return {
        "id": V3_ID,
        "status": "stable",
        "updated": V3_UPDATED,
        "links": [{"rel": "self", "href": resources.url("/v3/")}],
        "media-types": MEDIA_TYPES,
    }


def versions(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    return rest.ApiResponse(
        300,
        {"versions": {"values": [_v3_document()]}},
        headers={"Location": resources.url("/v3/")},
    )


def version_v3(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return {"version": _v3_document()}


class TokenAuthenticator:
    """Validates X-Auth-Token for every service; answers from memory when it can."""

    def cached(self, token: str, request_id: str) -> context.RequestContext | None:
        rt = runtime.get()
        found = rt.cached_context(token)
        if found is not None:
            ctx, expires_at = found
            if expires_at > resources.utcnow():
                return _with_request_id(ctx, request_id)
        try:
            payload, facts = token_service.validate(None, token)
        except LookupError:
            return None
        except TokenNotValid:
            raise errors.unauthorized() from None
        return self._remember(token, payload, facts, request_id)

    def load(self, session: Session, token: str, request_id: str) -> context.RequestContext:
        try:
            payload, facts = token_service.validate(session, token)
        except TokenNotValid:
            raise errors.unauthorized() from None
        return self._remember(token, payload, facts, request_id)

    def permits(
        self, ctx: context.RequestContext, service_type: str, method: str, path: str
    ) -> bool:
        return token_service.access_rules_allow(ctx.access_rules, service_type, method, path)

    def _remember(
        self, token: str, payload: Any, facts: Any, request_id: str
    ) -> context.RequestContext:
        rt = runtime.get()
        generation = rt.generation
        ctx = token_service.request_context(token, payload, facts, request_id)
        expires = payload.expires_at
        if facts.valid_until is not None:
            expires = min(expires, facts.valid_until)
        rt.cache_context(token, generation, (ctx, expires))
        return ctx


def _with_request_id(ctx: context.RequestContext, request_id: str) -> context.RequestContext:
    return dataclasses.replace(ctx, request_id=request_id)


def _subject(request: rest.ApiRequest) -> str:
    token = request.headers.get("x-subject-token")
    if not token:
        raise rest.BadRequest(
            "Expecting to find X-Subject-Token in request headers. The server could not "
            "comply with the request since it is either malformed or otherwise incorrect. "
            "The client is assumed to be in error."
        )
    return token


def _validate_subject(
    request: rest.ApiRequest, session: Session | None, action: str
) -> tuple[Any, Any]:
    token = _subject(request)
    allow_expired = resources.truthy(request.arg("allow_expired"))
    try:
        payload, facts = token_service.validate(session, token, allow_expired=allow_expired)
    except TokenNotValid:
        # As in Keystone, the subject token is resolved before the policy check
        # (the check needs its user), so an invalid one is 404 for every caller.
        raise errors.not_found("token", token) from None
    resources.enforce(request, action, {"token": {"user_id": payload.user_id}})
    return payload, facts


def _validate_response(request: rest.ApiRequest, payload: Any, facts: Any) -> rest.ApiResponse:
    body = token_service.render(payload, facts, include_catalog=not request.has_arg("nocatalog"))
    return rest.ApiResponse(200, body, headers={"X-Subject-Token": _subject(request)})


def validate_fast(request: rest.ApiRequest) -> rest.ApiResponse | None:
    try:
        payload, facts = _validate_subject(request, None, "identity:validate_token")
    except LookupError:
        return None
    return _validate_response(request, payload, facts)


def validate(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    payload, facts = _validate_subject(request, session, "identity:validate_token")
    return _validate_response(request, payload, facts)


def check(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    _validate_subject(request, session, "identity:check_token")
    return rest.ApiResponse(200, None, headers={"X-Subject-Token": _subject(request)})


def revoke(request: rest.ApiRequest, session: Session) -> None:
    payload, _ = _validate_subject(request, session, "identity:revoke_token")
    revocations.revoke(session, audit_id=payload.audit_ids[0])
    runtime.changed(session)


def auth_catalog(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    resources.enforce(request, "identity:get_auth_catalog")
    if ctx.scope is None:
        raise rest.Forbidden("A project-scoped token is required to produce a service catalog.")
    assert ctx.token is not None
    _, facts = token_service.validate(session, ctx.token)
    return {"catalog": list(facts.catalog), "links": resources.collection_links(request)}


def auth_projects(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_auth_projects")
    user_id = request.context.user_id
    assert user_id is not None
    found = []
    for project in session.scalars(
        select(models.Project)
        .where(models.Project.is_domain.is_(False))
        .order_by(models.Project.name)
    ):
        if not project.enabled:
            continue
        domain = session.get(models.Project, project.domain_id)
        if domain is None or not domain.enabled:
            continue
        if assignments.direct_role_ids(session, user_id, project_id=project.id):
            found.append(projects.render(session, project))
    return {"projects": found, "links": resources.collection_links(request)}


def auth_domains(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_auth_domains")
    user_id = request.context.user_id
    assert user_id is not None
    found = []
    for domain in session.scalars(
        select(models.Project)
        .where(models.Project.is_domain.is_(True))
        .order_by(models.Project.name)
    ):
        if domain.enabled and assignments.direct_role_ids(session, user_id, domain_id=domain.id):
            found.append(domains.render(session, domain))
    return {"domains": found, "links": resources.collection_links(request)}


def auth_system(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_auth_system")
    user_id = request.context.user_id
    assert user_id is not None
    has = bool(assignments.direct_role_ids(session, user_id, system=True))
    return {"system": [{"all": True}] if has else [], "links": resources.collection_links(request)}


def revoke_events(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    """OS-REVOKE: the revocation events (what other services' caches need to drop)."""
    resources.enforce(request, "identity:list_revoke_events")
    query = select(models.RevocationEvent).order_by(models.RevocationEvent.id)
    since = request.arg("since")
    if since:
        moment = resources.parse_time(since, "since")
        query = query.where(models.RevocationEvent.revoked_at > moment)
    events = []
    for event in session.scalars(query):
        body: dict[str, Any] = {
            "issued_before": resources.isotime(event.issued_before),
            "revoked_at": resources.isotime(event.revoked_at),
        }
        for field in revocations.FIELDS:
            value = getattr(event, field)
            if value is not None:
                body["application_credential_id" if field == "app_cred_id" else field] = value
        events.append(body)
    return {"events": events, "links": resources.collection_links(request)}


ROUTES = [
    rest.Route("GET", "/", versions, auth=False, no_db=True),
    rest.Route("GET", "/v3", version_v3, auth=False, no_db=True),
    rest.Route("POST", "/v3/auth/tokens", authenticate.authenticate, auth=False, manual_tx=True),
    rest.Route("GET", "/v3/auth/tokens", validate, fast=validate_fast),
    rest.Route("HEAD", "/v3/auth/tokens", check),
    rest.Route("DELETE", "/v3/auth/tokens", revoke),
    rest.Route("GET", "/v3/auth/catalog", auth_catalog),
    rest.Route("GET", "/v3/auth/projects", auth_projects),
    rest.Route("GET", "/v3/auth/domains", auth_domains),
    rest.Route("GET", "/v3/auth/system", auth_system),
    rest.Route("GET", "/v3/OS-REVOKE/events", revoke_events),
]
