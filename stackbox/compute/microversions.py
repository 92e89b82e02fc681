"""Compute API microversions: negotiation and the table of behaviour gates.

A request names its version in ``OpenStack-API-Version: compute X.Y`` (or the
legacy ``X-OpenStack-Nova-API-Version: X.Y``); none means the minimum, ``latest``
the maximum, anything outside [MIN, MAX] is 406. Every response says which
version answered it.

Behaviour that changes by version is looked up by name in ``GATES`` (one row per
change, with the version that introduced it), so handlers read
``at_least(request, "flavor_embedded")`` rather than comparing numbers, and the
table is the one place that says what stackbox implements of Nova's history.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from stackbox import rest


@functools.total_ordering
class Version:
    __slots__ = ("major", "minor")

    def __init__(self, major: int, minor: int) -> None:
        self.major = major
        self.minor = minor

    @classmethod
    def parse(cls, text: str) -> Version:
        found = re.fullmatch(r"\s*([1-9]\d*)\.(0|[1-9]\d*)\s*", text)
        if found is None:
            raise ValueError(text)
        return cls(int(found.group(1)), int(found.group(2)))

    def _key(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = Version.parse(other)
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if isinstance(other, str):
            other = Version.parse(other)
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def __repr__(self) -> str:
        return f"Version({self})"


MIN = Version(2, 1)
MAX = Version(2, 96)

# Behaviour changes clients depend on, by the version that introduced them.
GATES: dict[str, Version] = {
    name: Version.parse(version)
    for name, version in {
        "keypair_type": "2.2",  # keypairs carry "type"
        "extended_server_attrs_more": "2.3",  # OS-EXT-SRV-ATTR reservation_id, hostname, ...
        "preserve_ephemeral": "2.1",
        "server_ip_filter_v6": "2.5",
        "remote_consoles": "2.6",
        "flavor_access_public_conflict": "2.7",  # no access lists on public flavors
        "rebuild_preserve_ephemeral": "2.1",
        "keypair_user_id": "2.10",  # admins manage other users' keypairs
        "force_down": "2.11",
        "server_group_project_user": "2.13",  # server groups show project_id / user_id
        "evacuate_no_shared_storage": "2.14",
        "soft_affinity": "2.15",
        "host_status": "2.16",
        "trigger_crash_dump": "2.17",
        "project_id_optional_in_url": "2.18",
        "server_description": "2.19",
        "instance_actions_deleted": "2.21",
        "live_migration_force_complete": "2.22",
        "migrations_list_type": "2.23",
        "server_migrations_list": "2.23",  # GET /servers/{id}/migrations[/{id}]
        "abort_live_migration": "2.24",
        "block_migration_auto": "2.25",
        "server_tags": "2.26",
        "hypervisor_cpu_info_dict": "2.28",
        "force_evacuate": "2.29",
        "force_live_migrate": "2.30",
        "hypervisor_paging": "2.33",
        "keypair_paging": "2.35",
        "proxy_apis_removed": "2.36",  # images, networks, floating IPs, ... proxies gone
        "networks_auto_none": "2.37",
        "invalid_status_filter_400": "2.38",
        "image_metadata_limits_removed": "2.39",
        "usage_paging": "2.40",
        "aggregate_uuid": "2.41",
        "tag_in_bdm_and_networks": "2.42",
        "host_apis_removed": "2.43",
        "network_actions_removed": "2.44",
        "create_image_no_location": "2.45",  # createImage answers {"image_id"} in the body
        "request_id_in_action": "2.46",
        "flavor_embedded": "2.47",  # the server body embeds the flavor, not a link
        "diagnostics_standard": "2.48",
        "volume_tag_attach": "2.49",
        "quota_class_server_groups": "2.50",
        "instance_action_events_hostid": "2.51",  # (events show host, hostId) - see 2.62
        "tags_at_create": "2.52",
        "service_uuid": "2.53",  # services and hypervisors by uuid
        "rebuild_key_name": "2.54",
        "flavor_description": "2.55",
        "migrate_host": "2.56",
        "rebuild_user_data": "2.57",
        "personality_removed": "2.57",  # injected files leave quotas, limits, servers
        "instance_actions_paging": "2.58",
        "migrations_paging": "2.59",
        "multiattach": "2.60",
        "flavor_extra_specs_in_flavor": "2.61",
        "instance_action_event_host": "2.62",
        "trusted_certs": "2.63",
        "server_group_policy_rules": "2.64",
        "abort_queued_live_migration": "2.65",
        "changes_before": "2.66",
        "bdm_volume_type": "2.67",
        "force_live_migrate_removed": "2.68",
        "partial_results_down_cells": "2.69",
        "vif_tags_shown": "2.70",
        "server_groups_in_server": "2.71",
        "neutron_qos_ports": "2.72",
        "lock_reason": "2.73",
        "host_hypervisor_at_create": "2.74",
        "strict_param_validation": "2.75",
        "power_update_event": "2.76",
        "unshelve_availability_zone": "2.77",
        "server_topology": "2.78",
        "delete_on_termination": "2.79",
        "migrations_user_project": "2.80",
        "image_cache_api": "2.81",
        "accelerator_request_event": "2.82",
        "server_list_more_filters": "2.83",
        "action_event_details": "2.84",
        "volume_attachment_update": "2.85",
        "extra_spec_validation": "2.86",
        "rescue_bfv": "2.87",
        "hypervisor_stats_removed": "2.88",  # hypervisors lose stats, gain uuid-only fields
        "attachment_id_in_bdm": "2.89",
        "hostname": "2.90",
        "unshelve_to_host": "2.91",
        "keypair_import_only": "2.92",  # no generated keypairs; names validated
        "rebuild_volume_backed": "2.93",
        "hostname_fqdn": "2.94",
        "evacuate_stopped": "2.95",
        "pinned_availability_zone": "2.96",
        "server_locked": "2.9",  # servers show "locked"
        "update_rebuild_full_body": "2.75",  # PUT and rebuild answer every attribute
    }.items()
}

HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
VARY = f"{HEADER}, {LEGACY_HEADER}"


def _requested(headers: Mapping[str, str]) -> str | None:
    value = headers.get(HEADER.lower()) or headers.get(HEADER)
    if value:
        # "compute 2.47" (possibly among other services' versions, comma separated).
        for part in value.split(","):
            words = part.split()
            if len(words) == 2 and words[0].lower() == "compute":
                return words[1]
        return None
    legacy = headers.get(LEGACY_HEADER.lower()) or headers.get(LEGACY_HEADER)
    return legacy.strip() if legacy else None


def negotiate(headers: Mapping[str, str]) -> tuple[Version, dict[str, str]]:
    """The version a request asks for and the headers its response carries."""
    requested = _requested(headers)
    if requested is None:
        version = MIN
    elif requested.strip().lower() == "latest":
        version = MAX
    else:
        try:
            version = Version.parse(requested)
        except ValueError:
            raise rest.BadRequest(
                f"API Version String {requested} is of invalid format. Must be of format "
                "MajorNum.MinorNum."
            ) from None
        if not MIN <= version <= MAX:
            raise rest.NotAcceptable(
                f"Version {requested} is not supported by the API. Minimum is {MIN} and "
                f"maximum is {MAX}."
            )
    return version, {
        HEADER: f"compute {version}",
        LEGACY_HEADER: str(version),
        "Vary": VARY,
    }


def of(request: rest.ApiRequest) -> Version:
    version = request.version
    return version if isinstance(version, Version) else MIN


def at_least(request: rest.ApiRequest, gate: str) -> bool:
    """Whether the request's version has the behaviour named ``gate`` (see GATES)."""
    return of(request) >= GATES[gate]


def between(request: rest.ApiRequest, low: str, high: str | None = None) -> bool:
    """Whether low <= version (<= high): for behaviour that was later removed."""
    version = of(request)
    if version < Version.parse(low):
        return False
    return high is None or version <= Version.parse(high)


def require(request: rest.ApiRequest, gate: str) -> None:
    """404 below the gate, as Nova answers for an API that does not exist yet."""
    if not at_least(request, gate):
        raise rest.NotFound("The resource could not be found.")


def legacy_version_document(base: str) -> dict[str, Any]:
    """Nova still lists v2.0 first (clients and Tempest expect it); stackbox serves only
    its version document: the API itself is v2.1 with microversions."""
    return {
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/v2/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}
        ],
    }


def version_document(base: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MAX),
        "min_version": str(MIN),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }
