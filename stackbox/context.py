"""Who is asking: the validated token's facts, shared by every service."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class RequestContext:
    request_id: str
    user_id: str | None = None
    user_name: str | None = None
    user_domain_id: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None
    system_scope: str | None = None
    roles: tuple[str, ...] = ()
    role_ids: tuple[str, ...] = ()
    trust_id: str | None = None
    trustor_user_id: str | None = None
    trustee_user_id: str | None = None
    application_credential_id: str | None = None
    # Access rules of an application credential: which requests the token may make.
    access_rules: tuple[dict[str, str], ...] | None = None
    audit_ids: tuple[str, ...] = ()
    auth_methods: tuple[str, ...] = ()
    token: str | None = None
    is_admin_project: bool = False

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def scope(self) -> str | None:
        if self.system_scope:
            return "system"
        if self.project_id:
            return "project"
        if self.domain_id:
            return "domain"
        return None

    def policy_credentials(self) -> dict[str, Any]:
        """The credentials dict oslo.policy rules are written against (Keystone's names)."""
        token_project: dict[str, Any] = {}
        if self.project_id:
            token_project = {
                "id": self.project_id,
                "name": self.project_name,
                "domain": {"id": self.project_domain_id},
            }
        token_domain: dict[str, Any] = {}
        if self.domain_id:
            token_domain = {"id": self.domain_id, "name": self.domain_name}
        creds = {
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "roles": list(self.roles),
            "trust_id": self.trust_id,
            "trustor_id": self.trustor_user_id,
            "trustee_id": self.trustee_user_id,
            "is_admin_project": self.is_admin_project,
            "token": {
                "user": {"id": self.user_id, "domain": {"id": self.user_domain_id}},
                "project": token_project,
                "domain": token_domain,
            },
        }
        # Absent, not None: "domain_id:%(target.x)s" with both sides None would
        # otherwise compare "None" == "None" and pass.
        return {k: v for k, v in creds.items() if v is not None}
