"""Flavors (``/flavors``, os-flavor-manage): list, detail, show, create, update
(description, 2.55+) and delete, in Nova's shapes per microversion.

A flavor's public id is ``flavorid`` (a string: "42", "m1.foo", a uuid); the integer
``id`` is internal. Non-admins see public flavors and private ones their project was
given access to; admins see every flavor. Servers keep a copy of the flavor they were
booted with (``copy_for_server``), so editing or deleting a flavor never changes them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.compute import common, errors, microversions, models

MAX_INT = 0x7FFFFFFF
MAX_FLOAT = 3.40282e38

# Nova's sort keys (kept for compatibility); ``vcpu_weight`` has no column here.
SORT_KEYS = {
    "created_at": lambda f: f.created_at,
    "description": lambda f: f.description,
    "disabled": lambda f: f.disabled,
    "ephemeral_gb": lambda f: f.ephemeral_gb,
    "flavorid": lambda f: f.flavorid,
    "id": lambda f: f.id,
    "is_public": lambda f: f.is_public,
    "memory_mb": lambda f: f.memory_mb,
    "name": lambda f: f.name,
    "root_gb": lambda f: f.root_gb,
    "rxtx_factor": lambda f: f.rxtx_factor,
    "swap": lambda f: f.swap,
    "updated_at": lambda f: f.updated_at,
    "vcpu_weight": lambda f: None,
    "vcpus": lambda f: f.vcpus,
}
LIST_QUERY = {"limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"}

_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}
BOOLEAN = {
    "type": ["boolean", "string"],
    "enum": [
        *(True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes"),
        *(False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"),
    ],
}
_POSITIVE = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1}
_NON_NEGATIVE = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0}
_DESCRIPTION = {"type": ["string", "null"], "maxLength": 65535}
_CREATE_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "id": {
        "type": ["string", "number", "null"],
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^(?! )[a-zA-Z0-9. _-]+(?<! )$",
    },
    "ram": _POSITIVE,
    "vcpus": _POSITIVE,
    "disk": _NON_NEGATIVE,
    "OS-FLV-EXT-DATA:ephemeral": _NON_NEGATIVE,
    "swap": _NON_NEGATIVE,
    "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$"},
    "os-flavor-access:is_public": BOOLEAN,
}
CREATE: dict[str, Any] = {
    "type": "object",
    "properties": _CREATE_PROPERTIES,
    "required": ["name", "ram", "vcpus", "disk"],
    "additionalProperties": False,
}
CREATE_V255: dict[str, Any] = {
    **CREATE,
    "properties": {**_CREATE_PROPERTIES, "description": _DESCRIPTION},
}
UPDATE = {
    "type": "object",
    "properties": {"description": _DESCRIPTION},
    "required": ["description"],
    "additionalProperties": False,
}


# --- shared helpers (also used by flavor_access, flavor_extra_specs, keypairs, quotas) ---


def bool_from_string(value: Any) -> bool | None:
    """oslo's strict bool_from_string: None when the text is no boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def printable(text: str, *, edges: bool = True) -> bool:
    """Nova's printable-characters rule; ``edges`` also forbids leading/trailing spaces."""
    for char in text:
        category = unicodedata.category(char)
        if category.startswith("C") or (category.startswith("Z") and category != "Zs"):
            return False
    return not (edges and text and (text[0].isspace() or text[-1].isspace()))


def strict_query(request: rest.ApiRequest, allowed: Iterable[str], gate: str) -> None:
    """From ``gate`` on (2.75 for most APIs), unknown query parameters are a 400."""
    if not microversions.at_least(request, gate):
        return
    known = set(allowed)
    extra = sorted(k for k in request.query if k not in known)
    if extra:
        shown = ", ".join(repr(k) for k in extra)
        verb = "was" if len(extra) == 1 else "were"
        raise errors.bad_request(
            f"Additional properties are not allowed ({shown} {verb} unexpected)"
        )


