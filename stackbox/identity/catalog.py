"""The service catalog as tokens carry it."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.identity import models

_SUBST = re.compile(r"\$\((\w+)\)s|%\((\w+)\)s")


def _substitute(url: str, values: dict[str, str | None]) -> str | None:
    """Fill ``$(project_id)s``-style placeholders; None if one cannot be filled."""
    missing = False

    def repl(match: re.Match[str]) -> str:
        nonlocal missing
        key = match.group(1) or match.group(2)
        value = values.get(key)
        if value is None:
            missing = True
            return ""
        return value

    result = _SUBST.sub(repl, url)
    return None if missing else result


def build(
    session: Session,
    user_id: str | None,
    project_id: str | None,
    allowed: set[str] | None = None,
) -> list[dict[str, Any]]:
    """The catalog; with ``allowed``, only those endpoints (a project's endpoint filter),
    and services left without endpoints are dropped, as Keystone's SQL catalog does."""
    values: dict[str, str | None] = {
        "tenant_id": project_id,
        "project_id": project_id,
        "user_id": user_id,
    }
    services = session.scalars(
        select(models.Service).where(models.Service.enabled.is_(True)).order_by(models.Service.type)
    ).all()
    endpoints = session.scalars(
        select(models.Endpoint).where(models.Endpoint.enabled.is_(True))
    ).all()
    by_service: dict[str, list[models.Endpoint]] = {}
    for endpoint in endpoints:
        by_service.setdefault(endpoint.service_id, []).append(endpoint)
    catalog = []
    for service in services:
        rendered = []
        for endpoint in sorted(by_service.get(service.id, []), key=lambda e: e.interface):
            if allowed is not None and endpoint.id not in allowed:
                continue
            full = _substitute(endpoint.url, values)
            if full is None:
                continue
            rendered.append(
                {
                    "id": endpoint.id,
                    "interface": endpoint.interface,
                    "region_id": endpoint.region_id,
                    "region": endpoint.region_id,
                    "url": full,
                }
            )
        if allowed is not None and not rendered:
            continue
        catalog.append(
            {
                "endpoints": rendered,
                "id": service.id,
                "type": service.type,
                "name": service.extra.get("name", ""),
            }
        )
    return catalog
