"""What a token resolves to now: its user, scope, roles and catalog, checked for validity.

The same checks run when a token is issued and every time it is validated, so
a token stops working as soon as its user, project, domain, trust or
application credential does, or its user loses every role on its scope.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.identity import (
    assignments,
    catalog,
    endpoint_groups,
    models,
    resources,
    runtime,
    trusts,
)


class TokenNotValid(Exception):
    """The token resolves to nothing usable (its message is for logs, not clients)."""


@dataclasses.dataclass(frozen=True)
class ScopeFacts:
    user: dict[str, Any]
    user_domain_id: str
    project: dict[str, Any] | None
    domain: dict[str, Any] | None
    system: bool
    roles: tuple[dict[str, str], ...]
    catalog: tuple[dict[str, Any], ...]
    trust: dict[str, Any] | None = None
    app_cred: dict[str, Any] | None = None
    access_rules: tuple[dict[str, str], ...] | None = None
    # When a trust or application credential behind the token expires.
    valid_until: datetime.datetime | None = None

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(r["name"] for r in self.roles)

    @property
    def role_ids(self) -> tuple[str, ...]:
        return tuple(r["id"] for r in self.roles)

    @property
    def project_domain_id(self) -> str | None:
        return self.project["domain"]["id"] if self.project else None


@dataclasses.dataclass(frozen=True)
class FactsKey:
    user_id: str
    project_id: str | None
    domain_id: str | None
    system: str | None
    trust_id: str | None
    app_cred_id: str | None


def _domain_ref(session: Session, domain_id: str) -> dict[str, str]:
    domain = session.get(models.Project, domain_id)
    if domain is None or not domain.is_domain:
        raise TokenNotValid(f"domain {domain_id} is gone")
    if not domain.enabled:
        raise TokenNotValid(f"domain {domain_id} is disabled")
    return {"id": domain.id, "name": domain.name}


def user_ref(session: Session, user: models.User) -> dict[str, Any]:
    """The ``user`` member of a token body."""
    current = session.scalars(
        select(models.Password)
        .where(models.Password.user_id == user.id)
        .order_by(models.Password.id.desc())
        .limit(1)
    ).first()
    expires = current.expires_at if current is not None else None
    return {
        "id": user.id,
        "name": user.name,
        "domain": _domain_ref(session, user.domain_id),
        "password_expires_at": resources.isotime(expires),
    }


def _role_refs(session: Session, role_ids: set[str]) -> tuple[dict[str, str], ...]:
    ids = assignments.implied_closure(session, role_ids)
    roles = session.scalars(
        select(models.Role).where(models.Role.id.in_(ids), models.Role.domain_id == models.GLOBAL)
    )
    return tuple({"id": r.id, "name": r.name} for r in sorted(roles, key=lambda r: r.name))


def _trust(session: Session, key: FactsKey) -> tuple[models.Trust, set[str]]:
    """The trust behind a token while it holds (uses are spent at issue, not checked here)."""
    trust = session.get(models.Trust, key.trust_id)
    if trust is None or not trusts.is_live(trust, resources.utcnow()):
        raise TokenNotValid("trust is gone or expired")
    if key.user_id not in (trust.trustor_user_id, trust.trustee_user_id):
        raise TokenNotValid("token user is not part of the trust")
    problem = trusts.chain_problem(session, trust)
    if problem:
        raise TokenNotValid(f"trust chain is broken: {problem}")
    trustor = session.get(models.User, trust.trustor_user_id)
    trustee = session.get(models.User, trust.trustee_user_id)
    if trustor is None or not trustor.enabled or trustee is None or not trustee.enabled:
        raise TokenNotValid("trustor or trustee is disabled or gone")
    wanted = set(trusts.role_ids(session, trust.id))
    # A redelegated trust delegates what the first trustor of the chain still holds.
    origin = trusts.pedigree(session, trust)[-1] or trust
    held = (
        assignments.implied_closure(
            session,
            assignments.direct_role_ids(
                session, origin.trustor_user_id, project_id=trust.project_id
            ),
        )
        if trust.project_id
        else set()
    )
    if not assignments.implied_closure(session, wanted) <= held:
        raise TokenNotValid("trustor no longer holds the delegated roles")
    return trust, wanted


def load(session: Session, key: FactsKey) -> ScopeFacts:
    user = session.get(models.User, key.user_id)
    if user is None:
        raise TokenNotValid("user is gone")
    if not user.enabled:
        raise TokenNotValid("user is disabled")
    user_body = user_ref(session, user)

    project_body = None
    domain_body = None
    trust_body = None
    app_cred_body = None
    access_rules = None
    role_ids: set[str] = set()
    valid_until: datetime.datetime | None = None

    if key.project_id:
        project = session.get(models.Project, key.project_id)
        if project is None or project.is_domain:
            raise TokenNotValid("project is gone")
        if not project.enabled:
            raise TokenNotValid("project is disabled")
        for parent in assignments.ancestors(session, project):
            if not parent.enabled:
                raise TokenNotValid("a parent project is disabled")
        project_body = {
            "id": project.id,
            "name": project.name,
            "domain": _domain_ref(session, project.domain_id),
        }
    elif key.domain_id:
        domain_body = _domain_ref(session, key.domain_id)

    if key.trust_id:
        trust, role_ids = _trust(session, key)
        valid_until = trust.expires_at
        trust_body = {
            "id": trust.id,
            "impersonation": trust.impersonation,
            "trustee_user": {"id": trust.trustee_user_id},
            "trustor_user": {"id": trust.trustor_user_id},
        }
    else:
        role_ids = assignments.direct_role_ids(
            session,
            key.user_id,
            project_id=key.project_id,
            domain_id=key.domain_id,
            system=bool(key.system),
        )
    if key.app_cred_id:
        cred = session.get(models.ApplicationCredential, key.app_cred_id)
        if cred is None or cred.user_id != key.user_id:
            raise TokenNotValid("application credential is gone")
        if cred.expires_at is not None and cred.expires_at <= resources.utcnow():
            raise TokenNotValid("application credential expired")
        granted = set(
            session.scalars(
                select(models.ApplicationCredentialRole.role_id).where(
                    models.ApplicationCredentialRole.app_cred_id == cred.id
                )
            )
        )
        held = assignments.implied_closure(session, role_ids)
        if not granted <= held:
            raise TokenNotValid("user no longer holds the credential's roles")
        role_ids = granted
        if cred.expires_at is not None:
            valid_until = min(filter(None, (valid_until, cred.expires_at)))
        rules = session.execute(
            select(models.AccessRule)
            .join(
                models.ApplicationCredentialAccessRule,
                models.ApplicationCredentialAccessRule.access_rule_id == models.AccessRule.id,
            )
            .where(models.ApplicationCredentialAccessRule.app_cred_id == cred.id)
        ).scalars()
        access_rules = tuple(
            {"id": r.id, "service": r.service, "path": r.path, "method": r.method} for r in rules
        )
        app_cred_body = {"id": cred.id, "name": cred.name, "restricted": not cred.unrestricted}
        if access_rules:
            app_cred_body["access_rules"] = list(access_rules)
        else:
            access_rules = None

    scoped = bool(key.project_id or key.domain_id or key.system)
    roles = _role_refs(session, role_ids) if role_ids else ()
    if scoped and not roles:
        raise TokenNotValid("user has no role on the scope")
    cat: tuple[dict[str, Any], ...] = ()
    if scoped:
        allowed = endpoint_groups.project_endpoint_ids(session, key.project_id)
        cat = tuple(catalog.build(session, key.user_id, key.project_id, allowed))
    return ScopeFacts(
        user=user_body,
        user_domain_id=user.domain_id,
        project=project_body,
        domain=domain_body,
        system=bool(key.system),
        roles=roles,
        catalog=cat,
        trust=trust_body,
        app_cred=app_cred_body,
        access_rules=access_rules,
        valid_until=valid_until,
    )


def cached_or_load(session: Session, key: FactsKey) -> ScopeFacts:
    rt = runtime.get()
    found = rt.cached_facts(key)
    if found is not None:
        if isinstance(found, TokenNotValid):
            # A fresh exception each time: re-raising one instance grows its traceback.
            raise TokenNotValid(str(found))
        if found.valid_until is None or found.valid_until > resources.utcnow():
            return found
    generation = rt.generation
    try:
        facts = load(session, key)
    except TokenNotValid as exc:
        rt.cache_facts(key, generation, exc)
        raise
    rt.cache_facts(key, generation, facts)
    return facts