def field_error(field: str, value: Any, reason: str) -> rest.BadRequest:
    return errors.bad_request(
        f"Invalid input for field/attribute {field}. Value: {value}. {reason}"
    )


# --- lookups ---


def visible_clause(ctx: context.RequestContext) -> Any:
    """Flavors a non-admin may see: public ones and those its project may use."""
    granted = select(models.FlavorAccess.flavor_id).where(
        models.FlavorAccess.project_id == (ctx.project_id or "")
    )
    return or_(models.Flavor.is_public.is_(True), models.Flavor.id.in_(granted))


def get_flavor(session: Session, ctx: context.RequestContext, flavor_id: str) -> models.Flavor:
    """The flavor by its public id, if the caller may see it (admins see all); else 404."""
    query = select(models.Flavor).where(models.Flavor.flavorid == flavor_id)
    if not common.is_admin(ctx):
        query = query.where(visible_clause(ctx))
    flavor = session.scalar(query)
    if flavor is None:
        raise errors.flavor_not_found(flavor_id)
    return flavor


def find(session: Session, request: rest.ApiRequest, flavor_id: str) -> models.Flavor:
    """For other modules (servers): the flavor a caller refers to, else 404."""
    return get_flavor(session, request.context, flavor_id)


def extra_specs_of(session: Session, flavor_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = {fid: {} for fid in flavor_ids}
    if not flavor_ids:
        return found
    rows = session.scalars(
        select(models.FlavorExtraSpec).where(models.FlavorExtraSpec.flavor_id.in_(flavor_ids))
    )
    for row in rows:
        found[row.flavor_id][row.key] = row.value
    return found


def copy_for_server(session: Session, flavor: models.Flavor) -> dict[str, Any]:
    """The flavor as a server keeps it (``compute_server.flavor``): later edits don't apply."""
    return {
        "id": flavor.flavorid,
        "flavorid": flavor.flavorid,
        "name": flavor.name,
        "memory_mb": flavor.memory_mb,
        "vcpus": flavor.vcpus,
        "root_gb": flavor.root_gb,
        "ephemeral_gb": flavor.ephemeral_gb,
        "swap": flavor.swap,
        "rxtx_factor": flavor.rxtx_factor,
        "is_public": flavor.is_public,
        "disabled": flavor.disabled,
        "description": flavor.description,
        "extra_specs": extra_specs_of(session, [flavor.id])[flavor.id],
    }


# --- bodies ---


def show_extra_specs(request: rest.ApiRequest) -> bool:
    return microversions.at_least(request, "flavor_extra_specs_in_flavor") and common.allowed(
        request, "os_compute_api:os-flavor-extra-specs:index"
    )


def render_brief(request: rest.ApiRequest, flavor: models.Flavor) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": flavor.flavorid,
        "name": flavor.name,
        "links": common.link(request, f"flavors/{flavor.flavorid}"),
    }
    if microversions.at_least(request, "flavor_description"):
        body["description"] = flavor.description
    return body


def render(
    request: rest.ApiRequest, flavor: models.Flavor, extra_specs: dict[str, str] | None = None
) -> dict[str, Any]:
    """The full flavor body; ``extra_specs`` is shown when given (2.61+, policy allowing)."""
    strict_swap = microversions.at_least(request, "strict_param_validation")
    body: dict[str, Any] = {
        "id": flavor.flavorid,
        "name": flavor.name,
        "ram": flavor.memory_mb,
        "disk": flavor.root_gb,
        "swap": flavor.swap or (0 if strict_swap else ""),
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": flavor.disabled,
        "vcpus": flavor.vcpus,
        "os-flavor-access:is_public": flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor or "",
        "links": common.link(request, f"flavors/{flavor.flavorid}"),
    }
    if microversions.at_least(request, "flavor_description"):
        body["description"] = flavor.description
    if extra_specs is not None:
        body["extra_specs"] = extra_specs
    return body


