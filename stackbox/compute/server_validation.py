"""Nova's request validation for the server APIs: a JSON-Schema validator that answers
as Nova's does, with Nova's own formats.

Nova's messages: ``Invalid input for field/attribute <field>. Value: <value>.
<reason>`` for bodies, ``Invalid input for query parameters <name>. ...`` for
queries, and the bare reason when the error is at the top level. Its own formats
(``name``, ``uuid``, ``base64``, ``regex``, ``date-time``) are checked here too.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
import unicodedata
import uuid
from collections.abc import Mapping
from typing import Any

import jsonschema
import jsonschema.validators

from stackbox import rest
from stackbox.compute import microversions

# --- formats --------------------------------------------------------------------------------

FORMATS = jsonschema.FormatChecker()


class InvalidName(ValueError):
    """A ``name`` that is not printable or has surrounding whitespace."""


NAME_REASON = "printable characters. Can not start or end with whitespace."
NAME_SPACES_REASON = "printable characters with at least one non space character"


def _printable(char: str) -> bool:
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _edge_ok(char: str) -> bool:
    return _printable(char) and unicodedata.category(char) != "Zs"


def _invalid_name(reason: str) -> InvalidName:
    return InvalidName(f"An invalid 'name' value was provided. The name must be: {reason}")


@FORMATS.checks("name", raises=InvalidName)
def _name(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if instance and (
        not all(_printable(c) for c in instance)
        or not _edge_ok(instance[0])
        or not _edge_ok(instance[-1])
    ):
        raise _invalid_name(NAME_REASON)
    return True


@FORMATS.checks("name_with_leading_trailing_spaces", raises=InvalidName)
def _name_spaces(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not all(_printable(c) for c in instance) or not any(_edge_ok(c) for c in instance):
        raise _invalid_name(NAME_SPACES_REASON)
    return True


@FORMATS.checks("uuid")
def _uuid(instance: object) -> bool:
    return not isinstance(instance, str) or is_uuid_like(instance)


@FORMATS.checks("base64")
def _base64(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    try:
        base64.b64decode(instance.encode("utf-8"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


@FORMATS.checks("regex")
def _regex(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not instance:
        return False
    try:
        re.compile(instance)
    except re.error:
        return False
    return True


@FORMATS.checks("date-time")
def _date_time(instance: object) -> bool:
    return not isinstance(instance, str) or parse_isotime(instance) is not None


# ipv4 / ipv6 come with jsonschema's checker.
FORMATS.checkers["ipv4"] = jsonschema.FormatChecker().checkers["ipv4"]
FORMATS.checkers["ipv6"] = jsonschema.FormatChecker().checkers["ipv6"]


def is_uuid_like(value: str) -> bool:
    """oslo's is_uuid_like: any spelling uuid.UUID reads that equals its hex."""
    try:
        return str(uuid.UUID(value)).replace("-", "") == value.replace("-", "").lower().strip(
            "{}"
        ).replace("urn:uuid:", "")
    except (TypeError, ValueError, AttributeError):
        return False


def parse_isotime(text: str) -> datetime.datetime | None:
    """An ISO 8601 time as naive UTC, or None (oslo's parse_isotime)."""
    value = text.strip()
    if not value:
        return None
    value = re.sub(r"[zZ]$", "+00:00", value)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


# --- the validator --------------------------------------------------------------------------


def _number(instance: Any) -> int | float | None:
    if isinstance(instance, bool):
        return None
    if isinstance(instance, int | float):
        return instance
    try:
        return int(instance)
    except (TypeError, ValueError):
        try:
            return float(instance)
        except (TypeError, ValueError):
            return None


def _minimum(validator: Any, minimum: Any, instance: Any, schema: Any) -> Any:
    # Nova compares numbers given as strings ("10") too.
    number = _number(instance)
    if number is not None and number < minimum:
        yield jsonschema.ValidationError(f"{instance!r} is less than the minimum of {minimum}")


def _maximum(validator: Any, maximum: Any, instance: Any, schema: Any) -> Any:
    number = _number(instance)
    if number is not None and number > maximum:
        yield jsonschema.ValidationError(f"{instance!r} is greater than the maximum of {maximum}")


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"minimum": _minimum, "maximum": _maximum}
)
_CACHE: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    found = _CACHE.get(id(schema))
    if found is None or found[0] is not schema:
        found = (schema, _Validator(schema, format_checker=FORMATS))
        _CACHE[id(schema)] = found
    return found[1]


def validate(schema: Mapping[str, Any], instance: Any, *, query: bool = False) -> None:
    """400 with Nova's message if ``instance`` breaks ``schema``."""
    try:
        error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(instance))
    except TypeError as exc:
        raise rest.BadRequest(str(exc)) from None
    if error is None:
        return
    if isinstance(error.cause, InvalidName):
        raise rest.BadRequest(str(error.cause))
    path = list(error.path)
    if path:
        name = path[0] if query else path[-1]
        kind = "query parameters" if query else "field/attribute"
        raise rest.BadRequest(
            f"Invalid input for {kind} {name}. Value: {error.instance}. {error.message}"
        )
    raise rest.BadRequest(error.message)


def body(request: rest.ApiRequest, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body validated against ``schema`` (a missing body is a 400)."""
    data = request.body
    if not isinstance(data, dict):
        raise rest.BadRequest("The request body is missing or is not a JSON object.")
    validate(schema, data)
    return data


@FORMATS.checks("description")
def _description(instance: object) -> bool:
    return not isinstance(instance, str) or all(_printable(c) for c in instance)


def pick(request: rest.ApiRequest, table: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The schema of ``table`` ((since version, schema), ascending) for the request."""
    version = microversions.of(request)
    chosen = table[0][1]
    for since, schema in table:
        if version >= microversions.Version.parse(since):
            chosen = schema
    return chosen
