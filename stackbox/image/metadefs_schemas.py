"""JSON schemas of the metadefs catalog: the documents served at
``/v2/schemas/metadefs/*`` are the ones request bodies are validated against.

They follow Glance's published schemas, a little stricter where Glance would
accept a body and then fail on it (unknown keys inside property definitions,
objects, tags or associations without a name, empty names, invalid regexes).
"""

from __future__ import annotations

import copy
from typing import Any

from stackbox import rest

PROPERTY_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]
NAME = {"type": "string", "minLength": 1, "maxLength": 80}


def _timestamp(what: str) -> dict[str, Any]:
    return {"type": "string", "readOnly": True, "description": what, "format": "date-time"}


def _stamps(noun: str) -> dict[str, Any]:
    return {
        "created_at": _timestamp(f"Date and time of {noun} creation"),
        "updated_at": _timestamp(f"Date and time of the last {noun} modification"),
    }


LINKS = {
    "schema": {"readOnly": True, "type": "string"},
    "self": {"readOnly": True, "type": "string"},
}

DEFINITIONS: dict[str, Any] = {
    "positiveInteger": {"type": "integer", "minimum": 0},
    "positiveIntegerDefault0": {
        "allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]
    },
    "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
}

# The attributes of one property definition (a small JSON schema of its own).
PROPERTY_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 80},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "operators": {"type": "array", "items": {"type": "string"}},
    "type": {"type": "string", "enum": PROPERTY_TYPES},
    "required": {"$ref": "#/definitions/stringArray"},
    "minimum": {"type": "number"},
    "maximum": {"type": "number"},
    "maxLength": {"$ref": "#/definitions/positiveInteger"},
    "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "pattern": {"type": "string", "format": "regex"},
    "enum": {"type": "array"},
    "readonly": {"type": "boolean"},
    "default": {},
    "items": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": PROPERTY_TYPES},
            "enum": {"type": "array"},
        },
        "required": ["type"],
        "additionalProperties": False,
    },
    "maxItems": {"$ref": "#/definitions/positiveInteger"},
    "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "uniqueItems": {"type": "boolean", "default": False},
    "additionalItems": {"type": "boolean"},
}

PROPERTY_DEFINITION = {
    "type": "object",
    "required": ["title", "type"],
    "properties": PROPERTY_FIELDS,
    "additionalProperties": False,
}

# A map of property name to definition, as namespaces and objects carry them.
DEFINITIONS_WITH_PROPERTY = {
    **DEFINITIONS,
    "property": {
        "type": "object",
        "propertyNames": {"minLength": 1, "maxLength": 80},
        "additionalProperties": PROPERTY_DEFINITION,
    },
}

OBJECT_FIELDS: dict[str, Any] = {
    "name": NAME,
    "description": {"type": ["string", "null"]},
    "required": {"$ref": "#/definitions/stringArray"},
    "properties": {"$ref": "#/definitions/property"},
}

ASSOCIATION_FIELDS: dict[str, Any] = {
    "name": {
        **NAME,
        "description": "Resource type names should be aligned with Heat resource types "
        "whenever possible: https://docs.openstack.org/heat/latest/template_guide/"
        "openstack.html",
    },
    "prefix": {
        "type": "string",
        "description": "Specifies the prefix to use for the given resource type. Any "
        "properties in the namespace should be prefixed with this prefix when being "
        "applied to the specified resource type. Must include prefix separator (e.g. a "
        "colon :).",
        "maxLength": 80,
    },
    "properties_target": {
        "type": "string",
        "description": "Some resource types allow more than one key / value pair per "
        "instance. For example, Cinder allows user and image metadata on volumes. Only the "
        "image properties metadata is evaluated by Nova (scheduling or drivers). This "
        "property allows a namespace target to remove the ambiguity.",
        "maxLength": 80,
    },
}


def _nested(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": fields,
        "required": ["name"],
        "additionalProperties": False,
    }


