"""Resource attribute maps: what a request may set, how it is checked, and what it filters.

Each resource declares its attributes once; requests are parsed against them
(allowed on create/update, default, validator and converter, attribute-level
policy), and listings use them for filters, ``fields`` and sorting, as
Neutron's API layer does with its attribute maps.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from stackbox import rest
from stackbox.network import errors

MISSING: Any = object()
Validator = Callable[[Any], Any]


class Invalid(ValueError):
    """A value failed its check; the message is Neutron's reason text."""


@dataclasses.dataclass(frozen=True)
class Attr:
    name: str
    post: bool = False
    put: bool = False
    # MISSING: required on create when ``post``; otherwise the value used when absent.
    default: Any = None
    validate: Validator | None = None
    # Checked by "<action>_<resource>:<name>" policy rules when present in a request.
    policy: bool = False
    filter: bool = True
    sort: bool = False
    visible: bool = True
    # Owned by the server: may be given only by admins on create (project_id).
    owner: bool = False


def spec(*attrs: Attr) -> dict[str, Attr]:
    return {a.name: a for a in attrs}


# --- validators: each returns the converted value or raises Invalid ---------------------------


def name_string(limit: int = 255) -> Validator:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"'{value}' is not a valid string")
        if len(value) > limit:
            raise Invalid(f"'{value}' exceeds maximum length of {limit}")
        return value

    return check


def string_or_none(limit: int = 255) -> Validator:
    inner = name_string(limit)

    def check(value: Any) -> str | None:
        return None if value is None else inner(value)

    return check


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise Invalid(f"'{value}' cannot be converted to boolean")


def uuid_string(value: Any) -> str:
    """A UUID with or without dashes, any case; returned in canonical form."""
    if isinstance(value, str) and len(value) in (32, 36):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise Invalid(f"'{value}' is not a valid UUID")


def uuid_or_none(value: Any) -> str | None:
    return None if value is None else uuid_string(value)


def integer(minimum: int | None = None, maximum: int | None = None) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise Invalid(f"'{value}' is not an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise Invalid(f"'{value}' is not an integer") from None
        if isinstance(value, float) and value != number:
            raise Invalid(f"'{value}' is not an integer")
        if minimum is not None and number < minimum:
            raise Invalid(f"'{number}' is too small - must be at least '{minimum}'")
        if maximum is not None and number > maximum:
            raise Invalid(f"'{number}' is too large - must be no larger than '{maximum}'")
        return number

    return check


def integer_or_none(minimum: int | None = None, maximum: int | None = None) -> Validator:
    inner = integer(minimum, maximum)

    def check(value: Any) -> int | None:
        return None if value is None else inner(value)

    return check


def one_of(*choices: Any) -> Validator:
    def check(value: Any) -> Any:
        if value not in choices:
            raise Invalid(f"'{value}' is not in {list(choices)}")
        return value

    return check


def ip_address(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"'{value}' is not a valid IP address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid(f"'{value}' is not a valid IP address") from None


def ip_address_or_none(value: Any) -> str | None:
    return None if value is None else ip_address(value)


def cidr(value: Any) -> str:
    """A network in CIDR notation; host bits must be zero (Neutron's 'type:subnet')."""
    if not isinstance(value, str) or "/" not in value:
        raise Invalid(f"'{value}' is not a valid IP subnet")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise Invalid(f"'{value}' is not a valid IP subnet") from None
        raise Invalid(
            f"'{value}' isn't a recognized IP subnet cidr, "
            f"'{ipaddress.ip_network(value, strict=False)}' is recommended"
        ) from None
    return str(network)


def ip_or_cidr(value: Any) -> str:
    """An address or a network (allowed address pairs, remote prefixes)."""
    if not isinstance(value, str):
        raise Invalid(f"'{value}' is neither a valid IP address, nor is it a valid IP subnet")
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=False))
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid(
            f"'{value}' is neither a valid IP address, nor is it a valid IP subnet"
        ) from None


MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


def mac_address(value: Any) -> str:
    if not isinstance(value, str) or not MAC_RE.match(value):
        raise Invalid(f"'{value}' is not a valid MAC address")
    mac = value.lower().replace("-", ":")
    first = int(mac[:2], 16)
    if mac == "00:00:00:00:00:00" or first & 1:
        raise Invalid(f"'{value}' is not a valid MAC address")
    return mac


def list_of(item: Validator, unique: bool = False) -> Validator:
    def check(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise Invalid(f"'{value}' is not a list")
        result = [item(v) for v in value]
        if unique and len({repr(v) for v in result}) != len(result):
            raise Invalid(f"Duplicate items in the list: '{value}'")
        return result

    return check


def dict_value(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"'{value}' is not a dictionary")
    return value


def any_value(value: Any) -> Any:
    return value


# --- request parsing ------------------------------------------------------------------------


def body_of(request: rest.ApiRequest, resource: str) -> dict[str, Any]:
    body = request.body
    if not isinstance(body, dict) or not body:
        raise errors.bad_request("Resource body required")
    if resource not in body:
        raise errors.bad_request(f"Unable to find '{resource}' in request body")
    item = body[resource]
    if not isinstance(item, dict):
        raise errors.bad_request(f"Bad {resource}s request: Resource body required.")
    return item


def parse(
    attrs: Mapping[str, Attr], item: dict[str, Any], *, create: bool, resource: str
) -> dict[str, Any]:
    """Check a request item against the attribute map; return converted values.

    On create, absent attributes get their defaults (required ones are 400).
    Unknown attributes are 400, as Neutron's "Unrecognized attribute(s)".
    """
    unknown = [key for key in item if key not in attrs]
    if unknown:
        raise errors.bad_request(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    result: dict[str, Any] = {}
    for name, attr in attrs.items():
        if name in item:
            allowed = attr.post if create else attr.put
            if not allowed:
                verb = "POST" if create else "PUT"
                raise errors.bad_request(
                    f"Attribute '{name}' not allowed in {verb}", kind="HTTPBadRequest"
                )
            value = item[name]
            if attr.validate is not None:
                try:
                    value = attr.validate(value)
                except Invalid as exc:
                    raise errors.invalid_input(f"Invalid input for {name}. Reason: {exc}") from None
            result[name] = value
        elif create and attr.post:
            if attr.default is MISSING:
                raise errors.bad_request(
                    f"Failed to parse request. Required attribute '{name}' not specified"
                )
            result[name] = attr.default
    return result
