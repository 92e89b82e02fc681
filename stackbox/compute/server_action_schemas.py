"""JSON schemas of action bodies, built from the servers' parameter types
(``server_schema``) so names, metadata and base64 fail with Nova's messages."""

from __future__ import annotations

import copy
from typing import Any, cast

from stackbox.compute import server_schema as types

ANY: dict[str, Any] = {}
NULL: dict[str, Any] = {"type": "null"}
UUID = types.UUID
NAME = types.NAME
METADATA = types.METADATA
BOOLEAN = types.BOOLEAN
BOOLEAN_VALUES: list[Any] = [*cast("list[Any]", types.BOOLEAN["enum"])]
ADMIN_PASSWORD: dict[str, Any] = {"type": "string"}
FLAVOR_REF: dict[str, Any] = {"type": ["string", "integer"], "minLength": 1}
NAME_OR_NONE: dict[str, Any] = {
    "oneOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "null"}]
}
PERSONALITY: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "contents": {"type": "string", "format": "base64"},
        },
        "additionalProperties": False,
    },
}


def action(key: str, member: dict[str, Any]) -> dict[str, Any]:
    """A whole action body: exactly ``{key: member}``."""
    return {
        "type": "object",
        "properties": {key: member},
        "required": [key],
        "additionalProperties": False,
    }


_REBUILD_21: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": NAME,
        "imageRef": UUID,
        "adminPass": ADMIN_PASSWORD,
        "metadata": METADATA,
        "preserve_ephemeral": BOOLEAN,
        "OS-DCF:diskConfig": types.DISK_CONFIG,
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
        "personality": PERSONALITY,
    },
    "required": ["imageRef"],
    "additionalProperties": False,
}


def _rebuild_by_version() -> list[tuple[tuple[int, int], dict[str, Any]]]:
    """The ``rebuild`` member by the version that changed it: 2.19 description, 2.54
    key_name, 2.57 user_data instead of personality, 2.63 trusted certificates, 2.90
    hostname, 2.94 hostname as an FQDN."""
    steps: list[tuple[tuple[int, int], dict[str, Any]]] = [
        ((2, 19), {"description": types.DESCRIPTION}),
        ((2, 54), {"key_name": NAME_OR_NONE}),
        (
            (2, 57),
            {
                "personality": None,
                "user_data": {"type": ["string", "null"], "format": "base64", "maxLength": 65535},
            },
        ),
        ((2, 63), {"trusted_image_certificates": types.TRUSTED_CERTS}),
        ((2, 90), {"hostname": types.HOSTNAME}),
        ((2, 94), {"hostname": types.FQDN}),
    ]
    table = [((2, 1), _REBUILD_21)]
    current = _REBUILD_21
    for version, change in steps:
        current = copy.deepcopy(current)
        for name, schema in change.items():
            if schema is None:
                current["properties"].pop(name)
            else:
                current["properties"][name] = schema
        table.append((version, current))
    return [(version, action("rebuild", member)) for version, member in table]


REBUILD_BY_VERSION = _rebuild_by_version()


def rebuild(version: tuple[int, int]) -> dict[str, Any]:
    chosen = REBUILD_BY_VERSION[0][1]
    for since, schema in REBUILD_BY_VERSION:
        if version >= since:
            chosen = schema
    return chosen


RESIZE = action(
    "resize",
    {
        "type": "object",
        "properties": {"flavorRef": FLAVOR_REF, "OS-DCF:diskConfig": types.DISK_CONFIG},
        "required": ["flavorRef"],
        "additionalProperties": False,
    },
)
CREATE_IMAGE = action(
    "createImage",
    {
        "type": "object",
        "properties": {"name": NAME, "metadata": METADATA},
        "required": ["name"],
        "additionalProperties": False,
    },
)
CREATE_BACKUP = action(
    "createBackup",
    {
        "type": "object",
        "properties": {
            "name": NAME,
            "backup_type": {"type": "string"},
            "rotation": types.NON_NEGATIVE_INTEGER,
            "metadata": METADATA,
        },
        "required": ["name", "backup_type", "rotation"],
        "additionalProperties": False,
    },
)


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "on", "yes")
