"""/v2.0/{resources}/{id}/tags: Neutron's tags API over ``net_tag``, for every taggable resource.

One set of handlers serves networks, subnets, ports, routers, floating IPs, security
groups and subnet pools: the resource must be visible to the caller (404 in the
resource's own type otherwise), then ``<verb>_<resource>:tags`` policy decides (403
for a visible resource the caller may not change, such as a shared network). A
change of tags is a change of the resource: its revision number moves on.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import common, errors, models, rbac

MAX_TAG_LEN = 255
MAX_TAGS = 50


@dataclasses.dataclass(frozen=True)
class Taggable:
    collection: str  # as in the URL
    resource: str  # as in net_tag.resource_type, policy names and error types
    model: Any
    module: str  # the resource's module, whose get_visible(session, ctx, id) is preferred


TAGGABLE = [
    Taggable("networks", "network", models.Network, "networks"),
    Taggable("subnets", "subnet", models.Subnet, "subnets"),
    Taggable("ports", "port", models.Port, "ports"),
    Taggable("routers", "router", models.Router, "routers"),
    Taggable("floatingips", "floatingip", models.FloatingIP, "floatingips"),
    Taggable("security-groups", "security_group", models.SecurityGroup, "security_groups"),
    Taggable("subnetpools", "subnetpool", models.SubnetPool, "subnetpools"),
]
BY_COLLECTION = {t.collection: t for t in TAGGABLE}


# --- visibility ------------------------------------------------------------------------------


def _own_network_ids(ctx: context.RequestContext) -> Any:
    return select(models.Network.id).where(models.Network.project_id == (ctx.project_id or ""))


def _fallback_clause(kind: Taggable, ctx: context.RequestContext) -> Any:
    """Who sees what when the resource's module has no get_visible (Neutron's read rules)."""
    project = ctx.project_id or ""
    model = kind.model
    own = model.project_id == project
    if kind.resource == "network":
        return rbac.network_clause(ctx)
    if kind.resource == "subnet":
        visible_networks = select(models.Network.id).where(rbac.network_clause(ctx))
        return or_(own, model.network_id.in_(visible_networks))
    if kind.resource == "port":
        return or_(own, model.network_id.in_(_own_network_ids(ctx)))
    if kind.resource in ("security_group", "subnetpool"):
        shared = rbac.granted(kind.resource, rbac.SHARED, project)
        if kind.resource == "subnetpool":
            return or_(own, shared, models.SubnetPool.shared.is_(True))
        return or_(own, shared)
    return own


def _module_lookup(kind: Taggable) -> Callable[..., Any] | None:
    try:
        module = importlib.import_module(f"stackbox.network.{kind.module}")
    except ImportError:
        return None
    found = getattr(module, "get_visible", None)
    if not callable(found):
        return None
    try:
        if len(inspect.signature(found).parameters) != 3:
            return None
    except (TypeError, ValueError):
        return None
    return found


def visible(session: Session, ctx: context.RequestContext, kind: Taggable, ident: str) -> Any:
    """The resource row if ``ctx`` may see it; the resource's NotFound otherwise."""
    lookup = _module_lookup(kind)
    if lookup is not None:
        row = lookup(session, ctx, ident)
        if isinstance(row, kind.model):
            return row
    query = select(kind.model).where(kind.model.id == ident)
    if not common.is_admin(ctx):
        query = query.where(and_(_fallback_clause(kind, ctx)))
    row = session.scalars(query).first()
    if row is None:
        raise errors.resource_not_found(kind.resource, ident)
    return row


def _target(session: Session, kind: Taggable, row: Any) -> dict[str, Any]:
    """The policy target, with the facts Neutron's rules look up (network owner, shared)."""
    found: dict[str, Any] = {"project_id": row.project_id, "id": row.id}
    network_id = row.id if kind.resource == "network" else getattr(row, "network_id", None)
    if network_id is not None:
        network = session.get(models.Network, network_id)
        if network is not None:
            found["network:project_id"] = network.project_id
            found["shared"] = str(rbac.wildcard(session, "network", network.id, rbac.SHARED))
            found["external"] = str(network.external)
    elif kind.resource in ("security_group", "subnetpool"):
        shared = rbac.wildcard(session, kind.resource, row.id, rbac.SHARED)
        found["shared"] = str(shared or bool(getattr(row, "shared", False)))
    return found


# --- checks -----------------------------------------------------------------------------------


def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str):
        raise errors.invalid_input(f"'{tag}' is not a valid string")
    if len(tag) > MAX_TAG_LEN:
        raise errors.invalid_input(f"'{tag}' exceeds maximum length of {MAX_TAG_LEN}")
    return tag