def render_one(request: rest.ApiRequest, session: Session, flavor: models.Flavor) -> dict[str, Any]:
    specs = extra_specs_of(session, [flavor.id])[flavor.id] if show_extra_specs(request) else None
    return {"flavor": render(request, flavor, specs)}


# --- handlers ---


def _parse_is_public(request: rest.ApiRequest) -> bool | None:
    raw = request.arg("is_public")
    if raw is None:
        return True
    if raw.strip().lower() == "none":
        return None
    parsed = bool_from_string(raw)
    if parsed is None:
        raise errors.bad_request(f"Invalid is_public filter [{raw}]")
    return parsed


def _min_filter(request: rest.ApiRequest, name: str) -> int | None:
    raw = request.arg(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f"Invalid {name} filter [{raw}]") from None


def _listed(request: rest.ApiRequest, session: Session) -> list[models.Flavor]:
    strict_query(request, LIST_QUERY, "strict_param_validation")
    ctx = request.context
    query = select(models.Flavor)
    if common.is_admin(ctx):
        is_public = _parse_is_public(request)
    else:
        # Non-admins always get the public view (plus their project's private flavors).
        is_public = True
        query = query.where(models.Flavor.disabled.is_(False))
    if is_public is True:
        query = query.where(visible_clause(ctx))
    elif is_public is False:
        query = query.where(models.Flavor.is_public.is_(False))
    min_ram = _min_filter(request, "minRam")
    if min_ram is not None:
        query = query.where(models.Flavor.memory_mb >= min_ram)
    min_disk = _min_filter(request, "minDisk")
    if min_disk is not None:
        query = query.where(models.Flavor.root_gb >= min_disk)
    flavors = list(session.scalars(query))
    name = request.arg("name")
    if name is not None:
        try:
            pattern = re.compile(name)
        except re.error:
            pattern = re.compile(re.escape(name))
        flavors = [f for f in flavors if pattern.search(f.name)]
    sort_key = request.arg("sort_key") or "flavorid"
    sort_dir = request.arg("sort_dir") or "asc"
    if sort_key not in SORT_KEYS:
        raise errors.bad_request(
            f"Invalid input for query parameters sort_key. Value: {sort_key}. "
            f"'{sort_key}' is not one of {sorted(SORT_KEYS)}"
        )
    if sort_dir not in ("asc", "desc"):
        raise errors.bad_request(
            f"Invalid input for query parameters sort_dir. Value: {sort_dir}. "
            f"'{sort_dir}' is not one of ['asc', 'desc']"
        )
    getter = SORT_KEYS[sort_key]
    flavors.sort(
        key=lambda f: (getter(f) is not None, getter(f) if getter(f) is not None else 0, f.id),
        reverse=sort_dir == "desc",
    )
    return flavors


def _page(
    request: rest.ApiRequest, flavors: list[models.Flavor]
) -> tuple[list[models.Flavor], Any]:
    """The requested page of ``flavors`` and its ``flavors_links`` (None when last)."""
    chunk, marker = common.page(
        request, [{"id": f.flavorid, "i": i} for i, f in enumerate(flavors)]
    )
    links = [common.next_link(request, marker)] if marker is not None else None
    return [flavors[item["i"]] for item in chunk], links


def _listing(bodies: list[dict[str, Any]], links: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"flavors": bodies}
    if links:
        result["flavors_links"] = links
    return result


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    shown, links = _page(request, _listed(request, session))
    return _listing([render_brief(request, f) for f in shown], links)


