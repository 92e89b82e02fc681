"""First-start contents, like ``keystone-manage bootstrap`` plus DevStack's demo users.

Idempotent: every start ensures these exist and points the catalog at the URL
the server is reachable on now, without touching anything else.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.identity import models, passwords, resources, runtime

DEFAULT_DOMAIN = "default"
# Each role implies the next: admin > manager > member > reader.
ROLE_CHAIN = ("admin", "manager", "member", "reader")
OTHER_ROLES = ("service",)
INTERFACES = ("public", "internal", "admin")


@dataclasses.dataclass(frozen=True)
class ServiceEntry:
    """One catalog entry this build serves: type, name, and the URL path under the base URL."""

    type: str
    name: str
    path: str
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Account:
    user: str
    project: str
    role: str
    password: str


def _role(session: Session, name: str) -> models.Role:
    role = session.scalars(
        select(models.Role).where(models.Role.name == name, models.Role.domain_id == models.GLOBAL)
    ).first()
    if role is None:
        role = models.Role(
            id=resources.new_id(), name=name, domain_id=models.GLOBAL, options={}, extra={}
        )
        session.add(role)
        session.flush()
    return role


def _project(session: Session, name: str, description: str) -> models.Project:
    project = session.scalars(
        select(models.Project).where(
            models.Project.domain_id == DEFAULT_DOMAIN, models.Project.name == name
        )
    ).first()
    if project is None:
        project = models.Project(
            id=resources.new_id(),
            name=name,
            description=description,
            enabled=True,
            domain_id=DEFAULT_DOMAIN,
            parent_id=DEFAULT_DOMAIN,
            is_domain=False,
            extra={},
            options={},
        )
        session.add(project)
        session.flush()
    return project


def _grant(session: Session, user_id: str, target_type: str, target_id: str, role_id: str) -> None:
    key = ("user", user_id, target_type, target_id, role_id, False)
    if session.get(models.Assignment, key) is None:
        session.add(
            models.Assignment(
                actor_type="user",
                actor_id=user_id,
                target_type=target_type,
                target_id=target_id,
                role_id=role_id,
                inherited=False,
            )
        )


def needs_hashes(session: Session, accounts: list[Account]) -> list[str]:
    """Which accounts' users do not exist yet (their passwords must be hashed)."""
    missing = []
    for account in accounts:
        found = session.scalars(
            select(models.User.id).where(
                models.User.domain_id == DEFAULT_DOMAIN, models.User.name == account.user
            )
        ).first()
        if found is None:
            missing.append(account.user)
    return missing


def run(
    session: Session,
    *,
    region: str,
    base_url: str,
    services: list[ServiceEntry],
    accounts: list[Account],
    hashes: dict[str, str],
    reset_passwords: set[str] | None = None,
) -> dict[str, Any]:
    """Ensure the bootstrap rows; ``hashes`` holds bcrypt hashes for users to create or reset.

    Returns the bootstrap projects' ids by name (other services' defaults need them)."""
    reset_passwords = reset_passwords or set()
    if session.get(models.Project, DEFAULT_DOMAIN) is None:
        session.add(
            models.Project(
                id=DEFAULT_DOMAIN,
                name="Default",
                description="The default domain",
                enabled=True,
                domain_id=models.ROOT_DOMAIN,
                parent_id=None,
                is_domain=True,
                extra={},
                options={},
            )
        )
        session.flush()

    roles = {name: _role(session, name) for name in (*ROLE_CHAIN, *OTHER_ROLES)}
    for prior, implied in itertools.pairwise(ROLE_CHAIN):
        key = (roles[prior].id, roles[implied].id)
        if session.get(models.ImpliedRole, key) is None:
            session.add(models.ImpliedRole(prior_role_id=key[0], implied_role_id=key[1]))

    if session.get(models.Region, region) is None:
        session.add(models.Region(id=region, description="", extra={}))

    ids: dict[str, str] = {}
    for account in accounts:
        project = _project(session, account.project, f"Bootstrap project {account.project}")
        user = session.scalars(
            select(models.User).where(
                models.User.domain_id == DEFAULT_DOMAIN, models.User.name == account.user
            )
        ).first()
        if user is None:
            user = models.User(
                id=resources.new_id(),
                name=account.user,
                domain_id=DEFAULT_DOMAIN,
                enabled=True,
                default_project_id=project.id,
                extra={},
                options={},
            )
            session.add(user)
            session.flush()
            reset_passwords.add(account.user)
        if account.user in reset_passwords and account.user in hashes:
            session.add(
                models.Password(
                    user_id=user.id,
                    hash=hashes[account.user],
                    created_at=resources.utcnow(),
                    expires_at=None,
                    self_service=False,
                )
            )
        _grant(session, user.id, "project", project.id, roles[account.role].id)
        if account.role == "admin":
            _grant(session, user.id, "system", "all", roles["admin"].id)
        ids[account.project] = project.id

    for entry in services:
        _ensure_service(session, entry, region, base_url)
    runtime.changed(session)
    return ids


def _ensure_service(session: Session, entry: ServiceEntry, region: str, base_url: str) -> None:
    service = session.scalars(
        select(models.Service).where(models.Service.type == entry.type)
    ).first()
    if service is None:
        service = models.Service(
            id=resources.new_id(),
            type=entry.type,
            enabled=True,
            extra={"name": entry.name, "description": entry.description},
        )
        session.add(service)
        session.flush()
    url = base_url.rstrip("/") + entry.path
    existing = {
        e.interface: e
        for e in session.scalars(
            select(models.Endpoint).where(
                models.Endpoint.service_id == service.id, models.Endpoint.region_id == region
            )
        )
    }
    for interface in INTERFACES:
        endpoint = existing.get(interface)
        if endpoint is None:
            session.add(
                models.Endpoint(
                    id=resources.new_id(),
                    service_id=service.id,
                    interface=interface,
                    region_id=region,
                    url=url,
                    enabled=True,
                    extra={},
                )
            )
        elif endpoint.url != url:
            endpoint.url = url


def hash_for(password: str) -> str:
    return passwords.hash_password(password)
