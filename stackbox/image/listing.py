"""GET /v2/images: Glance's image list with its filters, sorting and pagination.

Everything is decided in SQL (visibility, filters, order, the marker's position,
the limit); an image's properties, tags and stores are then loaded for the whole
page at once. The parameters and their errors follow Glance's request
deserializer and its database query: the default view is the caller's own
images, public ones, shared ones the caller accepted, and the caller's own
community images; other community images only with ``visibility=community`` or
``visibility=all``. Admins see every image.
"""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.image import access, errors, images, locations, models, stores

# Glance's limit_param_default and api_limit_max.
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)
SORT_DIRS = ("asc", "desc")
DEFAULT_SORT_KEY = "created_at"
DEFAULT_SORT_DIR = "desc"
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
LIST_VISIBILITIES = (*images.VISIBILITIES, "all")
# Parameters that are not filters.
CONTROL = ("limit", "marker", "member_status", "tag", "sort", "sort_key", "sort_dir")
# Filters taking "eq:v" (the default) or "in:a,b,..." lists.
LIST_FILTERS = ("name", "id", "status", "container_format", "disk_format")
TIME_FILTERS = ("created_at", "updated_at")
TIME_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte")
NUMERIC_COLUMNS = ("size", "virtual_size", "min_ram", "min_disk")
TEXT_COLUMNS = ("owner", "checksum", "os_hash_algo", "os_hash_value")
BOOLEAN_FILTERS = ("protected", "os_hidden")
# Never listed (Glance hides killed images; deleted rows are gone here anyway).
UNLISTED_STATUSES = ("killed", "deleted")
# Sort keys whose column may be NULL: ordered and compared as this default instead,
# so that the order and the marker's position agree on every database.
NULL_AS = {"name": "", "container_format": "", "disk_format": "", "size": 0}


@dataclasses.dataclass
class Query:
    limit: int
    marker: str | None
    member_status: str
    visibility: str | None
    sort: list[tuple[str, str]]
    conditions: list[ColumnElement[bool]]


def _last(request: rest.ApiRequest, name: str) -> str | None:
    values = request.query.get(name)
    return values[-1] if values else None


# -- parsing -----------------------------------------------------------------------


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise rest.BadRequest("limit param must be an integer") from None
    if limit < 0:
        raise rest.BadRequest("limit param must be positive")
    return min(limit, MAX_LIMIT)


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise rest.BadRequest(
            f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}."
        )
    return key


def _sort_dir(direction: str) -> str:
    if direction not in SORT_DIRS:
        raise rest.BadRequest(f"Invalid sort direction: {direction}")
    return direction


def _sorting(request: rest.ApiRequest) -> list[tuple[str, str]]:
    """``sort=k1:dir,k2`` or the classic repeated ``sort_key``/``sort_dir``, never both.

    A single classic direction applies to every key, and the tie-breakers
    created_at and id follow in that direction (Glance's rules).
    """
    keys: list[str] = []
    dirs: list[str] = []
    if request.has_arg("sort"):
        if request.has_arg("sort_key") or request.has_arg("sort_dir"):
            raise rest.BadRequest("Old and new sorting syntax cannot be combined")
        for value in request.query["sort"]:
            for item in value.strip().split(","):
                key, _, direction = item.partition(":")
                keys.append(_sort_key(key.strip()))
                dirs.append(_sort_dir(direction.strip() or DEFAULT_SORT_DIR))
    else:
        keys = [_sort_key(k.strip()) for k in request.query.get("sort_key", [])]
        dirs = [_sort_dir(d.strip()) for d in request.query.get("sort_dir", [])]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise rest.BadRequest("Number of sort dirs does not match the number of sort keys")
    keys = keys or [DEFAULT_SORT_KEY]
    default_dir = dirs[0] if len(dirs) == 1 else DEFAULT_SORT_DIR
    if len(dirs) <= 1:
        dirs = [default_dir] * len(keys)
    sort = list(zip(keys, dirs, strict=True))
    for key in ("created_at", "id"):
        if key not in keys:
            sort.append((key, default_dir))
    return sort