def detail(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    shown, links = _page(request, _listed(request, session))
    specs = extra_specs_of(session, [f.id for f in shown]) if show_extra_specs(request) else None
    bodies = [render(request, f, specs[f.id] if specs is not None else None) for f in shown]
    return _listing(bodies, links)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    flavor = get_flavor(session, request.context, request.path_params["flavor_id"])
    return render_one(request, session, flavor)


def _number(vals: dict[str, Any], key: str, minimum: int) -> int:
    value = vals.get(key, 0)
    number = int(value)
    if number < minimum:
        raise field_error(key, value, f"{value} is less than the minimum of {minimum}")
    if number > MAX_INT:
        raise field_error(key, value, f"{value} is greater than the maximum of {MAX_INT}")
    return number


def check_name(name: str) -> None:
    if not printable(name) or not name.strip():
        raise errors.bad_request(
            "An invalid 'name' value was provided. The name must be: printable characters. "
            "Can not start or end with whitespace."
        )


def check_description(description: Any) -> None:
    if isinstance(description, str) and not printable(description, edges=False):
        raise field_error(
            "description", description, "The description must be printable characters."
        )


def create(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-flavor-manage:create")
    with_description = microversions.at_least(request, "flavor_description")
    vals = common.body_of(request, "flavor", CREATE_V255 if with_description else CREATE)
    check_name(vals["name"])
    raw_id = vals.get("id")
    flavorid = common.new_id() if raw_id is None or raw_id == "" else str(raw_id)
    rxtx = vals.get("rxtx_factor", 1.0)
    try:
        rxtx_factor = float(rxtx)
        if not 0 < rxtx_factor <= MAX_FLOAT:
            raise ValueError(rxtx)
    except ValueError:
        raise errors.bad_request(
            "Invalid input received: 'rxtx_factor' argument must be a float between 0 and "
            f"{MAX_FLOAT:g}"
        ) from None
    description = vals.get("description") if with_description else None
    check_description(description)
    flavor = models.Flavor(
        flavorid=flavorid,
        name=vals["name"],
        memory_mb=_number(vals, "ram", 1),
        vcpus=_number(vals, "vcpus", 1),
        root_gb=_number(vals, "disk", 0),
        ephemeral_gb=_number(vals, "OS-FLV-EXT-DATA:ephemeral", 0),
        swap=_number(vals, "swap", 0),
        rxtx_factor=rxtx_factor,
        is_public=bool(bool_from_string(vals.get("os-flavor-access:is_public", True))),
        disabled=False,
        description=description,
        created_at=common.now(),
    )
    _check_unique(session, flavor)
    try:
        with session.begin_nested():
            session.add(flavor)
            session.flush()
    except IntegrityError:
        _check_unique(session, flavor)
        raise
    specs: dict[str, str] | None = {} if show_extra_specs(request) else None
    return {"flavor": render(request, flavor, specs)}


def _check_unique(session: Session, flavor: models.Flavor) -> None:
    if session.scalar(select(models.Flavor.id).where(models.Flavor.flavorid == flavor.flavorid)):
        raise errors.conflict(f"Flavor with ID {flavor.flavorid} already exists.")
    if session.scalar(select(models.Flavor.id).where(models.Flavor.name == flavor.name)):
        raise errors.conflict(f"Flavor with name {flavor.name} already exists.")


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    microversions.require(request, "flavor_description")
    common.enforce(request, "os_compute_api:os-flavor-manage:update")
    vals = common.body_of(request, "flavor", UPDATE)
    check_description(vals["description"])
    flavor = get_flavor(session, request.context, request.path_params["flavor_id"])
    flavor.description = vals["description"]
    flavor.updated_at = common.now()
    return render_one(request, session, flavor)


def delete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    common.enforce(request, "os_compute_api:os-flavor-manage:delete")
    flavor_id = request.path_params["flavor_id"]
    flavor = session.scalar(select(models.Flavor).where(models.Flavor.flavorid == flavor_id))
    if flavor is None:
        raise errors.flavor_not_found(flavor_id)
    session.delete(flavor)
    return rest.ApiResponse(202)


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/flavors", index),
    rest.Route("GET", "/v2.1/flavors/detail", detail),
    rest.Route("POST", "/v2.1/flavors", create),
    rest.Route("GET", "/v2.1/flavors/{flavor_id}", show),
    rest.Route("PUT", "/v2.1/flavors/{flavor_id}", update),
    rest.Route("DELETE", "/v2.1/flavors/{flavor_id}", delete),
]
