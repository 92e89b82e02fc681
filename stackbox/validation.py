"""Request body validation with JSON Schema; errors name the field, as OpenStack's do."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jsonschema
import jsonschema.validators

from stackbox import rest

# Schemas are module constants, so a validator is built once per schema object.
_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    found = _VALIDATORS.get(id(schema))
    if found is None or found[0] is not schema:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        found = (schema, cls(schema, format_checker=jsonschema.FormatChecker()))
        _VALIDATORS[id(schema)] = found
    return found[1]


def _field(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        match = re.match(r"'([^']+)' is a required property", error.message)
        missing = match.group(1) if match else ""
        return f"{path}/{missing}" if path else missing
    if error.validator == "additionalProperties":
        match = re.search(r"\('([^']+)'", error.message)
        extra = match.group(1) if match else ""
        return f"{path}/{extra}" if path else extra
    return path


def check(schema: Mapping[str, Any], body: Any) -> None:
    """Raise BadRequest naming the first offending field if ``body`` breaks ``schema``."""
    validator = _validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return
    field = _field(error)
    if error.validator == "required":
        message = f"'{field}' is a required property"
    elif error.validator == "additionalProperties":
        message = f"Additional properties are not allowed ('{field}' was unexpected)"
    else:
        message = error.message
    if field:
        raise rest.BadRequest(f"Invalid input for field '{field}': {message}")
    raise rest.BadRequest(f"Invalid input: {message}")


# Building blocks shared by schemas.
NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"[\S]+"}
ID = {"type": "string", "minLength": 1, "maxLength": 64}
OPTIONAL_ID = {"type": ["string", "null"], "minLength": 1, "maxLength": 64}
DESCRIPTION = {"type": ["string", "null"]}
BOOLEAN = {"type": "boolean"}


def creating(properties: dict[str, Any], *required: str, extra: bool = True) -> dict[str, Any]:
    """A create body's schema: these fields, ``required`` ones present; ``extra`` allows
    unknown fields (Keystone keeps them as extra attributes of most resources)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": extra,
    }


def updating(properties: dict[str, Any], *, extra: bool = True) -> dict[str, Any]:
    """An update body's schema: any non-empty subset of the fields."""
    return {
        "type": "object",
        "properties": properties,
        "minProperties": 1,
        "additionalProperties": extra,
    }
