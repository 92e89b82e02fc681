"""Example custom scheduler plugins, loaded by dotted path in the scheduler tests.

``HostPrefixFilter`` is what an operator writes: a ``BaseHostFilter`` subclass with
``host_passes``. ``EvenHostsFilter`` and ``LowestNameWeigher`` show that plain
classes with the right method work too.
"""

from __future__ import annotations

from stackbox.compute.scheduler import filters
from stackbox.compute.scheduler.host_state import HostState
from stackbox.compute.scheduler.request_spec import RequestSpec


class HostPrefixFilter(filters.BaseHostFilter):
    """Keep hosts whose name starts with the ``host_prefix`` scheduler hint."""

    run_filter_once_per_request = True

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        prefix = spec.hint("host_prefix")
        return not prefix or host_state.host.startswith(str(prefix))


class EvenHostsFilter:
    """Keep hosts whose name ends in an even digit."""

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        return host_state.host[-1:] in "02468"


class LowestNameWeigher:
    """Prefer hosts whose name sorts first (weight: minus the last digit)."""

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return -int(host_state.host[-1])


class NeedsArgumentFilter(filters.BaseHostFilter):
    """Cannot be loaded: a filter is made with no arguments."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        return host_state.num_instances < self.limit


NOT_A_FILTER = 42
