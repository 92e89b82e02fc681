"""Nova's request schemas for servers per microversion: create, update, metadata and
tags (validated with ``server_validation``)."""

from __future__ import annotations

import copy
from typing import Any

from stackbox import rest
from stackbox.compute import server_validation, services

MAX_TAGS = 50
MAX_TAG_LENGTH = 60

# The validator, for modules that import it from here.
validate = server_validation.validate
body = server_validation.body
is_uuid_like = server_validation.is_uuid_like
parse_isotime = server_validation.parse_isotime

# --- building blocks (Nova's parameter types) -----------------------------------------------

NAME = {"type": "string", "format": "name", "minLength": 1, "maxLength": 255}
NAME_SPACES = {
    "type": "string",
    "format": "name_with_leading_trailing_spaces",
    "minLength": 1,
    "maxLength": 255,
}
# Nova's boolean parameters (the strings and JSON booleans they accept).
BOOLEAN = services.BOOLEAN
POSITIVE_INTEGER = {
    "type": ["integer", "string"],
    "pattern": "^[0-9]*$",
    "minimum": 1,
    "minLength": 1,
}
NON_NEGATIVE_INTEGER = {
    "type": ["integer", "string"],
    "pattern": "^[0-9]*$",
    "minimum": 0,
    "minLength": 1,
}
DESCRIPTION = {
    "type": ["string", "null"],
    "minLength": 0,
    "maxLength": 255,
    "format": "description",
}
UUID = {"type": "string", "format": "uuid"}
IMAGE_OR_EMPTY = {
    "oneOf": [{"type": "string", "format": "uuid"}, {"type": "string", "maxLength": 0}]
}
IP_ADDRESS = {"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
METADATA_KEY = "^[a-zA-Z0-9-_:. ]{1,255}$"
METADATA = {
    "type": "object",
    "patternProperties": {METADATA_KEY: {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
TAG = {"type": "string", "pattern": "^[^,/]*$", "minLength": 1, "maxLength": MAX_TAG_LENGTH}
HOSTNAME = {
    "type": "string",
    "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$",
    "minLength": 2,
    "maxLength": 63,
}
FQDN = {"type": "string", "pattern": "^[a-zA-Z0-9-._]*$", "minLength": 1, "maxLength": 255}
DISK_CONFIG = {"type": "string", "enum": ["AUTO", "MANUAL"]}
TRUSTED_CERTS = {
    "type": ["array", "null"],
    "minItems": 1,
    "maxItems": 50,
    "uniqueItems": True,
    "items": {"type": "string", "minLength": 1},
}


# --- create ---------------------------------------------------------------------------------

_LEGACY_BDM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": UUID,
        "snapshot_id": UUID,
        "volume_size": {
            "type": ["integer", "string"],
            "pattern": "^[0-9]+$",
            "minimum": 1,
            "maximum": 0x7FFFFFFF,
        },
        "device_name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^[a-zA-Z0-9._/-]*$",
        },
        "delete_on_termination": BOOLEAN,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
    },
    "additionalProperties": False,
}
_BDM_V2 = copy.deepcopy(_LEGACY_BDM)
_BDM_V2["properties"].update(
    {
        "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
        "uuid": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^[a-zA-Z0-9._-]*$",
        },
        "image_id": UUID,
        "destination_type": {"type": "string", "enum": ["local", "volume"]},
        "guest_format": {"type": "string", "maxLength": 255},
        "device_type": {"type": "string", "maxLength": 255},
        "disk_bus": {"type": "string", "maxLength": 255},
        "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
    }
)
_HINTS = {
    "type": "object",
    "properties": {
        "group": {
            "oneOf": [
                {"type": "array", "items": {"type": "string", "format": "uuid"}},
                {"type": "string", "format": "uuid"},
            ]
        },
        "different_host": {
            "oneOf": [
                {"type": "string", "format": "uuid"},
                {"type": "array", "items": UUID},
            ]
        },
        "same_host": {"type": ["string", "array"], "items": UUID},
        "query": {"type": ["string", "object"]},
        "target_cell": NAME,
        "different_cell": {"type": ["string", "array"], "items": {"type": "string"}},
        "build_near_host_ip": IP_ADDRESS,
        "cidr": {"type": "string", "pattern": "^/[0-9a-f.:]+$"},
    },
    "additionalProperties": True,
}

_CREATE_21: dict[str, Any] = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": NAME,
                "imageRef": IMAGE_OR_EMPTY,
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "adminPass": {"type": "string"},
                "metadata": METADATA,
                "networks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "fixed_ip": IP_ADDRESS,
                            "port": {"type": ["string", "null"], "format": "uuid"},
                            "uuid": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
                "OS-DCF:diskConfig": DISK_CONFIG,
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "personality": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "path": {"type": "string"},
                            "contents": {"type": "string", "format": "base64"},
                        },
                        "additionalProperties": False,
                    },
                },
                "availability_zone": NAME,
                "block_device_mapping": {"type": "array", "items": _LEGACY_BDM},
                "block_device_mapping_v2": {"type": "array", "items": _BDM_V2},
                "config_drive": BOOLEAN,
                "key_name": NAME,
                "min_count": POSITIVE_INTEGER,
                "max_count": POSITIVE_INTEGER,
                "return_reservation_id": BOOLEAN,
                "security_groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": NAME},
                        "additionalProperties": False,
                    },
                },
                "user_data": {"type": "string", "format": "base64", "maxLength": 65535},
            },
            "required": ["name", "flavorRef"],
            "additionalProperties": False,
        },
        "os:scheduler_hints": _HINTS,
        "OS-SCH-HNT:scheduler_hints": _HINTS,
    },
    "required": ["server"],
    "additionalProperties": False,
}


