"""GET /v2/schemas/{image,images,member,members}: the JSON schemas of what we serve.

The documents are built from the schemas the image and member handlers validate
with (``images.CORE_SCHEMA``, ``members.STATUSES``), in Glance's shape, so a
client that reads them (glanceclient, to tell base attributes from custom
properties) sees exactly our rules. Only attributes our image bodies can carry
are described.
"""

from __future__ import annotations

import copy
from typing import Any

from stackbox import rest
from stackbox.image import images, locations, members

GLANCE_UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
DESCRIPTIONS = {
    "id": "An identifier for the image",
    "name": "Descriptive name for the image",
    "status": "Status of the image",
    "visibility": "Scope of image accessibility",
    "protected": "If true, image will not be deletable.",
    "os_hidden": "If true, image will not appear in default image list response.",
    "checksum": "md5 hash of image contents.",
    "os_hash_algo": "Algorithm to calculate the os_hash_value",
    "os_hash_value": (
        "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"
    ),
    "owner": "Owner of the image",
    "size": "Size of image file in bytes",
    "virtual_size": "Virtual size of image in bytes",
    "container_format": "Format of the container",
    "disk_format": "Format of the disk",
    "created_at": "Date and time of image registration",
    "updated_at": "Date and time of the last image modification",
    "tags": "List of strings related to the image",
    "direct_url": "URL to access the image file kept in external store",
    "min_ram": "Amount of ram (in MB) required to boot image.",
    "min_disk": "Amount of disk space (in GB) required to boot image.",
    "self": "An image self url",
    "file": "An image file url",
    "stores": (
        "Store in which image data resides. May be a comma-separated list of store identifiers."
    ),
    "schema": "An image schema url",
}
# Attributes the server sets; clients may read but never write them.
READ_ONLY: dict[str, dict[str, Any]] = {
    "status": {"type": "string", "enum": list(images.STATUSES)},
    "checksum": {"type": ["null", "string"], "maxLength": 32},
    "os_hash_algo": {"type": ["null", "string"], "maxLength": 64},
    "os_hash_value": {"type": ["null", "string"], "maxLength": 128},
    "size": {"type": ["null", "integer"]},
    "virtual_size": {"type": ["null", "integer"]},
    "created_at": {"type": "string"},
    "updated_at": {"type": "string"},
    "self": {"type": "string"},
    "file": {"type": "string"},
    "stores": {"type": "string"},
    "direct_url": {"type": "string"},
    "schema": {"type": "string"},
}
# Glance's order of the image attributes.
ORDER = (
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "created_at",
    "updated_at",
    "tags",
    "direct_url",
    "min_ram",
    "min_disk",
    "self",
    "file",
    "stores",
    "schema",
    "locations",
)
MEMBER_PROPERTIES: dict[str, dict[str, Any]] = {
    "member_id": {
        "type": "string",
        "description": "An identifier for the image member (tenantId)",
    },
    "image_id": {
        "type": "string",
        "description": "An identifier for the image",
        "pattern": GLANCE_UUID_PATTERN,
    },
    "created_at": {"type": "string", "description": "Date and time of image member creation"},
    "updated_at": {
        "type": "string",
        "description": "Date and time of last modification of image member",
    },
    "status": {
        "type": "string",
        "description": "The status of this image member",
        "enum": list(members.STATUSES),
    },
    "schema": {"readOnly": True, "type": "string"},
}


def _attribute(name: str) -> dict[str, Any]:
    if name == "locations":
        # Writable through PATCH /locations; its items and description come from there.
        return copy.deepcopy(locations.LOCATIONS_SCHEMA)
    if name in READ_ONLY:
        rule = {**READ_ONLY[name], "readOnly": True}
    else:
        rule = copy.deepcopy(images.CORE_SCHEMA[name])
    ordered = {"type": rule.pop("type")}
    if "readOnly" in rule:
        ordered["readOnly"] = rule.pop("readOnly")
    ordered["description"] = DESCRIPTIONS[name]
    ordered.update(rule)
    return ordered


def image_schema() -> dict[str, Any]:
    names = [*ORDER, *(k for k in images.CORE_SCHEMA if k not in ORDER)]
    return {
        "name": "image",
        "properties": {name: _attribute(name) for name in names},
        "additionalProperties": copy.deepcopy(images.CREATE_SCHEMA["additionalProperties"]),
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": copy.deepcopy(MEMBER_PROPERTIES),
        "additionalProperties": False,
    }


def _collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def show_image(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return image_schema()


def show_images(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return _collection("images", image_schema())


def show_member(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return member_schema()


def show_members(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return _collection("members", member_schema())


ROUTES = [
    rest.Route("GET", "/v2/schemas/image", show_image, no_db=True),
    rest.Route("GET", "/v2/schemas/images", show_images, no_db=True),
    rest.Route("GET", "/v2/schemas/member", show_member, no_db=True),
    rest.Route("GET", "/v2/schemas/members", show_members, no_db=True),
]
