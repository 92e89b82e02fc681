"""Nova's query schemas of GET /servers(/detail) per microversion (2.26 tags, 2.66
changes-before, 2.73 locked, 2.75 strict), and the sort keys it accepts or ignores."""

from __future__ import annotations

from typing import Any

from stackbox import rest
from stackbox.compute import server_schema, server_validation

# --- list queries ---------------------------------------------------------------------------

_MULTI = {"type": "array", "items": {"type": "string"}}
_MULTI_REGEX = {"type": "array", "items": {"type": "string", "format": "regex"}}
_MULTI_TIME = {"type": "array", "items": {"type": "string", "format": "date-time"}}

# Sort keys Nova accepts but ignores (dropped with their direction), and the valid ones.
IGNORED_SORT_KEYS = [
    "architecture",
    "cell_name",
    "cleaned",
    "default_ephemeral_device",
    "default_swap_device",
    "deleted",
    "deleted_at",
    "disable_terminate",
    "ephemeral_gb",
    "ephemeral_key_uuid",
    "id",
    "key_data",
    "launched_on",
    "locked",
    "memory_mb",
    "os_type",
    "reservation_id",
    "root_gb",
    "shutdown_terminate",
    "user_data",
    "vcpus",
    "vm_mode",
]
SORT_KEYS = [
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
]

_REGEX_PARAMS = [
    "kernel_id",
    "ramdisk_id",
    "hostname",
    "key_name",
    "power_state",
    "node",
    "flavor",
    "reservation_id",
    "launched_at",
    "terminated_at",
    "availability_zone",
    "name",
    "display_name",
    "description",
    "display_description",
    "locked_by",
    "root_device_name",
    "config_drive",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "progress",
    "ip",
    "ip6",
    "created_at",
]
_PLAIN_PARAMS = [
    "user_id",
    "project_id",
    "tenant_id",
    "launch_index",
    "image_ref",
    "image",
    "vm_state",
    "task_state",
    "host",
    "uuid",
    "sort_dir",
    "all_tenants",
    "soft_deleted",
    "deleted",
    "status",
    "marker",
    "block_device_mapping",
    "services",
    "metadata",
    "system_metadata",
    "info_cache",
    "security_groups",
    "pci_devices",
]


def _index_query(sort_keys: list[str], extra: dict[str, Any], additional: bool) -> dict[str, Any]:
    props: dict[str, Any] = {name: _MULTI for name in _PLAIN_PARAMS}
    props.update({name: _MULTI_REGEX for name in _REGEX_PARAMS})
    props["sort_key"] = {"type": "array", "items": {"type": "string", "enum": sort_keys}}
    props["changes-since"] = _MULTI_TIME
    props["limit"] = {"type": "array", "items": server_schema.NON_NEGATIVE_INTEGER}
    props.update(extra)
    return {
        "type": "object",
        "properties": props,
        "additionalProperties": additional,
        "patternProperties": {"^_": _MULTI},
    }


_TAG_FILTERS = {name: _MULTI_REGEX for name in ("tags", "tags-any", "not-tags", "not-tags-any")}
_SORT_273 = ["locked", *SORT_KEYS, *[k for k in IGNORED_SORT_KEYS if k != "locked"]]
INDEX_QUERY_BY_VERSION = [
    ("2.1", _index_query(SORT_KEYS + IGNORED_SORT_KEYS, {}, True)),
    ("2.26", _index_query(SORT_KEYS + IGNORED_SORT_KEYS, _TAG_FILTERS, True)),
    (
        "2.66",
        _index_query(
            SORT_KEYS + IGNORED_SORT_KEYS, {**_TAG_FILTERS, "changes-before": _MULTI_TIME}, True
        ),
    ),
    (
        "2.73",
        _index_query(
            _SORT_273, {**_TAG_FILTERS, "changes-before": _MULTI_TIME, "locked": _MULTI}, True
        ),
    ),
    (
        "2.75",
        _index_query(
            ["locked", *SORT_KEYS],
            {**_TAG_FILTERS, "changes-before": _MULTI_TIME, "locked": _MULTI},
            False,
        ),
    ),
]


def index_query_schema(request: rest.ApiRequest) -> dict[str, Any]:
    return server_validation.pick(request, INDEX_QUERY_BY_VERSION)


def check_query(request: rest.ApiRequest) -> None:
    """Validate the list query as Nova does (every value of every parameter)."""
    query = {name: list(values) for name, values in request.query.items()}
    server_validation.validate(index_query_schema(request), query, query=True)
