"""What every networking resource shares: standard attributes, tags, revision numbers,
policy with attribute-level rules, and listing (filters, ``fields``, sorting, paging).

Listings work on rendered resources, as Neutron's API answers them: a filter on
any visible attribute, ``fields`` selection, ``sort_key``/``sort_dir``, and
``limit``/``marker``/``page_reverse`` with ``<collection>_links``.
"""

from __future__ import annotations

import datetime
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.network import attributes, errors, models

SERVICE = "network"


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


def isotime(moment: datetime.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def is_admin(ctx: context.RequestContext) -> bool:
    return "admin" in ctx.roles


# --- standard attributes and tags -----------------------------------------------------------


def stamp_new(row: Any, ctx: context.RequestContext, project_id: str | None) -> None:
    """Fill the standard attributes of a new row."""
    moment = now()
    row.id = row.id or new_id()
    row.project_id = project_id if project_id is not None else (ctx.project_id or "")
    row.created_at = moment
    row.updated_at = moment
    row.revision_number = 0


def bump(row: Any) -> None:
    """A change of the resource: a new revision and updated_at (Neutron's rule)."""
    row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = now()


def standard(row: Any, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "description": row.description or "",
        "created_at": isotime(row.created_at),
        "updated_at": isotime(row.updated_at),
        "revision_number": row.revision_number,
        "tags": sorted(tags or []),
    }


def tags_of(session: Session, resource_type: str, ids: Iterable[str]) -> dict[str, list[str]]:
    wanted = list(ids)
    found: dict[str, list[str]] = {i: [] for i in wanted}
    for start in range(0, len(wanted), 500):
        for tag in session.scalars(
            select(models.Tag).where(
                models.Tag.resource_type == resource_type,
                models.Tag.resource_id.in_(wanted[start : start + 500]),
            )
        ):
            found[tag.resource_id].append(tag.tag)
    return found


def drop_tags(session: Session, resource_type: str, resource_id: str) -> None:
    session.query(models.Tag).filter(
        models.Tag.resource_type == resource_type, models.Tag.resource_id == resource_id
    ).delete()


def check_revision(request: rest.ApiRequest, row: Any) -> None:
    """``If-Match: revision_number=N`` compare-and-swap (412 when it moved on)."""
    header = request.headers.get("if-match")
    if not header:
        return
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() != "revision_number":
            continue
        try:
            expected = int(value)
        except ValueError:
            raise errors.bad_request(f"Invalid If-Match header: {header}") from None
        if expected != row.revision_number:
            raise rest.ApiError(
                f"Constrained to {expected}, but current revision is {row.revision_number}",
                status=412,
                kind="RevisionNumberConstraintFailed",
            )


# --- policy ---------------------------------------------------------------------------------


def enforce(
    request: rest.ApiRequest,
    action: str,
    target: dict[str, Any],
    attrs: Mapping[str, attributes.Attr] | None = None,
    given: Iterable[str] = (),
    hide_missing: bool = False,
) -> None:
    """Check ``action``, then ``action:attr`` for each attribute the request sets.

    Neutron answers 404 rather than 403 when the caller may not even see the
    resource (``hide_missing``), so that its existence does not leak.
    """
    full = {"tenant_id": target.get("project_id"), **target}
    try:
        policy.enforce(request.context, action, full, service=SERVICE)
        for name in given:
            attr = attrs.get(name) if attrs else None
            rule = f"{action}:{name}"
            if attr is not None and attr.policy and policy.has_rule(SERVICE, rule):
                policy.enforce(request.context, rule, full, service=SERVICE)
    except policy.PolicyNotAuthorized as exc:
        if hide_missing:
            raise rest.NotFound("The resource could not be found.", kind="NotFound") from None
        raise errors.forbidden(f"({exc.action}) is disallowed by policy") from None


def visible_fields(
    request: rest.ApiRequest,
    action: str,
    attrs: Mapping[str, attributes.Attr],
    target: dict[str, Any],
    body: dict[str, Any],
) -> dict[str, Any]:
    """Drop attributes whose ``get_x:attr`` rule the caller fails (e.g. provider:*)."""
    full = {"tenant_id": target.get("project_id"), **target}
    for name, attr in attrs.items():
        rule = f"{action}:{name}"
        if (
            attr.policy
            and name in body
            and policy.has_rule(SERVICE, rule)
            and not policy.allowed(request.context, rule, full, service=SERVICE)
        ):
            del body[name]
    return body


# --- listing --------------------------------------------------------------------------------

CONTROL = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return any(
            w.strip().lower() in (("true", "1") if value else ("false", "0")) for w in wanted
        )
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    if isinstance(value, list):
        return any(str(v) in wanted for v in value)
    return str(value) in wanted


def _tag_match(tags: list[str], request: rest.ApiRequest) -> bool:
    have = set(tags)
    for key in TAG_FILTERS:
        raw = request.query.get(key)
        if not raw:
            continue
        wanted = {t for value in raw for t in value.split(",") if t}
        if key == "tags" and not wanted <= have:
            return False
        if key == "tags-any" and not wanted & have:
            return False
        if key == "not-tags" and wanted and wanted <= have:
            return False
        if key == "not-tags-any" and wanted & have:
            return False
    return True


def filter_items(
    request: rest.ApiRequest,
    items: list[dict[str, Any]],
    attrs: Mapping[str, attributes.Attr],
    special: Mapping[str, Callable[[dict[str, Any], list[str]], bool]] | None = None,
) -> list[dict[str, Any]]:
    """Apply every query filter: attributes, tags, and resource-specific ``special`` ones."""
    special = special or {}
    result = items
    for key, values in request.query.items():
        if key in CONTROL or key in TAG_FILTERS:
            continue
        if key in special:
            result = [item for item in result if special[key](item, values)]
            continue
        attr = attrs.get(key)
        if key not in ("id", "project_id", "tenant_id") and (attr is None or not attr.filter):
            raise errors.bad_request(
                f"[{key}] is invalid attribute for filtering", kind="HTTPBadRequest"
            )
        result = [item for item in result if _matches(item.get(key), values)]
    if any(request.query.get(k) for k in TAG_FILTERS):
        result = [item for item in result if _tag_match(item.get("tags", []), request)]
    return result


def _sorting(
    request: rest.ApiRequest, attrs: Mapping[str, attributes.Attr]
) -> list[tuple[str, bool]]:
    keys = request.query.get("sort_key", [])
    dirs = request.query.get("sort_dir", [])
    if dirs and len(dirs) != len(keys):
        raise errors.bad_request(
            "The number of sort_keys and sort_dirs must be same", kind="HTTPBadRequest"
        )
    result = []
    for i, key in enumerate(keys):
        attr = attrs.get(key)
        if key != "id" and (attr is None or not attr.sort):
            raise errors.bad_request(
                f"{key} is an invalid attribute for sort_keys", kind="HTTPBadRequest"
            )
        direction = dirs[i] if i < len(dirs) else "asc"
        if direction not in ("asc", "desc"):
            raise errors.bad_request(
                f"{direction} is an invalid value for sort_dirs, valid values are 'asc' and 'desc'",
                kind="HTTPBadRequest",
            )
        result.append((key, direction == "desc"))
    return result


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def _sort_key(name: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda item: _sort_value(item.get(name))


def collection(
    request: rest.ApiRequest,
    key: str,
    items: list[dict[str, Any]],
    attrs: Mapping[str, attributes.Attr],
    special: Mapping[str, Callable[[dict[str, Any], list[str]], bool]] | None = None,
) -> dict[str, Any]:
    """The list response body: filtered, sorted, paged, with only the asked ``fields``."""
    found = filter_items(request, items, attrs, special)
    order = _sorting(request, attrs)
    for name, descending in reversed(order or [("id", False)]):
        found.sort(key=_sort_key(name), reverse=descending)
    links: list[dict[str, str]] = []
    limit_arg = request.arg("limit")
    marker = request.arg("marker")
    reverse = (request.arg("page_reverse") or "").lower() == "true"
    if marker:
        positions = [i for i, item in enumerate(found) if item["id"] == marker]
        if not positions:
            raise errors.bad_request(f"marker {marker} not found", kind="HTTPBadRequest")
        found = found[: positions[0]] if reverse else found[positions[0] + 1 :]
    if limit_arg:
        try:
            limit = int(limit_arg)
        except ValueError:
            raise errors.bad_request(
                f"Bad limit request: Limit must be an integer 0 or greater and not '{limit_arg}'."
            ) from None
        if limit < 0:
            raise errors.bad_request(
                f"Bad limit request: Limit must be an integer 0 or greater and not '{limit_arg}'."
            )
        if limit:
            more = len(found) > limit
            found = found[-limit:] if reverse else found[:limit]
            if found:
                if more:
                    links.append(
                        _link(
                            request,
                            "previous" if reverse else "next",
                            found[0 if reverse else -1]["id"],
                            reverse,
                        )
                    )
                if marker:
                    links.append(
                        _link(
                            request,
                            "next" if reverse else "previous",
                            found[-1 if reverse else 0]["id"],
                            not reverse,
                        )
                    )
    fields = [f for value in request.query.get("fields", []) for f in value.split(",") if f]
    if fields:
        found = [{f: item[f] for f in fields if f in item} for item in found]
    body: dict[str, Any] = {key: found}
    if links:
        body[f"{key}_links"] = links
    return body


def _link(request: rest.ApiRequest, rel: str, marker: str, reverse: bool) -> dict[str, str]:
    params = [
        (k, v)
        for k, values in request.query.items()
        for v in values
        if k not in ("marker", "page_reverse")
    ]
    params.append(("marker", marker))
    if reverse:
        params.append(("page_reverse", "True"))
    return {"rel": rel, "href": f"{request.url}?{urllib.parse.urlencode(params)}"}


def fields_wanted(request: rest.ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    """``fields`` on a single-resource GET."""
    fields = [f for value in request.query.get("fields", []) for f in value.split(",") if f]
    if not fields:
        return body
    return {f: body[f] for f in fields if f in body}
