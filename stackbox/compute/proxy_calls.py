"""What the deprecated proxy APIs share: the microversion gate they vanish at, and
calling another service's handler in-process as Nova calls that service over HTTP.

Nova's proxies (images, security groups, floating IPs, networks) send the user's own
request to Glance or Neutron and translate the answer. stackbox runs those services
in the same process and transaction: a proxy builds a sub-request (the caller's
context, the other service's path parameters and body), calls the service's handler,
and turns its errors into Nova's (no Neutron type names, Nova's statuses).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from stackbox import rest
from stackbox.compute import errors, microversions


def require_proxy(request: rest.ApiRequest, gate: str = "proxy_apis_removed") -> None:
    """404 from the microversion that removed the proxy (2.36 for most of them)."""
    if microversions.at_least(request, gate):
        raise errors.not_found("The resource could not be found.")


def sub_request(
    request: rest.ApiRequest,
    *,
    path_params: Mapping[str, str] | None = None,
    body: Any = None,
    query: Mapping[str, list[str]] | None = None,
    method: str | None = None,
    path: str | None = None,
) -> rest.ApiRequest:
    """The caller's request as another service's handler should see it."""
    return dataclasses.replace(
        request,
        method=method or request.method,
        path=path or request.path,
        path_params=dict(path_params or {}),
        body=body,
        raw_body=b"",
        query=dict(query or {}),
        headers={},
        version=None,
    )


def nova_error(
    exc: rest.ApiError, statuses: Mapping[int, int] | None = None, message: str | None = None
) -> rest.ApiError:
    """``exc`` (another service's error) as the compute API reports it: its status mapped
    through ``statuses`` (others kept), the message kept unless one is given."""
    status = (statuses or {}).get(exc.status, exc.status)
    error = rest.ApiError(message or exc.message, status=status)
    error.title = exc.title
    return error


def gone() -> rest.ApiError:
    """Nova's answer for the nova-network APIs removed in 21.0.0 (Ussuri)."""
    return rest.Gone("This resource is no longer available.  No forwarding address is given.")
