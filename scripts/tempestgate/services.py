"""services.toml: the Tempest API packages, how the catalog names them, what each runs."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from tempestgate import paths


@dataclass(frozen=True)
class Service:
    name: str  # the package under tempest.api
    catalog_types: tuple[str, ...]
    service_available: str  # the [service_available] option, "" if Tempest has none
    absent_reason: str
    gate: tuple[str, ...]
    full: tuple[str, ...]


def load() -> list[Service]:
    data = tomllib.loads(paths.SERVICES.read_text())
    return [
        Service(
            name=name,
            catalog_types=tuple(spec["catalog_types"]),
            service_available=spec.get("service_available", ""),
            absent_reason=spec.get("absent_reason", ""),
            gate=tuple(spec.get("gate", ())),
            full=tuple(spec.get("full", ())),
        )
        for name, spec in data.items()
    ]


def present(services: list[Service], catalog_types: set[str]) -> set[str]:
    """Names of the services the catalog offers."""
    return {s.name for s in services if catalog_types.intersection(s.catalog_types)}