NAMESPACE: dict[str, Any] = {
    "name": "namespace",
    "properties": {
        "namespace": {**NAME, "description": "The unique namespace text."},
        "display_name": {
            "type": ["string", "null"],
            "description": "The user friendly name for the namespace. Used by UI if available.",
            "maxLength": 80,
        },
        "description": {
            "type": ["string", "null"],
            "description": "Provides a user friendly description of the namespace.",
            "maxLength": 500,
        },
        "visibility": {
            "type": "string",
            "description": "Scope of namespace accessibility.",
            "enum": ["public", "private"],
        },
        "protected": {
            "type": "boolean",
            "description": "If true, namespace will not be deletable.",
        },
        "owner": {"type": "string", "description": "Owner of the namespace.", "maxLength": 64},
        **_stamps("namespace"),
        **LINKS,
        # Nested items may carry what responses show of them (read-only: ignored).
        "resource_type_associations": {
            "type": "array",
            "items": _nested({**ASSOCIATION_FIELDS, **_stamps("association")}),
        },
        "properties": {"$ref": "#/definitions/property"},
        "objects": {
            "type": "array",
            "items": _nested({**OBJECT_FIELDS, **LINKS, **_stamps("object")}),
        },
        "tags": {"type": "array", "items": _nested({"name": NAME, **_stamps("tag")})},
    },
    "additionalProperties": False,
    "definitions": DEFINITIONS_WITH_PROPERTY,
    "required": ["namespace"],
}

OBJECT: dict[str, Any] = {
    "name": "object",
    "properties": {**OBJECT_FIELDS, **LINKS, **_stamps("object")},
    "additionalProperties": False,
    "definitions": DEFINITIONS_WITH_PROPERTY,
    "required": ["name"],
}

PROPERTY: dict[str, Any] = {
    "name": "property",
    "properties": {**PROPERTY_FIELDS, "name": NAME},
    "additionalProperties": False,
    "definitions": DEFINITIONS,
    "required": ["type", "title", "name"],
}

TAG: dict[str, Any] = {
    "name": "tag",
    "properties": {"name": NAME, **_stamps("tag")},
    "additionalProperties": False,
    "required": ["name"],
}

# The body of a bulk tag creation (not served: Glance serves the collection instead).
TAGS_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": _nested({"name": NAME})}},
    "required": ["tags"],
    "additionalProperties": False,
}

RESOURCE_TYPE: dict[str, Any] = {
    "name": "resource_type_association",
    "properties": {
        **ASSOCIATION_FIELDS,
        "created_at": _timestamp("Date and time of resource type association"),
        "updated_at": _timestamp(
            "Date and time of the last resource type association modification"
        ),
    },
    "additionalProperties": False,
    "required": ["name"],
}


def _collection_links() -> dict[str, Any]:
    return {
        "first": {"type": "string"},
        "next": {"type": "string"},
        "schema": {"type": "string"},
    }


LINK_TEMPLATES = [
    {"rel": "first", "href": "{first}"},
    {"rel": "next", "href": "{next}"},
    {"rel": "describedby", "href": "{schema}"},
]


def collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    """Glance's list schema: the items under ``name`` plus the paging links."""
    inner = {k: v for k, v in item.items() if k != "definitions"}
    doc: dict[str, Any] = {
        "name": name,
        "properties": {name: {"type": "array", "items": inner}, **_collection_links()},
        "links": LINK_TEMPLATES,
    }
    if "definitions" in item:
        doc["definitions"] = item["definitions"]
    return doc


def properties_collection() -> dict[str, Any]:
    """Properties are listed as a map from name to definition (no name inside)."""
    inner = {k: v for k, v in PROPERTY.items() if k != "definitions"}
    inner["properties"] = {k: v for k, v in PROPERTY["properties"].items()}
    inner["required"] = ["type", "title"]
    return {
        "name": "properties",
        "properties": {
            "properties": {"type": "object", "additionalProperties": inner},
            **_collection_links(),
        },
        "links": LINK_TEMPLATES,
        "definitions": PROPERTY["definitions"],
    }


DOCUMENTS: dict[str, dict[str, Any]] = {
    "namespace": NAMESPACE,
    "namespaces": collection("namespaces", NAMESPACE),
    "object": OBJECT,
    "objects": collection("objects", OBJECT),
    "property": PROPERTY,
    "properties": properties_collection(),
    "tag": TAG,
    "tags": collection("tags", TAG),
    "resource_type": RESOURCE_TYPE,
    "resource_types": collection("resource_type_associations", RESOURCE_TYPE),
}


def _serve(name: str) -> rest.Handler:
    def show(request: rest.ApiRequest, session: object) -> dict[str, Any]:
        return copy.deepcopy(DOCUMENTS[name])

    return show


ROUTES = [
    rest.Route("GET", f"/v2/schemas/metadefs/{name}", _serve(name), no_db=True)
    for name in DOCUMENTS
]