def _parse_time(text: str) -> datetime.datetime | None:
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


def _split_operator(expression: str) -> tuple[str, str]:
    """``op:value`` → (op, value); a bare value (or a bare ISO time) means ``eq``."""
    left, sep, right = expression.partition(":")
    if not sep or _parse_time(expression) is not None:
        return "eq", expression
    return left, right


def _split_list(value: str) -> list[str]:
    """The items of an ``in:`` list: commas separate, double quotes protect commas."""
    items: list[str] = []
    i, n = 0, len(value)
    while i < n:
        if value[i] == '"':
            j = i + 1
            chars: list[str] = []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(value[j])
                j += 1
            if j >= n:
                raise rest.BadRequest(f"Invalid filter value {value}. The quote is not closed.")
            if j + 1 < n and value[j + 1] != ",":
                raise rest.BadRequest(
                    f"Invalid filter value {value}. There is no comma after closing quotation mark."
                )
            items.append("".join(chars))
            i = j + 2
            continue
        end = value.find(",", i)
        end = n if end < 0 else end
        item = value[i:end]
        if '"' in item.replace('\\"', ""):
            raise rest.BadRequest(
                f"Invalid filter value {value}. There is no comma before opening quotation mark."
            )
        items.append(item)
        i = end + 1
    return items


def _time_condition(name: str, expression: str) -> ColumnElement[bool]:
    """Compare as the API shows times: to the second (rows keep microseconds)."""
    operator, text = _split_operator(expression)
    moment = _parse_time(text)
    if moment is None:
        raise rest.BadRequest(f'Bad "{name}" query filter format. Use ISO 8601 DateTime notation.')
    if operator not in TIME_OPERATORS:
        raise rest.BadRequest("Unable to filter on a unknown operator.")
    column = getattr(models.Image, name)
    floor = moment.replace(microsecond=0)
    ceil = floor + datetime.timedelta(seconds=1 if moment.microsecond else 0)
    after_floor = floor + datetime.timedelta(seconds=1)
    same_second = and_(column >= floor, column < after_floor) if floor == moment else false()
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": same_second,
        "neq": not_(same_second),
        "gt": column >= after_floor,
        "gte": column >= ceil,
        "lt": column < ceil,
        "lte": column < after_floor,
    }
    return conditions[operator]


def _list_condition(name: str, expression: str) -> ColumnElement[bool]:
    column = getattr(models.Image, name)
    operator, value = _split_operator(expression)
    if operator == "in":
        return column.in_(_split_list(value))
    if operator == "eq":
        return column == value
    raise rest.BadRequest(f"Unable to filter by unknown operator '{operator}'.")


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise rest.BadRequest(f"Invalid value '{value}' for '{name}' filter.") from None


def _boolean(name: str, value: str) -> bool:
    # Glance lowercases: openstacksdk sends os_hidden=False.
    value = value.lower()
    if value not in ("true", "false"):
        raise rest.BadRequest(
            f"Invalid value '{value}' for '{name}' filter. Valid values are 'true' or 'false'."
        )
    return value == "true"


def _property_condition(name: str, value: str) -> ColumnElement[bool]:
    prop = models.ImageProperty
    return exists(
        select(prop.image_id).where(
            prop.image_id == models.Image.id, prop.name == name, prop.value == value
        )
    )


def _tag_condition(tag: str) -> ColumnElement[bool]:
    tag_row = models.ImageTag
    return exists(
        select(tag_row.image_id).where(tag_row.image_id == models.Image.id, tag_row.value == tag)
    )


