"""Identity tables.

Domains are projects with ``is_domain`` set, as in Keystone, so a project that
acts as a domain and the domain API see the same row. Nullable parts of unique
keys use sentinels (``ROOT_DOMAIN``, ``GLOBAL``) because SQL treats NULLs as
distinct in unique constraints.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from stackbox.db.base import ID, Base, JSONText, utcnow

# domain_id of a row that is itself a domain.
ROOT_DOMAIN = "<<root>>"
# domain_id of a global (not domain-specific) role.
GLOBAL = "<<global>>"


class Region(Base):
    __tablename__ = "identity_region"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    parent_region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class Project(Base):
    __tablename__ = "identity_project"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    domain_id: Mapped[str] = mapped_column(ID, index=True)
    parent_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    is_domain: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class ProjectTag(Base):
    __tablename__ = "identity_project_tag"
    project_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_project.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)


class User(Base):
    __tablename__ = "identity_user"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(ID, index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    last_active_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    failed_auth_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_auth_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class Password(Base):
    """Every password a user has had; the newest is the current one (history rules)."""

    __tablename__ = "identity_password"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_user.id", ondelete="CASCADE"), index=True
    )
    hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    self_service: Mapped[bool] = mapped_column(Boolean, default=False)


class Group(Base):
    __tablename__ = "identity_group"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(ID, index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class GroupMembership(Base):
    __tablename__ = "identity_group_membership"
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_user.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_group.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Role(Base):
    __tablename__ = "identity_role"
    __table_args__ = (UniqueConstraint("name", "domain_id"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(ID, default=GLOBAL)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class ImpliedRole(Base):
    __tablename__ = "identity_implied_role"
    prior_role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_role.id", ondelete="CASCADE"), primary_key=True
    )
    implied_role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_role.id", ondelete="CASCADE"), primary_key=True
    )


class Assignment(Base):
    """A role granted to a user or group on a project, a domain or the system."""

    __tablename__ = "identity_assignment"
    __table_args__ = (
        Index("ix_identity_assignment_target", "target_type", "target_id"),
        Index("ix_identity_assignment_actor", "actor_type", "actor_id"),
    )
    actor_type: Mapped[str] = mapped_column(String(8), primary_key=True)  # user | group
    actor_id: Mapped[str] = mapped_column(ID, primary_key=True)
    target_type: Mapped[str] = mapped_column(String(8), primary_key=True)  # project|domain|system
    target_id: Mapped[str] = mapped_column(ID, primary_key=True)
    role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_role.id", ondelete="CASCADE"), primary_key=True
    )
    inherited: Mapped[bool] = mapped_column(Boolean, primary_key=True, default=False)


class Service(Base):
    __tablename__ = "identity_service"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class Endpoint(Base):
    __tablename__ = "identity_endpoint"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    service_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_service.id", ondelete="CASCADE"), index=True
    )
    interface: Mapped[str] = mapped_column(String(8))
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    url: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class EndpointGroup(Base):
    __tablename__ = "identity_endpoint_group"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    filters: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class ProjectEndpoint(Base):
    __tablename__ = "identity_project_endpoint"
    endpoint_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class ProjectEndpointGroup(Base):
    __tablename__ = "identity_project_endpoint_group"
    endpoint_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_endpoint_group.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class Credential(Base):
    """A user's credential; the blob is encrypted with the credential key repository."""

    __tablename__ = "identity_credential"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    type: Mapped[str] = mapped_column(String(255))
    encrypted_blob: Mapped[bytes] = mapped_column(LargeBinary)
    key_hash: Mapped[str] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class PolicyBlob(Base):
    """OS-POLICY: an opaque policy document stored for other services."""

    __tablename__ = "identity_policy_blob"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    blob: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class Consumer(Base):
    """OS-OAUTH1 consumer."""

    __tablename__ = "identity_oauth1_consumer"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret: Mapped[str] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class DomainConfig(Base):
    __tablename__ = "identity_domain_config"
    domain_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_project.id", ondelete="CASCADE"), primary_key=True
    )
    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    option: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONText)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)


class ApplicationCredential(Base):
    __tablename__ = "identity_app_cred"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_user.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    system: Mapped[str | None] = mapped_column(String(16), nullable=True)
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class ApplicationCredentialRole(Base):
    __tablename__ = "identity_app_cred_role"
    app_cred_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_app_cred.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(ID, primary_key=True)


class AccessRule(Base):
    __tablename__ = "identity_access_rule"
    __table_args__ = (UniqueConstraint("user_id", "service", "path", "method"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_user.id", ondelete="CASCADE"), index=True
    )
    service: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(16))


class ApplicationCredentialAccessRule(Base):
    __tablename__ = "identity_app_cred_access_rule"
    app_cred_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_app_cred.id", ondelete="CASCADE"), primary_key=True
    )
    access_rule_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_access_rule.id", ondelete="CASCADE"), primary_key=True
    )


class Trust(Base):
    __tablename__ = "identity_trust"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    trustor_user_id: Mapped[str] = mapped_column(ID, index=True)
    trustee_user_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    impersonation: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    remaining_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    allow_redelegation: Mapped[bool] = mapped_column(Boolean, default=False)
    redelegation_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redelegated_trust_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)


class TrustRole(Base):
    __tablename__ = "identity_trust_role"
    trust_id: Mapped[str] = mapped_column(
        ID, ForeignKey("identity_trust.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(ID, primary_key=True)


class RevocationEvent(Base):
    """Tokens issued until ``issued_before`` that match the one set field are revoked."""

    __tablename__ = "identity_revocation_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    audit_chain_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    domain_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    trust_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    app_cred_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    issued_before: Mapped[datetime.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, index=True)
