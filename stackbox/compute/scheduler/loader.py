"""Find filters and weighers by name: built-in, entry point, or dotted path.

Writing a custom filter
-----------------------
A filter is a class with a method ``host_passes(host_state, spec) -> bool``, made
with no arguments. ``host_state`` is a ``stackbox.compute.scheduler.host_state.
HostState`` (host, nodename, aggregates, free_ram_mb, usable_vcpus, instance_ids,
stats ...) and ``spec`` a ``request_spec.RequestSpec`` (flavor, image_properties,
availability_zone, scheduler_hints via ``spec.hint(name)``, instance_group,
project_id). Return True to keep the host. For example, in ``mysite/filters.py``::

    from stackbox.compute.scheduler import filters

    class EvenHostsFilter(filters.BaseHostFilter):
        # Set when the answer cannot change as this request's servers are placed.
        run_filter_once_per_request = True

        def host_passes(self, host_state, spec):
            return host_state.host.endswith(("0", "2", "4", "6", "8"))

Subclassing ``filters.BaseHostFilter`` is optional (any class with ``host_passes``
works) but gives ``run_filter_once_per_request`` and ``filter_all``. Then name it
in the compute settings' ``enabled_filters`` by its dotted path
(``...,mysite.filters.EvenHostsFilter``; the module must be importable by the
stackbox process), or publish it from an installed package under the entry point
group ``stackbox.scheduler.filters``::

    [project.entry-points."stackbox.scheduler.filters"]
    EvenHostsFilter = "mysite.filters:EvenHostsFilter"

and list it as ``EvenHostsFilter``. A weigher is the same with ``weigh(host_state,
spec) -> float`` (higher wins; ``weighers.BaseHostWeigher`` adds normalization
bounds and per-aggregate multipliers), listed in ``weighers``, entry point group
``stackbox.scheduler.weighers``; its multiplier is given by its class name or its
``multiplier_option`` in the multipliers mapping.

Nova's dotted paths for built-in filters (``nova.scheduler.filters.compute_filter.
ComputeFilter``) name our built-ins, so an operator's Nova list works unchanged.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable, Mapping
from typing import Any

from stackbox.compute.scheduler import filters, weighers

FILTER_ENTRY_POINTS = "stackbox.scheduler.filters"
WEIGHER_ENTRY_POINTS = "stackbox.scheduler.weighers"


class LoadError(ValueError):
    """A filter or weigher name that resolves to nothing usable."""


def names_of(value: str | Iterable[str]) -> list[str]:
    """A comma separated setting or a list, as a clean list of names."""
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip() for item in items if item and item.strip()]


def load_filter(name: str) -> filters.BaseHostFilter:
    cls = _resolve(name, "filter", filters.BUILTIN, FILTER_ENTRY_POINTS, "host_passes")
    instance = _instantiate(cls, name, "filter")
    if isinstance(instance, filters.BaseHostFilter):
        return instance
    return _ForeignFilter(instance)


def load_filters(names: str | Iterable[str]) -> list[filters.BaseHostFilter]:
    return [load_filter(name) for name in names_of(names)]


def load_weigher(
    name: str, multipliers: Mapping[str, float] | None = None
) -> weighers.BaseHostWeigher:
    cls = _resolve(name, "weigher", weighers.BUILTIN, WEIGHER_ENTRY_POINTS, "weigh")
    instance = _instantiate(cls, name, "weigher")
    weigher = (
        instance if isinstance(instance, weighers.BaseHostWeigher) else _ForeignWeigher(instance)
    )
    multiplier = _multiplier(weigher, multipliers or {})
    if multiplier is not None:
        weigher.multiplier = multiplier
    return weigher


def load_weighers(
    names: str | Iterable[str], multipliers: Mapping[str, float] | None = None
) -> list[weighers.BaseHostWeigher]:
    return [load_weigher(name, multipliers) for name in names_of(names)]


def _multiplier(
    weigher: weighers.BaseHostWeigher, multipliers: Mapping[str, float]
) -> float | None:
    for key in (weigher.name, weigher.multiplier_option):
        if key and key in multipliers:
            return float(multipliers[key])
    return None


def _resolve(
    name: str, kind: str, builtin: Mapping[str, type[Any]], group: str, method: str
) -> type[Any]:
    if name in builtin:
        return builtin[name]
    found = _entry_point(name, group)
    if found is None and "." in name:
        found = _dotted(name, kind, builtin)
    if found is None:
        known = ", ".join(sorted(builtin))
        raise LoadError(
            f"unknown scheduler {kind} {name!r}: not a built-in ({known}), "
            f"not an entry point in {group!r} and not a dotted path module.Class"
        )
    if not isinstance(found, type) or not callable(getattr(found, method, None)):
        raise LoadError(f"scheduler {kind} {name!r} is not a class with a {method}() method")
    return found


def _entry_point(name: str, group: str) -> Any:
    for entry in importlib.metadata.entry_points(group=group):
        if entry.name == name:
            try:
                return entry.load()
            except Exception as exc:
                raise LoadError(f"entry point {name!r} in {group!r} failed to load: {exc}") from exc
    return None


def _dotted(path: str, kind: str, builtin: Mapping[str, type[Any]]) -> Any:
    module_name, _, attr = path.rpartition(".")
    if module_name.startswith("nova.scheduler.") and attr in builtin:
        return builtin[attr]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LoadError(f"scheduler {kind} {path!r}: cannot import {module_name!r}: {exc}") from exc
    if not hasattr(module, attr):
        raise LoadError(f"scheduler {kind} {path!r}: module {module_name!r} has no {attr!r}")
    return getattr(module, attr)


def _instantiate(cls: type[Any], name: str, kind: str) -> Any:
    try:
        return cls()
    except TypeError as exc:
        raise LoadError(
            f"scheduler {kind} {name!r} cannot be made without arguments: {exc}"
        ) from exc


class _ForeignFilter(filters.BaseHostFilter):
    """A filter class that does not subclass BaseHostFilter, adapted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # Instance attributes shadow the class defaults the scheduler reads.
        self.run_filter_once_per_request = bool(
            getattr(inner, "run_filter_once_per_request", False)
        )

    @property
    def name(self) -> str:
        return type(self.inner).__name__

    def host_passes(self, host_state: Any, spec: Any) -> bool:
        return bool(self.inner.host_passes(host_state, spec))


class _ForeignWeigher(weighers.BaseHostWeigher):
    """A weigher class that does not subclass BaseHostWeigher, adapted."""

    def __init__(self, inner: Any) -> None:
        super().__init__(float(getattr(inner, "multiplier", 1.0)))
        self.inner = inner

    @property
    def name(self) -> str:
        return type(self.inner).__name__

    def weigh(self, host_state: Any, spec: Any) -> float:
        return float(self.inner.weigh(host_state, spec))
