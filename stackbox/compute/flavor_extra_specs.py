"""A flavor's extra specs (``/flavors/{id}/os-extra_specs``): list, merge in, show,
set and delete one key.

From 2.86 Nova validates the values of the extra specs it knows. Here the values of
the commonly used ``hw:``, ``hw_rng:``, ``hw_video:`` and ``resources``/``trait``
keys are checked with Nova's messages (``KNOWN`` below); keys not listed there pass
unchecked, where Nova would also reject unknown keys of its namespaces.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, flavors, microversions, models

# Nova's key pattern (note "9-_" is a range that also lets ':;<=>?@[\]^' through).
KEY = "^[a-zA-Z0-9-_:. ]{1,255}$"
_VALUE = {"type": ["string", "number"], "maxLength": 255}
SPECS = {"type": "object", "patternProperties": {KEY: _VALUE}, "additionalProperties": False}
CREATE = {
    "type": "object",
    "properties": {"extra_specs": SPECS},
    "required": ["extra_specs"],
    "additionalProperties": False,
}
UPDATE = {**SPECS, "minProperties": 1, "maxProperties": 1}

_BOOL = ("bool", None)
_INT1 = ("int", 1)
_INT0 = ("int", 0)
# Key pattern -> (value kind, minimum or enum or pattern).
KNOWN: dict[str, tuple[str, Any]] = {
    "hw:cpu_policy": ("enum", ("shared", "dedicated", "mixed")),
    "hw:cpu_thread_policy": ("enum", ("prefer", "isolate", "require")),
    "hw:emulator_threads_policy": ("enum", ("share", "isolate")),
    "hw:mem_page_size": ("pattern", r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)"),
    "hw:numa_nodes": _INT1,
    "hw:numa_cpus\\.\\d+": ("pattern", r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    "hw:numa_mem\\.\\d+": _INT1,
    "hw:cpu_sockets": _INT1,
    "hw:cpu_cores": _INT1,
    "hw:cpu_threads": _INT1,
    "hw:cpu_max_sockets": _INT1,
    "hw:cpu_max_cores": _INT1,
    "hw:cpu_max_threads": _INT1,
    "hw:cpu_realtime": _BOOL,
    "hw:hide_hypervisor_id": _BOOL,
    "hw:locked_memory": _BOOL,
    "hw:boot_menu": _BOOL,
    "hw:vif_multiqueue_enabled": _BOOL,
    "hw:mem_encryption": _BOOL,
    "hw:pmu": _BOOL,
    "hw:virtio_packed_ring": _BOOL,
    "hw:serial_port_count": _INT0,
    "hw:watchdog_action": ("enum", ("none", "pause", "poweroff", "reset", "disabled")),
    "hw:pci_numa_affinity_policy": (
        "enum",
        ("required", "preferred", "legacy", "socket"),
    ),
    "hw_rng:allowed": _BOOL,
    "hw_rng:rate_bytes": _INT0,
    "hw_rng:rate_period": _INT0,
    "hw_video:ram_max_mb": _INT0,
    "resources\\d*:[A-Z0-9_]+": _INT0,
    "trait\\d*:[A-Z0-9_]+": ("enum", ("required", "forbidden")),
}


def _fail(message: str) -> rest.BadRequest:
    return errors.bad_request(f"Validation failed; {message}")


def validate(name: str, value: str) -> None:
    """Nova's 2.86 value checks for the keys in KNOWN."""
    found = next((check for key, check in KNOWN.items() if re.fullmatch(key, name)), None)
    if found is None:
        return
    kind, rule = found
    if kind == "bool":
        if flavors.bool_from_string(value) is None:
            raise _fail(f"'{value}' is not a valid boolean-like value.")
    elif kind == "int":
        try:
            number = int(value)
        except ValueError:
            raise _fail(f"'{value}' is not a valid integer value.") from None
        if number < rule:
            raise _fail(f"'{value}' is less than the min value of '{rule}'.")
    elif kind == "enum":
        if value not in rule:
            raise _fail(f"'{value}' is not one of: {', '.join(rule)}.")
    elif not re.fullmatch(rule, value):
        raise _fail(f"'{value}' is not of the format '{rule}'.")


def _check_values(request: rest.ApiRequest, specs: dict[str, Any]) -> dict[str, str]:
    """The specs as stored (numbers become strings), checked as Nova checks them."""
    strict = microversions.at_least(request, "extra_spec_validation")
    stored: dict[str, str] = {}
    for name, value in specs.items():
        text = value if isinstance(value, str) else str(value)
        if not isinstance(value, str) and len(text) > 255:
            raise errors.bad_request(
                "Invalid input received: extra_specs value has more than 255 characters."
            )
        if strict:
            validate(name, text)
        stored[name] = text
    return stored


def specs_of(session: Session, flavor: models.Flavor) -> dict[str, str]:
    return flavors.extra_specs_of(session, [flavor.id])[flavor.id]


def merge(session: Session, flavor: models.Flavor, specs: dict[str, str]) -> None:
    """Set these keys of the flavor's extra specs, keeping the others."""
    for key, value in specs.items():
        row = session.get(models.FlavorExtraSpec, (flavor.id, key))
        if row is None:
            session.add(models.FlavorExtraSpec(flavor_id=flavor.id, key=key, value=value))
        else:
            row.value = value
    flavor.updated_at = common.now()
    session.flush()


def _no_key(flavor_id: str, key: str) -> rest.NotFound:
    return errors.not_found(f"Flavor {flavor_id} has no extra specs with key {key}.")


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-flavor-extra-specs:index")
    flavor = flavors.get_flavor(session, request.context, request.path_params["flavor_id"])
    return {"extra_specs": specs_of(session, flavor)}


def create(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-flavor-extra-specs:create")
    body = common.body_of(request, None, CREATE)
    stored = _check_values(request, body["extra_specs"])
    flavor = flavors.get_flavor(session, request.context, request.path_params["flavor_id"])
    merge(session, flavor, stored)
    # Nova answers with the request body as given (numbers stay numbers).
    return {"extra_specs": body["extra_specs"]}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-flavor-extra-specs:show")
    flavor_id, key = request.path_params["flavor_id"], request.path_params["key"]
    flavor = flavors.get_flavor(session, request.context, flavor_id)
    row = session.get(models.FlavorExtraSpec, (flavor.id, key))
    if row is None:
        raise _no_key(flavor_id, key)
    return {key: row.value}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-flavor-extra-specs:update")
    body = common.body_of(request, None, UPDATE)
    stored = _check_values(request, body)
    if request.path_params["key"] not in body:
        raise errors.bad_request("Request body and URI mismatch")
    flavor = flavors.get_flavor(session, request.context, request.path_params["flavor_id"])
    merge(session, flavor, stored)
    return dict(body)


def delete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    common.enforce(request, "os_compute_api:os-flavor-extra-specs:delete")
    flavor_id, key = request.path_params["flavor_id"], request.path_params["key"]
    flavor = flavors.get_flavor(session, request.context, flavor_id)
    row = session.get(models.FlavorExtraSpec, (flavor.id, key))
    if row is None:
        raise _no_key(flavor_id, key)
    session.delete(row)
    flavor.updated_at = common.now()
    return rest.ApiResponse(200)


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/flavors/{flavor_id}/os-extra_specs", index),
    rest.Route("POST", "/v2.1/flavors/{flavor_id}/os-extra_specs", create),
    rest.Route("GET", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", show),
    rest.Route("PUT", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", update),
    rest.Route("DELETE", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", delete),
]
