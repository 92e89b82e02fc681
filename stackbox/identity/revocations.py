"""Revocation events: which already-issued tokens stop validating.

Everything a token resolves to (user and project enabled, roles, trust, app
credential) is re-checked at validation, so events are needed only where a later
change could bring a token back to life: an explicit revoke (by audit id), a
password change or a disable of a user, project or domain (re-enabling must not
revive old tokens). Events live in the database and, indexed, in memory.
"""

from __future__ import annotations

import datetime
import threading

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stackbox.db import session as db_session
from stackbox.identity import models

FIELDS = ("audit_id", "user_id", "project_id", "domain_id", "trust_id", "app_cred_id")


class RevocationIndex:
    def __init__(self) -> None:
        # field -> value -> latest issued_before for that value
        self._by_field: dict[str, dict[str, datetime.datetime]] = {f: {} for f in FIELDS}
        self._lock = threading.Lock()

    def load(self, session: Session) -> None:
        with self._lock:
            self._by_field = {f: {} for f in FIELDS}
            for event in session.scalars(select(models.RevocationEvent)):
                self._add(event)

    def _add(self, event: models.RevocationEvent) -> None:
        for field in FIELDS:
            value = getattr(event, field)
            if value is not None:
                index = self._by_field[field]
                current = index.get(value)
                if current is None or current < event.issued_before:
                    index[value] = event.issued_before
                break  # events carry one identifying field

    def add(self, event: models.RevocationEvent) -> None:
        with self._lock:
            self._add(event)

    def is_revoked(
        self,
        issued_at: datetime.datetime,
        *,
        audit_ids: tuple[str, ...] = (),
        user_ids: tuple[str, ...] = (),
        project_id: str | None = None,
        domain_ids: tuple[str, ...] = (),
        trust_id: str | None = None,
        app_cred_id: str | None = None,
    ) -> bool:
        checks: list[tuple[str, str | None]] = [("audit_id", a) for a in audit_ids]
        checks += [("user_id", u) for u in user_ids]
        checks += [("project_id", project_id), ("trust_id", trust_id)]
        checks += [("domain_id", d) for d in domain_ids]
        checks.append(("app_cred_id", app_cred_id))
        for field, value in checks:
            if value is None:
                continue
            before = self._by_field[field].get(value)
            if before is not None and issued_at <= before:
                return True
        return False


INDEX = RevocationIndex()


def revoke(session: Session, **fields: str | None) -> None:
    """Record an event revoking tokens issued until now that match the one field given."""
    given = {k: v for k, v in fields.items() if v is not None}
    if len(given) != 1 or next(iter(given)) not in FIELDS:
        raise ValueError(f"a revocation event names exactly one of {FIELDS}")
    now = models.utcnow()
    event = models.RevocationEvent(issued_before=now, revoked_at=now, **given)
    session.add(event)
    db_session.after_commit(session, lambda: INDEX.add(event))


def prune(session: Session, older_than: datetime.datetime) -> int:
    """Drop events no unexpired token can be older than."""
    result = session.execute(
        delete(models.RevocationEvent).where(models.RevocationEvent.revoked_at < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
