"""Host filters: each says whether one host may take one server of a request.

Nova's filters, with the resource filters Nova now leaves to placement (RAM, cores,
disk under the allocation ratios) done here. A filter marked
``run_filter_once_per_request`` looks only at facts that placing this request's
earlier servers cannot change, so the scheduler runs it for the first server only.
A filter marked ``runs_when_forced`` stands in for what Nova checks even for a
forced host (placement's inventory and the disabled-compute trait); the others are
skipped when an admin forces a host, as in Nova.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from oslo_utils import versionutils

from stackbox.compute.scheduler import json_query, spec_ops
from stackbox.compute.scheduler.host_state import HostState
from stackbox.compute.scheduler.request_spec import RequestSpec


class BaseHostFilter:
    """A host filter. Subclass it and implement ``host_passes``."""

    run_filter_once_per_request: bool = False
    runs_when_forced: bool = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def applies(self, spec: RequestSpec) -> bool:
        """False when the request does not ask what this filter checks (no hint, no
        group): every host passes without being looked at."""
        return True

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        raise NotImplementedError

    def filter_all(self, hosts: Iterable[HostState], spec: RequestSpec) -> list[HostState]:
        """The hosts that pass. Override to decide on all hosts at once."""
        if not self.applies(spec):
            return list(hosts)
        return [host for host in hosts if self.host_passes(host, spec)]


class AllHostsFilter(BaseHostFilter):
    """Every host passes (a no-op, for a scheduler that only weighs)."""

    run_filter_once_per_request = True

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        return True


class ComputeFilter(BaseHostFilter):
    """The host's compute service is up and not disabled."""

    run_filter_once_per_request = True
    runs_when_forced = True

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        return host_state.service_up and not host_state.service_disabled


class AvailabilityZoneFilter(BaseHostFilter):
    """The host is in the requested zone (its aggregates' zones, else its own)."""

    run_filter_once_per_request = True

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.availability_zone)

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        if not spec.availability_zone:
            return True
        return spec.availability_zone in host_state.availability_zones()


class RamFilter(BaseHostFilter):
    """Enough RAM under ``ram_allocation_ratio``."""

    runs_when_forced = True

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        return host_state.fits_ram(spec.memory_mb)


class CoreFilter(BaseHostFilter):
    """Enough vCPUs under ``cpu_allocation_ratio``."""

    runs_when_forced = True

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        return host_state.fits_vcpus(spec.vcpus)


class DiskFilter(BaseHostFilter):
    """Enough local disk (root + ephemeral + swap) under ``disk_allocation_ratio``."""

    runs_when_forced = True

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        return host_state.fits_disk(spec.disk_gb)


class NumInstancesFilter(BaseHostFilter):
    """Fewer than ``max_instances_per_host`` servers on the host (Nova's default 50)."""

    def __init__(self, max_instances_per_host: int = 50) -> None:
        self.max_instances_per_host = max_instances_per_host

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        return host_state.num_instances < self.max_instances_per_host


class ServerGroupAffinityFilter(BaseHostFilter):
    """An ``affinity`` group's servers all go to the host its members are on."""

    def applies(self, spec: RequestSpec) -> bool:
        return spec.instance_group is not None and spec.instance_group.policy == "affinity"

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        group = spec.instance_group
        if group is None or group.policy != "affinity":
            return True
        group_hosts = {host for host, count in group.hosts.items() if count > 0}
        return not group_hosts or host_state.host in group_hosts


class ServerGroupAntiAffinityFilter(BaseHostFilter):
    """An ``anti-affinity`` group has at most ``max_server_per_host`` members per host."""

    def applies(self, spec: RequestSpec) -> bool:
        return spec.instance_group is not None and spec.instance_group.policy == "anti-affinity"

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        group = spec.instance_group
        if group is None or group.policy != "anti-affinity":
            return True
        # A server being moved may stay where it is.
        if spec.instance_id and spec.instance_id in host_state.instance_ids:
            return True
        return group.count_on(host_state.host) < group.max_server_per_host


class SameHostFilter(BaseHostFilter):
    """The ``same_host`` hint: a host running one of the named servers."""

    run_filter_once_per_request = True

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.hint_values("same_host"))

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        wanted = spec.hint_values("same_host")
        return not wanted or not host_state.instance_ids.isdisjoint(wanted)


class DifferentHostFilter(BaseHostFilter):
    """The ``different_host`` hint: a host running none of the named servers."""

    run_filter_once_per_request = True

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.hint_values("different_host"))

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        avoided = spec.hint_values("different_host")
        return not avoided or host_state.instance_ids.isdisjoint(avoided)


@functools.lru_cache(maxsize=256)
def _parsed_query(text: str) -> list[Any] | None:
    return json_query.parse(text)


class JsonFilter(BaseHostFilter):
    """The ``query`` hint, in Nova's JSON query language (see ``json_query``).

    A malformed query passes no host (the API should have refused it with
    ``json_query.parse``); queries may read usage, so this runs for every server.
    """

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.hint("query"))

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        hint = spec.hint("query")
        if not hint:
            return True
        try:
            query = _parsed_query(hint) if isinstance(hint, str) else json_query.parse(hint)
        except json_query.InvalidQuery:
            return False
        return query is None or json_query.evaluate(query, host_state)


_ARCH_ALIASES = {
    "i386": "i686",
    "i486": "i686",
    "i586": "i686",
    "x86_32": "i686",
    "x86_32p": "i686",
    "amd64": "x86_64",
}
_HV_TYPE_ALIASES = {"xapi": "xen"}
_VM_MODE_ALIASES = {"pv": "xen", "hv": "hvm", "baremetal": "hvm"}
# Current property names first, then the legacy names Nova still maps onto them.
_ARCH_KEYS = ("hw_architecture", "architecture")
_HV_TYPE_KEYS = ("img_hv_type", "hypervisor_type")
_VM_MODE_KEYS = ("hw_vm_mode", "vm_mode")
_HV_VERSION_KEYS = ("img_hv_requested_version", "hypervisor_version_requires")


def _first(props: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = props.get(key)
        if value:
            return str(value)
    return None


def _canonical(value: str | None, aliases: dict[str, str]) -> str | None:
    if not value:
        return None
    lowered = value.lower()
    return aliases.get(lowered, lowered)


class ImagePropertiesFilter(BaseHostFilter):
    """The image's architecture, hypervisor type, vm mode and hypervisor version.

    A host advertises (arch, hv_type, vm_mode) triples in ``supported_instances``; an
    image naming any of the three needs a triple that has every one it names, and a
    ``img_hv_requested_version`` such as ``>=6.0,<6.2`` the host's version in range.
    """

    run_filter_once_per_request = True

    def __init__(self, default_architecture: str | None = None) -> None:
        self.default_architecture = default_architecture

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        props = spec.image_properties
        wanted = (
            _canonical(_first(props, _ARCH_KEYS) or self.default_architecture, _ARCH_ALIASES),
            _canonical(_first(props, _HV_TYPE_KEYS), _HV_TYPE_ALIASES),
            _canonical(_first(props, _VM_MODE_KEYS), _VM_MODE_ALIASES),
        )
        if not any(wanted):
            return True
        if not self._version_ok(host_state.hypervisor_version, _first(props, _HV_VERSION_KEYS)):
            return False
        for triple in host_state.supported_instances:
            offered = [
                _canonical(item, aliases)
                for item, aliases in zip(
                    triple, (_ARCH_ALIASES, _HV_TYPE_ALIASES, _VM_MODE_ALIASES), strict=False
                )
            ]
            if all(want is None or want in offered for want in wanted):
                return True
        return False

    @staticmethod
    def _version_ok(host_version: int, required: str | None) -> bool:
        if not (host_version and required):
            return True
        try:
            predicate = versionutils.VersionPredicate(required)
            return predicate.satisfied_by(versionutils.convert_version_to_str(host_version))
        except ValueError:
            return False


_EXTRA_SPECS_SCOPE = "aggregate_instance_extra_specs"


class AggregateInstanceExtraSpecsFilter(BaseHostFilter):
    """Flavor extra specs matched against the metadata of the host's aggregates.

    Keys scoped ``aggregate_instance_extra_specs:`` and unscoped keys count; other
    scopes (``hw:``, ``quota:`` ...) are for other parts and ignored. Each must match
    one of the aggregates' values for that key (``spec_ops``: ``s==``, ``<in>``,
    ``<or>``, ``>=`` ...); a key no aggregate has fails the host.
    """

    run_filter_once_per_request = True

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.flavor.extra_specs)

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        extra_specs = spec.flavor.extra_specs
        if not extra_specs:
            return True
        metadata: dict[str, set[str]] | None = None
        for key, requirement in extra_specs.items():
            scope, sep, bare = key.partition(":")
            if sep:
                if scope != _EXTRA_SPECS_SCOPE:
                    continue
                key = bare
            if metadata is None:
                metadata = host_state.aggregate_metadata()
            values = metadata.get(key)
            if not values:
                return False
            if not any(spec_ops.match(value, str(requirement)) for value in values):
                return False
        return True


class AggregateMultiTenancyIsolation(BaseHostFilter):
    """Hosts in an aggregate with ``filter_tenant_id*`` keys take only those projects."""

    run_filter_once_per_request = True

    def host_passes(self, host_state: HostState, spec: RequestSpec) -> bool:
        if not host_state.aggregates:
            return True
        allowed: set[str] = set()
        for key, values in host_state.aggregate_metadata().items():
            if key.startswith("filter_tenant_id"):
                allowed |= values
        return not allowed or spec.project_id in allowed


BUILTIN: dict[str, type[BaseHostFilter]] = {
    cls.__name__: cls
    for cls in (
        AllHostsFilter,
        ComputeFilter,
        AvailabilityZoneFilter,
        RamFilter,
        CoreFilter,
        DiskFilter,
        NumInstancesFilter,
        ServerGroupAffinityFilter,
        ServerGroupAntiAffinityFilter,
        SameHostFilter,
        DifferentHostFilter,
        JsonFilter,
        ImagePropertiesFilter,
        AggregateInstanceExtraSpecsFilter,
        AggregateMultiTenancyIsolation,
    )
}

DEFAULT_FILTERS = (
    "ComputeFilter",
    "AvailabilityZoneFilter",
    "RamFilter",
    "CoreFilter",
    "DiskFilter",
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
    "SameHostFilter",
    "DifferentHostFilter",
    "JsonFilter",
)
# What the ``chance`` driver still insists on: a live host with room in the zone.
CHANCE_FILTERS = (
    "ComputeFilter",
    "AvailabilityZoneFilter",
    "RamFilter",
    "CoreFilter",
    "DiskFilter",
)