def _tags_body(request: rest.ApiRequest) -> list[str]:
    body = request.body
    if not isinstance(body, dict) or "tags" not in body:
        raise errors.invalid_input("Invalid tags body")
    tags = body["tags"]
    if not isinstance(tags, list):
        raise errors.invalid_input(f"'{tags}' is not a list")
    checked = [_check_tag(t) for t in tags]
    duplicates = sorted({t for t in checked if checked.count(t) > 1})
    if duplicates:
        raise errors.invalid_input(f"Duplicate items in the list: '{', '.join(duplicates)}'")
    return checked


def _check_count(kind: Taggable, tags: set[str]) -> None:
    if len(tags) > MAX_TAGS:
        raise errors.bad_request(
            f"Bad {kind.collection} request: The number of tags exceed the per-resource "
            f"limit of {MAX_TAGS}."
        )


def _current(session: Session, kind: Taggable, ident: str) -> list[str]:
    return sorted(
        session.scalars(
            select(models.Tag.tag).where(
                models.Tag.resource_type == kind.resource, models.Tag.resource_id == ident
            )
        )
    )


def _resolve(request: rest.ApiRequest, session: Session, verb: str) -> tuple[Taggable, Any]:
    # The path is /v2.0/<collection>/<id>/tags[/<tag>]: the routes name each collection.
    kind = BY_COLLECTION[request.path.strip("/").split("/")[1]]
    row = visible(session, request.context, kind, request.path_params["resource_id"])
    common.enforce(request, f"{verb}_{kind.resource}:tags", _target(session, kind, row))
    return kind, row


def _changed(session: Session, row: Any) -> None:
    if hasattr(row, "revision_number"):
        common.bump(row)


def _add(session: Session, kind: Taggable, ident: str, tags: set[str]) -> None:
    session.add_all(
        models.Tag(resource_type=kind.resource, resource_id=ident, tag=t) for t in sorted(tags)
    )


# --- handlers ---------------------------------------------------------------------------------


def list_tags(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    kind, row = _resolve(request, session, "get")
    return {"tags": _current(session, kind, row.id)}


def check_tag(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    tag = _check_tag(request.path_params["tag"])
    kind, row = _resolve(request, session, "get")
    if tag not in _current(session, kind, row.id):
        raise errors.not_found("TagNotFound", f"Tag {tag} could not be found.")
    return rest.ApiResponse(204)


def add_tag(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    tag = _check_tag(request.path_params["tag"])
    kind, row = _resolve(request, session, "update")
    have = set(_current(session, kind, row.id))
    if tag not in have:
        _check_count(kind, have | {tag})
        _add(session, kind, row.id, {tag})
        _changed(session, row)
    return rest.ApiResponse(201)


def add_tags(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    """POST: add these tags to the ones the resource has (Neutron's create_tags)."""
    tags = _tags_body(request)
    kind, row = _resolve(request, session, "create")
    have = set(_current(session, kind, row.id))
    new = set(tags) - have
    _check_count(kind, set(tags))
    if new:
        _check_count(kind, have | new)
        _add(session, kind, row.id, new)
        _changed(session, row)
    return rest.ApiResponse(201, {"tags": tags})


def replace_tags(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    tags = _tags_body(request)
    kind, row = _resolve(request, session, "update")
    _check_count(kind, set(tags))
    have = set(_current(session, kind, row.id))
    wanted = set(tags)
    if wanted != have:
        session.query(models.Tag).filter(
            models.Tag.resource_type == kind.resource,
            models.Tag.resource_id == row.id,
            models.Tag.tag.in_(have - wanted),
        ).delete(synchronize_session=False)
        _add(session, kind, row.id, wanted - have)
        _changed(session, row)
    return {"tags": tags}


def remove_tag(request: rest.ApiRequest, session: Session) -> None:
    tag = _check_tag(request.path_params["tag"])
    kind, row = _resolve(request, session, "delete")
    removed = (
        session.query(models.Tag)
        .filter(
            models.Tag.resource_type == kind.resource,
            models.Tag.resource_id == row.id,
            models.Tag.tag == tag,
        )
        .delete(synchronize_session=False)
    )
    if not removed:
        raise errors.not_found("TagNotFound", f"Tag {tag} could not be found.")
    _changed(session, row)


def remove_all(request: rest.ApiRequest, session: Session) -> None:
    kind, row = _resolve(request, session, "delete")
    if _current(session, kind, row.id):
        common.drop_tags(session, kind.resource, row.id)
        _changed(session, row)


def _routes() -> list[rest.Route]:
    found = []
    for kind in TAGGABLE:
        base = f"/v2.0/{kind.collection}/{{resource_id}}/tags"
        found += [
            rest.Route("GET", base, list_tags),
            rest.Route("POST", base, add_tags),
            rest.Route("PUT", base, replace_tags),
            rest.Route("DELETE", base, remove_all),
            rest.Route("GET", base + "/{tag}", check_tag),
            rest.Route("PUT", base + "/{tag}", add_tag),
            rest.Route("DELETE", base + "/{tag}", remove_tag),
        ]
    return found


ROUTES = _routes()
