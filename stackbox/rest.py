"""Framework-free request and response types for service API handlers.

A service's API module declares ``Route`` objects whose handlers take an
``ApiRequest`` and a database session and return an ``ApiResponse`` (or a dict,
meaning 200 with that JSON body). The web layer does the HTTP, the threading
and the transaction; handlers stay plain functions that tests can read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stackbox import context

_NO_BODY = object()


@dataclasses.dataclass
class ApiRequest:
    method: str
    path: str
    path_params: dict[str, str]
    # Query parameters: every value of each key, in order.
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: Any
    context: context.RequestContext
    # Root URL of the whole server (scheme://host:port, no trailing slash).
    base_url: str
    # Full URL of this request without the query string.
    url: str
    raw_body: bytes = b""
    # For ``stream`` routes: the request body, chunk by chunk (iterate it in the
    # handler's worker thread); the body is then not read into ``body``/``raw_body``.
    body_stream: Iterable[bytes] | None = None
    # The API version the client asked for, as the service's ``negotiate`` parsed it
    # (compute microversions); None for services without versions.
    version: Any = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def has_arg(self, name: str) -> bool:
        return name in self.query


@dataclasses.dataclass
class ApiResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # Raw bytes instead of JSON (for non-JSON payloads).
    content: bytes | None = None
    content_type: str = "application/json"
    # A file to send (Range requests are answered from it) or chunks to stream.
    file: str | None = None
    stream: Iterable[bytes] | None = None


# The second argument is a Session, or the Database for manual_tx routes.
Handler = Callable[[ApiRequest, Any], "ApiResponse | dict[str, Any] | None"]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    # Whether the handler changes the database (runs in a write transaction).
    write: bool | None = None
    # Whether a valid X-Auth-Token is required before the handler runs.
    auth: bool = True
    # Whether the route runs without a database transaction (pure, cheap handlers).
    no_db: bool = False
    # The handler gets the Database instead of a session and runs its own
    # transactions: for work that must not hold a transaction open (password hashing).
    manual_tx: bool = False
    # The handler reads the body itself from ``request.body_stream`` (uploads of any
    # size); implies manual_tx, since no transaction may stay open that long.
    stream: bool = False
    # Tried on the event loop first (answers from caches); None means "use handler".
    fast: Callable[[ApiRequest], ApiResponse | dict[str, Any] | None] | None = None

    @property
    def writes(self) -> bool:
        if self.write is not None:
            return self.write
        return self.method not in ("GET", "HEAD")


class ApiError(Exception):
    """A client-facing error; each service renders it in its own error format.

    ``kind`` is the service's own error type name where it has one (Neutron's
    ``NetworkNotFound``, Nova's ``itemNotFound``); renderers fall back to the status.
    """

    status = 500
    title = "Internal Server Error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.kind = kind
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400
    title = "Bad Request"


class Unauthorized(ApiError):
    status = 401
    title = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"


class NotFound(ApiError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(ApiError):
    status = 405
    title = "Method Not Allowed"


class NotAcceptable(ApiError):
    status = 406
    title = "Not Acceptable"


class Conflict(ApiError):
    status = 409
    title = "Conflict"


class Gone(ApiError):
    status = 410
    title = "Gone"


class PayloadTooLarge(ApiError):
    status = 413
    title = "Request Entity Too Large"


class UnsupportedMediaType(ApiError):
    status = 415
    title = "Unsupported Media Type"


class NotImplementedYet(ApiError):
    status = 501
    title = "Not Implemented"


Negotiator = Callable[[Mapping[str, str]], tuple[Any, dict[str, str]]]
ErrorRenderer = Callable[[ApiError], tuple[int, Any, dict[str, str]]]
Authenticator = Callable[[str, "ApiRequest | None"], context.RequestContext]


@dataclasses.dataclass
class ServiceApi:
    """What a service hands the web layer: its path prefix, routes and error format."""

    name: str
    prefix: str
    routes: list[Route]
    render_error: ErrorRenderer
    # Extra headers on every response of this service (Keystone sets Vary).
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # Reads the request's headers before routing: the version the request asks for and
    # headers for its response, error or not (Nova's microversions); may raise ApiError.
    negotiate: Negotiator | None = None
    # A service-specific name the request id is also sent under (Nova's x-compute-request-id).
    request_id_header: str | None = None