def _filter(name: str, value: str) -> ColumnElement[bool] | None:
    """The condition of one filter parameter (None: the parameter filters nothing)."""
    image = models.Image
    if name == "changes-since":
        raise rest.BadRequest('The "changes-since" filter is no longer available on v2.')
    if name == "deleted":
        return None
    if name in LIST_FILTERS:
        return _list_condition(name, value)
    if name in TIME_FILTERS:
        return _time_condition(name, value)
    if name in BOOLEAN_FILTERS:
        return getattr(image, name) == _boolean(name, value)
    if name in NUMERIC_COLUMNS:
        return getattr(image, name) == _integer(name, value)
    if name in TEXT_COLUMNS:
        return getattr(image, name) == value
    base, _, bound = name.rpartition("_")
    if base in NUMERIC_COLUMNS and bound in ("min", "max"):
        try:
            number = int(value)
        except ValueError:
            raise rest.BadRequest("Unable to filter on a range with a non-numeric value.") from None
        column = getattr(image, base)
        return column >= number if bound == "min" else column <= number
    return _property_condition(name, value)


def parse(request: rest.ApiRequest) -> Query:
    member_status = _last(request, "member_status") or "accepted"
    if member_status not in MEMBER_STATUSES:
        raise rest.BadRequest(f"Invalid status: {member_status}")
    visibility = _last(request, "visibility")
    if visibility is not None and visibility not in LIST_VISIBILITIES:
        raise rest.BadRequest(f"Invalid visibility value: {visibility}")
    conditions: list[ColumnElement[bool]] = [
        models.Image.status.not_in(UNLISTED_STATUSES),
        # Hidden images are listed only when asked for (os_hidden=true).
        models.Image.os_hidden
        == _boolean("os_hidden", (_last(request, "os_hidden") or "false").lower()),
    ]
    for name in request.query:
        if name in CONTROL or name in ("visibility", "os_hidden"):
            continue
        condition = _filter(name, request.query[name][-1])
        if condition is not None:
            conditions.append(condition)
    for tag in request.query.get("tag", []):
        conditions.append(_tag_condition(tag.strip()))
    return Query(
        limit=_limit(_last(request, "limit")),
        marker=_last(request, "marker"),
        member_status=member_status,
        visibility=visibility,
        sort=_sorting(request),
        conditions=conditions,
    )


# -- the query -----------------------------------------------------------------------


def _visible(select_images: Select[Any], ctx: context.RequestContext, query: Query) -> Select[Any]:
    image = models.Image
    project = ctx.project_id or ""
    if not access.is_admin(ctx):
        statuses = None if query.member_status == "all" else (query.member_status,)
        select_images = select_images.where(
            or_(
                image.owner == project,
                image.visibility.in_(("public", "community")),
                and_(image.visibility == "shared", access.member_clause(project, statuses)),
            )
        )
    if query.visibility is None:
        # Community images are listed by default only to their owner.
        return select_images.where(or_(image.owner == project, image.visibility != "community"))
    if query.visibility != "all":
        return select_images.where(image.visibility == query.visibility)
    return select_images


def _sort_expression(key: str) -> Any:
    column = getattr(models.Image, key)
    if key in NULL_AS:
        return func.coalesce(column, NULL_AS[key])
    return column


def _marker_value(marker: models.Image, key: str) -> Any:
    value = getattr(marker, key)
    return NULL_AS.get(key) if value is None else value


