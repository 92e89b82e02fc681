"""Host weighers: which of the hosts that passed the filters is best.

As in Nova, each weigher gives every host a raw weight; the raw weights are
normalized to 0..1 across the hosts (against the weigher's ``minval``/``maxval``
where it fixes them, else the lowest and highest seen; all equal gives 0), then
multiplied by the weigher's multiplier and summed. The highest total wins.

A multiplier comes from the scheduler's settings (``ram_weight_multiplier`` ...)
and may be overridden per host by the same key in its aggregates' metadata (the
lowest value wins where aggregates disagree), as Nova does. A negative RAM, CPU or
disk multiplier stacks servers instead of spreading them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

from stackbox.compute.scheduler.host_state import HostState
from stackbox.compute.scheduler.request_spec import RequestSpec

LOG = logging.getLogger(__name__)


class BaseHostWeigher:
    """A weigher. Subclass it and implement ``weigh``; higher weights win."""

    # The setting (and aggregate metadata key) holding this weigher's multiplier.
    multiplier_option: ClassVar[str | None] = None
    minval: ClassVar[float | None] = None
    maxval: ClassVar[float | None] = None

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    @property
    def name(self) -> str:
        return type(self).__name__

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        raise NotImplementedError

    def weigh_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[float]:
        """Raw weights, clamped to ``minval``/``maxval``."""
        weights = [self.weigh(host, spec) for host in hosts]
        if self.minval is not None:
            low = self.minval
            weights = [max(weight, low) for weight in weights]
        if self.maxval is not None:
            high = self.maxval
            weights = [min(weight, high) for weight in weights]
        return weights

    def multipliers_for(self, hosts: Sequence[HostState]) -> list[float]:
        """Each host's multiplier; one pass finds whether any aggregate overrides it."""
        option = self.multiplier_option
        overridden = option is not None and any(
            option in agg.metadata for host in hosts for agg in host.aggregates
        )
        if not overridden:
            return [self.multiplier] * len(hosts)
        return [self.multiplier_for(host) for host in hosts]

    def multiplier_for(self, host_state: HostState) -> float:
        if not self.multiplier_option or not host_state.aggregates:
            return self.multiplier
        values = host_state.aggregate_values(self.multiplier_option)
        if not values:
            return self.multiplier
        try:
            return min(float(value) for value in values)
        except ValueError:
            LOG.warning(
                "host %s: aggregate %s is not a number: %s",
                host_state.host,
                self.multiplier_option,
                sorted(values),
            )
            return self.multiplier


class RAMWeigher(BaseHostWeigher):
    """More free RAM is better (spreads by default)."""

    multiplier_option = "ram_weight_multiplier"
    minval = 0

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return host_state.free_ram_mb


class CPUWeigher(BaseHostWeigher):
    """More vCPUs left under the allocation ratio is better."""

    multiplier_option = "cpu_weight_multiplier"
    minval = 0

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return host_state.usable_vcpus


class DiskWeigher(BaseHostWeigher):
    """More free local disk is better."""

    multiplier_option = "disk_weight_multiplier"
    minval = 0

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return host_state.free_disk_mb


class NumInstancesWeigher(BaseHostWeigher):
    """More servers is better with a positive multiplier (packs); Nova's default is 0."""

    multiplier_option = "num_instances_weight_multiplier"

    def __init__(self, multiplier: float = 0.0) -> None:
        super().__init__(multiplier)

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        return host_state.num_instances


class _GroupMembersWeigher(BaseHostWeigher):
    policy: ClassVar[str] = ""
    sign: ClassVar[int] = 1

    def weigh(self, host_state: HostState, spec: RequestSpec) -> float:
        group = spec.instance_group
        if group is None or group.policy != self.policy:
            return 0
        return self.sign * group.count_on(host_state.host)

    def weigh_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[float]:
        group = spec.instance_group
        if group is None or group.policy != self.policy:
            return [0.0] * len(hosts)
        return super().weigh_all(hosts, spec)


class ServerGroupSoftAffinityWeigher(_GroupMembersWeigher):
    """``soft-affinity``: prefer hosts with more of the group's members."""

    multiplier_option = "soft_affinity_weight_multiplier"
    policy = "soft-affinity"


class ServerGroupSoftAntiAffinityWeigher(_GroupMembersWeigher):
    """``soft-anti-affinity``: prefer hosts with fewer of the group's members."""

    multiplier_option = "soft_anti_affinity_weight_multiplier"
    policy = "soft-anti-affinity"
    sign = -1


def normalize(
    weights: Sequence[float], minval: float | None = None, maxval: float | None = None
) -> list[float]:
    """Scale to 0..1 against the given or observed bounds; all equal gives zeros."""
    if not weights:
        return []
    low = min(weights) if minval is None else float(minval)
    high = max(weights) if maxval is None else float(maxval)
    if low == high:
        return [0.0] * len(weights)
    span = high - low
    return [(weight - low) / span for weight in weights]


def weigh_hosts(
    weighers: Sequence[BaseHostWeigher], hosts: Sequence[HostState], spec: RequestSpec
) -> list[tuple[float, HostState]]:
    """(total weight, host) for every host, best first; ties keep the given order."""
    totals = [0.0] * len(hosts)
    if len(hosts) > 1:
        for weigher in weighers:
            raw = weigher.weigh_all(hosts, spec)
            scaled = normalize(raw, weigher.minval, weigher.maxval)
            if not any(scaled):
                continue
            multipliers = weigher.multipliers_for(hosts)
            totals = [
                total + multiplier * weight
                for total, multiplier, weight in zip(totals, multipliers, scaled, strict=True)
            ]
    order = sorted(range(len(hosts)), key=lambda index: totals[index], reverse=True)
    return [(totals[index], hosts[index]) for index in order]


BUILTIN: dict[str, type[BaseHostWeigher]] = {
    cls.__name__: cls
    for cls in (
        RAMWeigher,
        CPUWeigher,
        DiskWeigher,
        NumInstancesWeigher,
        ServerGroupSoftAffinityWeigher,
        ServerGroupSoftAntiAffinityWeigher,
    )
}

DEFAULT_WEIGHERS = (
    "RAMWeigher",
    "CPUWeigher",
    "DiskWeigher",
    "ServerGroupSoftAffinityWeigher",
    "ServerGroupSoftAntiAffinityWeigher",
)
