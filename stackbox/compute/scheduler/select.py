"""Choose hosts for a request: Nova's filter scheduler, and the ``chance`` driver.

For each server of the request: narrow the hosts (requested destination, ignored
and forced hosts), filter them, weigh the survivors, take one of the best
``host_subset_size`` at random, and charge the server to it in memory (its
resources, and its server group's count), so the next server of the same request
sees the host as it will be. Filters marked ``run_filter_once_per_request`` run for
the first server only, and later servers choose among the hosts that passed for the
one before, as in Nova.

The host states and the spec's server group are changed in place: build fresh ones
for every request. When no host is left, ``NoValidHost`` says which filters
eliminated how many hosts.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterable, Mapping, Sequence

from stackbox.compute.scheduler import filters, loader, weighers
from stackbox.compute.scheduler.host_state import HostState
from stackbox.compute.scheduler.request_spec import RequestSpec

LOG = logging.getLogger(__name__)
DRIVERS = ("filter", "chance")
MULTIPLIER_OPTIONS = (
    "ram_weight_multiplier",
    "cpu_weight_multiplier",
    "disk_weight_multiplier",
    "num_instances_weight_multiplier",
    "soft_affinity_weight_multiplier",
    "soft_anti_affinity_weight_multiplier",
)


@dataclasses.dataclass(frozen=True)
class FilterResult:
    """How many hosts one filter received and let through."""

    name: str
    start: int
    end: int

    @property
    def eliminated(self) -> int:
        return self.start - self.end

    def __str__(self) -> str:
        noun = "host" if self.start == 1 else "hosts"
        return f"{self.name} eliminated {self.eliminated} of {self.start} {noun}"


class NoValidHost(Exception):
    """No host can take (one of) the servers. ``str()`` is the fault message."""

    def __init__(
        self,
        reason: str,
        filter_results: Sequence[FilterResult] = (),
        placed: int = 0,
        requested: int = 1,
    ) -> None:
        self.reason = reason
        self.filter_results = list(filter_results)
        self.placed = placed
        self.requested = requested
        super().__init__(f"No valid host was found. {reason}")

    @property
    def message(self) -> str:
        return str(self)


class FilterScheduler:
    """The scheduler of one controller: its filters, weighers and driver."""

    def __init__(
        self,
        enabled_filters: str | Iterable[str | filters.BaseHostFilter] = filters.DEFAULT_FILTERS,
        weigher_classes: str | Iterable[str | weighers.BaseHostWeigher] = weighers.DEFAULT_WEIGHERS,
        multipliers: Mapping[str, float] | None = None,
        host_subset_size: int = 1,
        driver: str = "filter",
        shuffle_best_same_weighed_hosts: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if driver not in DRIVERS:
            raise loader.LoadError(f"unknown scheduler driver {driver!r} (known: filter, chance)")
        if host_subset_size < 1:
            raise ValueError("host_subset_size must be at least 1")
        self.driver = driver
        self.host_subset_size = host_subset_size
        self.shuffle_best_same_weighed_hosts = shuffle_best_same_weighed_hosts
        self.rng = rng or random.Random()
        if driver == "chance":
            self.filters = loader.load_filters(filters.CHANCE_FILTERS)
            self.weighers: list[weighers.BaseHostWeigher] = []
        else:
            self.filters = _filters(enabled_filters)
            self.weighers = _weighers(weigher_classes, multipliers)

    @classmethod
    def from_settings(cls, settings: object, rng: random.Random | None = None) -> FilterScheduler:
        """Built from ``config.ComputeSettings`` (``scheduler_driver``,
        ``enabled_filters``, ``weighers``, the ``*_weight_multiplier`` values and
        ``host_subset_size``)."""
        multipliers = {
            option: float(getattr(settings, option))
            for option in MULTIPLIER_OPTIONS
            if hasattr(settings, option)
        }
        return cls(
            enabled_filters=getattr(settings, "enabled_filters", filters.DEFAULT_FILTERS),
            weigher_classes=getattr(settings, "weighers", weighers.DEFAULT_WEIGHERS),
            multipliers=multipliers,
            host_subset_size=int(getattr(settings, "host_subset_size", 1)),
            driver=getattr(settings, "scheduler_driver", "filter"),
            rng=rng,
        )

    # --- the decision -----------------------------------------------------------------------

    def select(
        self,
        hosts: Sequence[HostState],
        spec: RequestSpec,
        instance_ids: Sequence[str] | None = None,
    ) -> list[HostState]:
        """One host per server of ``spec`` (``spec.num_instances``), in order.

        ``instance_ids``, when given, name the servers being placed: each is added
        to its host's ``instance_ids`` (and its group's members) as it is placed.
        Raises NoValidHost when some server has no host; the hosts chosen before it
        stay charged in the host states (the caller rolls its transaction back).
        """
        if instance_ids is not None and len(instance_ids) != spec.num_instances:
            raise ValueError("instance_ids must name every server of the request")
        candidates, narrowed_by = self._candidates(hosts, spec)
        chain = self._chain(spec)
        chosen: list[HostState] = []
        pool = candidates
        for index in range(spec.num_instances):
            passed, results = self._run_filters(chain, pool, spec, index)
            if not passed:
                raise self._failure(candidates, narrowed_by, chain, spec, index)
            host = self._pick(passed, spec)
            instance_id = instance_ids[index] if instance_ids else None
            host.consume(spec, instance_id)
            if spec.instance_group is not None:
                spec.instance_group.add(host.host, instance_id)
            chosen.append(host)
            pool = passed
            LOG.debug("server %d of %d: %s (%s)", index + 1, spec.num_instances, host, results)
        return chosen

    def passing_hosts(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        """The hosts the first server of ``spec`` could go to, best first; nothing is
        consumed."""
        candidates, _ = self._candidates(hosts, spec)
        passed, _ = self._run_filters(self._chain(spec), candidates, spec, 0)
        if self.driver == "chance":
            return passed
        return [host for _, host in weighers.weigh_hosts(self.weighers, passed, spec)]

    def _chain(self, spec: RequestSpec) -> list[filters.BaseHostFilter]:
        # A forced host skips the policy filters, not the ones standing in for placement.
        if spec.forced:
            return [f for f in self.filters if f.runs_when_forced]
        return self.filters

    @staticmethod
    def _candidates(
        hosts: Sequence[HostState], spec: RequestSpec
    ) -> tuple[list[HostState], str | None]:
        """The hosts filters get, and what emptied the list when nothing is left."""
        found = list(hosts)
        if not found:
            return [], "no compute host is registered"
        if spec.requested_host or spec.requested_node:
            found = [
                h
                for h in found
                if (not spec.requested_host or h.host == spec.requested_host)
                and (not spec.requested_node or h.nodename == spec.requested_node)
            ]
            if not found:
                wanted = spec.requested_node or spec.requested_host
                return [], f"no compute host matches the requested destination {wanted!r}"
        if spec.ignore_hosts:
            ignored = {name.lower() for name in spec.ignore_hosts}
            found = [h for h in found if h.host.lower() not in ignored]
            if not found:
                return [], "every compute host is in the request's ignore list"
        if spec.force_hosts:
            forced = {name.lower() for name in spec.force_hosts}
            found = [h for h in found if h.host.lower() in forced]
            if not found:
                names = ", ".join(spec.force_hosts)
                return [], f"no compute host matches the forced host {names!r}"
        if spec.force_nodes:
            found = [h for h in found if h.nodename in spec.force_nodes]
            if not found:
                names = ", ".join(spec.force_nodes)
                return [], f"no compute node matches the forced node {names!r}"
        return found, None

    @staticmethod
    def _run_filters(
        chain: Sequence[filters.BaseHostFilter],
        hosts: list[HostState],
        spec: RequestSpec,
        index: int,
    ) -> tuple[list[HostState], list[FilterResult]]:
        results: list[FilterResult] = []
        for host_filter in chain:
            if index > 0 and host_filter.run_filter_once_per_request:
                continue
            start = len(hosts)
            hosts = host_filter.filter_all(hosts, spec)
            results.append(FilterResult(host_filter.name, start, len(hosts)))
            if not hosts:
                break
        return hosts, results

    def _pick(self, passed: list[HostState], spec: RequestSpec) -> HostState:
        if self.driver == "chance":
            return self.rng.choice(passed)
        weighed = weighers.weigh_hosts(self.weighers, passed, spec)
        if self.shuffle_best_same_weighed_hosts:
            best = [entry for entry in weighed if entry[0] == weighed[0][0]]
            self.rng.shuffle(best)
            weighed = best + weighed[len(best) :]
        subset = weighed[: self.host_subset_size]
        return subset[0][1] if len(subset) == 1 else self.rng.choice(subset)[1]

    def _failure(
        self,
        candidates: list[HostState],
        narrowed_by: str | None,
        chain: Sequence[filters.BaseHostFilter],
        spec: RequestSpec,
        index: int,
    ) -> NoValidHost:
        reason = "There are not enough hosts available"
        if spec.num_instances > 1:
            reason += f" for server {index + 1} of {spec.num_instances}"
        if narrowed_by:
            return NoValidHost(f"{reason}: {narrowed_by}.", (), index, spec.num_instances)
        # Later servers only see the survivors of earlier rounds; rerun every filter
        # over every candidate (as charged so far) so the reasons cover all hosts.
        _, results = self._run_filters(chain, candidates, spec, 0)
        blamed = [result for result in results if result.eliminated]
        detail = "; ".join(str(result) for result in blamed) or "no filter passed a host"
        noun = "host" if len(candidates) == 1 else "hosts"
        return NoValidHost(
            f"{reason}: {len(candidates)} {noun} considered; {detail}.",
            results,
            index,
            spec.num_instances,
        )


def _filters(
    names: str | Iterable[str | filters.BaseHostFilter],
) -> list[filters.BaseHostFilter]:
    if isinstance(names, str):
        return loader.load_filters(names)
    return [
        item if isinstance(item, filters.BaseHostFilter) else loader.load_filter(item)
        for item in names
    ]


def _weighers(
    names: str | Iterable[str | weighers.BaseHostWeigher], multipliers: Mapping[str, float] | None
) -> list[weighers.BaseHostWeigher]:
    if isinstance(names, str):
        return loader.load_weighers(names, multipliers)
    return [
        item
        if isinstance(item, weighers.BaseHostWeigher)
        else loader.load_weigher(item, multipliers)
        for item in names
    ]