def _after_marker(marker: models.Image, sort: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    """Rows that come after ``marker`` in this order: (k1 > m1) or (k1 = m1 and k2 > m2) ..."""
    alternatives = []
    for i, (key, direction) in enumerate(sort):
        terms = [_sort_expression(k) == _marker_value(marker, k) for k, _ in sort[:i]]
        expression, value = _sort_expression(key), _marker_value(marker, key)
        terms.append(expression < value if direction == "desc" else expression > value)
        alternatives.append(and_(*terms))
    return or_(*alternatives)


def _marker(session: Session, ctx: context.RequestContext, marker_id: str) -> models.Image:
    found = None
    if access.UUID_RE.match(marker_id):
        found = session.scalars(
            access.visible(select(models.Image).where(models.Image.id == marker_id), ctx)
        ).first()
    if found is None:
        raise rest.BadRequest(errors.image_not_found(marker_id).message)
    return found


def _children(
    session: Session, ids: list[str]
) -> tuple[dict[str, dict[str, str]], dict[str, list[str]], dict[str, list[str]]]:
    """Properties, tags and store names of many images, in three queries."""
    props: dict[str, dict[str, str]] = defaultdict(dict)
    tags: dict[str, list[str]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    if not ids:
        return props, tags, names
    prop = models.ImageProperty
    for image_id, name, value in session.execute(
        select(prop.image_id, prop.name, prop.value).where(prop.image_id.in_(ids))
    ):
        props[image_id][name] = value
    tag = models.ImageTag
    for image_id, value in session.execute(
        select(tag.image_id, tag.value).where(tag.image_id.in_(ids)).order_by(tag.value)
    ):
        tags[image_id].append(value)
    loc = models.ImageLocation
    for image_id, store in session.execute(
        select(loc.image_id, loc.store)
        .where(loc.image_id.in_(ids), loc.status == "active", loc.store != stores.STAGING)
        .order_by(loc.id)
    ):
        names[image_id].append(store)
    return props, tags, names


def _policy_target(ctx: context.RequestContext, image: models.Image) -> dict[str, Any]:
    # A listed shared image the caller does not own was found through its membership.
    shared_with_caller = image.visibility == "shared" and image.owner != ctx.project_id
    return {
        "project_id": image.owner,
        "owner": image.owner,
        "visibility": image.visibility,
        "member_id": ctx.project_id if shared_with_caller else None,
        "id": image.id,
    }


def _may_show(
    ctx: context.RequestContext, image: models.Image, verdicts: dict[tuple[Any, ...], bool]
) -> bool:
    """The get_image policy for one listed image, as Glance checks each one.

    A page shares few owners and visibilities, so verdicts are kept per target
    without its id (policies are written against owners and visibility, not ids);
    this makes a 1000-image page cost a handful of policy checks instead of 1000.
    """
    target = _policy_target(ctx, image)
    key = tuple(sorted((k, v) for k, v in target.items() if k != "id"))
    if key not in verdicts:
        verdicts[key] = policy.allowed(ctx, "get_image", target, service="image")
    return verdicts[key]


def _links(request: rest.ApiRequest, next_marker: str | None) -> dict[str, str]:
    params = [(k, v) for k, values in request.query.items() if k != "marker" for v in values]
    query = urllib.parse.urlencode(params)
    links = {"first": f"/v2/images?{query}" if query else "/v2/images"}
    if next_marker is not None:
        links["next"] = "/v2/images?" + urllib.parse.urlencode([*params, ("marker", next_marker)])
    return links


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    if request.path.endswith("/"):
        # "/v2/images/" is an image show with an empty id to Glance: 404, not a list.
        raise rest.NotFound("The resource could not be found.")
    query = parse(request)
    ctx = request.context
    policy.enforce(ctx, "get_images", {"project_id": ctx.project_id}, service="image")
    statement = _visible(select(models.Image).where(*query.conditions), ctx, query)
    verdicts: dict[tuple[Any, ...], bool] = {}
    if query.marker is not None:
        statement = statement.where(_after_marker(_marker(session, ctx, query.marker), query.sort))
    for key, direction in query.sort:
        expression = _sort_expression(key)
        statement = statement.order_by(expression.desc() if direction == "desc" else expression)
    rows = list(session.scalars(statement.limit(query.limit)))
    shown = [image for image in rows if _may_show(ctx, image, verdicts)]
    props, tags, names = _children(session, [image.id for image in shown])
    body: dict[str, Any] = {
        "images": [
            images.view(i, props[i.id], tags[i.id], names[i.id], locations.shown(session, i, ctx))
            for i in shown
        ],
        "schema": "/v2/schemas/images",
    }
    # The page was full in the database: there may be more (Glance's rule).
    next_marker = shown[-1].id if shown and len(rows) == query.limit else None
    body.update(_links(request, next_marker))
    return body


ROUTES = [rest.Route("GET", "/v2/images", index)]