def _derive(base: dict[str, Any], change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(base)
    change(schema["properties"]["server"])
    return schema


def _networks_list(tag: bool, uuid_format: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "fixed_ip": IP_ADDRESS,
        "port": {"type": ["string", "null"], "format": "uuid"},
        "uuid": {"type": "string", "format": "uuid"} if uuid_format else {"type": "string"},
    }
    if tag:
        item["tag"] = TAG
    return {
        "type": "array",
        "items": {"type": "object", "properties": item, "additionalProperties": False},
    }


def _v219(server: dict[str, Any]) -> None:
    server["properties"]["description"] = DESCRIPTION


def _v232(server: dict[str, Any]) -> None:
    server["properties"]["networks"] = _networks_list(True, False)
    server["properties"]["block_device_mapping_v2"]["items"]["properties"]["tag"] = TAG


def _v233(server: dict[str, Any]) -> None:
    server["properties"]["networks"] = _networks_list(True, False)


def _v237(server: dict[str, Any]) -> None:
    server["required"].append("networks")
    server["properties"]["networks"] = {
        "oneOf": [_networks_list(False, True), {"type": "string", "enum": ["none", "auto"]}]
    }


def _v242(server: dict[str, Any]) -> None:
    server["properties"]["networks"] = {
        "oneOf": [_networks_list(True, True), {"type": "string", "enum": ["none", "auto"]}]
    }
    server["properties"]["block_device_mapping_v2"]["items"]["properties"]["tag"] = TAG


def _v252(server: dict[str, Any]) -> None:
    server["properties"]["tags"] = {"type": "array", "items": TAG, "maxItems": MAX_TAGS}


def _v257(server: dict[str, Any]) -> None:
    server["properties"].pop("personality")


def _v263(server: dict[str, Any]) -> None:
    server["properties"]["trusted_image_certificates"] = TRUSTED_CERTS


def _v267(server: dict[str, Any]) -> None:
    server["properties"]["block_device_mapping_v2"]["items"]["properties"]["volume_type"] = {
        "type": ["string", "null"],
        "minLength": 0,
        "maxLength": 255,
    }


def _v274(server: dict[str, Any]) -> None:
    server["properties"]["host"] = FQDN
    server["properties"]["hypervisor_hostname"] = FQDN


def _v290(server: dict[str, Any]) -> None:
    server["properties"]["hostname"] = HOSTNAME


def _v294(server: dict[str, Any]) -> None:
    server["properties"]["hostname"] = FQDN


def _chain(base: dict[str, Any], steps: list[tuple[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Schemas by the version that introduced them, each built on the one before."""
    out = [("2.1", base)]
    current = base
    for version, step in steps:
        current = _derive(current, step)
        out.append((version, current))
    return out


_CREATE_219 = _derive(_CREATE_21, _v219)
# 2.32 alone had network and BDM tags (lost at 2.33, back at 2.42 on top of 2.37's rules).
_CREATE_232 = _derive(_CREATE_219, _v232)
_CREATE_233 = _derive(_CREATE_219, _v233)
CREATE_BY_VERSION: list[tuple[str, dict[str, Any]]] = [
    ("2.1", _CREATE_21),
    ("2.19", _CREATE_219),
    ("2.32", _CREATE_232),
    ("2.33", _CREATE_233),
    *_chain(
        _CREATE_233,
        [
            ("2.37", _v237),
            ("2.42", _v242),
            ("2.52", _v252),
            ("2.57", _v257),
            ("2.63", _v263),
            ("2.67", _v267),
            ("2.74", _v274),
            ("2.90", _v290),
            ("2.94", _v294),
        ],
    )[1:],
]


def create_schema(request: rest.ApiRequest) -> dict[str, Any]:
    return server_validation.pick(request, CREATE_BY_VERSION)


# --- update ---------------------------------------------------------------------------------

_UPDATE_21: dict[str, Any] = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": NAME,
                "OS-DCF:diskConfig": DISK_CONFIG,
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
            },
            "additionalProperties": False,
        }
    },
    "required": ["server"],
    "additionalProperties": False,
}
_UPDATE_219 = _derive(_UPDATE_21, _v219)
_UPDATE_290 = _derive(_UPDATE_219, _v290)
_UPDATE_294 = _derive(_UPDATE_290, _v294)
UPDATE_BY_VERSION = [
    ("2.1", _UPDATE_21),
    ("2.19", _UPDATE_219),
    ("2.90", _UPDATE_290),
    ("2.94", _UPDATE_294),
]


def update_schema(request: rest.ApiRequest) -> dict[str, Any]:
    return server_validation.pick(request, UPDATE_BY_VERSION)


# --- metadata and tags ----------------------------------------------------------------------

METADATA_SET = {
    "type": "object",
    "properties": {"metadata": METADATA},
    "required": ["metadata"],
    "additionalProperties": False,
}
_META_ONE = copy.deepcopy(METADATA)
_META_ONE.update({"minProperties": 1, "maxProperties": 1})
METADATA_ITEM = {
    "type": "object",
    "properties": {"meta": _META_ONE},
    "required": ["meta"],
    "additionalProperties": False,
}
TAGS_SET = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": TAG, "maxItems": MAX_TAGS}},
    "required": ["tags"],
    "additionalProperties": False,
}
