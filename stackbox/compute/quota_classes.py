"""Quota classes (``/os-quota-class-sets/{class}``): show and update.

Only the ``default`` class is used (its limits are every project's defaults); other
names can be read and written, as in Nova, but nothing applies them. Before 2.50
server_groups/server_group_members are not shown; from 2.50 the nova-network
resources are gone, from 2.57 the injected-file ones.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, quota_sets, quotas

SERVER_GROUPS = ("server_groups", "server_group_members")


def shown_resources(request: rest.ApiRequest) -> list[str]:
    hidden: tuple[str, ...]
    if microversions.at_least(request, "personality_removed"):
        hidden = quota_sets.NETWORK + quota_sets.INJECTED
    elif microversions.at_least(request, "quota_class_server_groups"):
        hidden = quota_sets.NETWORK
    else:
        hidden = SERVER_GROUPS
    return [name for name in quotas.RESOURCES if name not in hidden]


def _settable(request: rest.ApiRequest) -> list[str]:
    """What an update may set: before 2.50 every resource (server groups included)."""
    if microversions.at_least(request, "quota_class_server_groups"):
        return shown_resources(request)
    return list(quotas.RESOURCES)


def _body(request: rest.ApiRequest, class_name: str | None, values: dict[str, int]) -> Any:
    body: dict[str, Any] = {"id": class_name} if class_name is not None else {}
    for name in shown_resources(request):
        body[name] = values[name]
    return {"quota_class_set": body}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-quota-class-sets:show")
    class_name = request.path_params["class_name"]
    return _body(request, class_name, quotas.class_limits(session, class_name))


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-quota-class-sets:update")
    class_name = request.path_params["class_name"]
    if not 1 <= len(class_name) <= 255:
        raise errors.bad_request(
            "Invalid input received: quota_class_name has a length outside 1 to 255."
        )
    schema = quota_sets.quota_schema("quota_class_set", _settable(request))
    body = common.body_of(request, None, schema)
    for key, value in quota_sets.limit_values(body["quota_class_set"]).items():
        quotas.set_class_limit(session, class_name, key, value)
    session.flush()
    return _body(request, None, quotas.class_limits(session, class_name))


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-quota-class-sets/{class_name}", show),
    rest.Route("PUT", "/v2.1/os-quota-class-sets/{class_name}", update),
]
