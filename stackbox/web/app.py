"""The ASGI application: one port, services under DevStack-style path prefixes.

Each request gets an ``x-openstack-request-id``, is routed by prefix to its
service, authenticated by token when the route needs it, and handled in a worker
thread inside one database transaction. Every error leaves in the owning
service's format; an unexpected exception is logged and becomes a 500 without
a stack trace.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import anyio.from_thread
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from stackbox import context, policy, rest
from stackbox.db import session as db_session

LOG = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024 * 10


class Authenticator(Protocol):
    """Turns an X-Auth-Token into a RequestContext (the identity service supplies it).

    ``cached`` answers on the event loop from memory or returns None; ``load``
    runs in a worker thread with a read session. Both raise rest.Unauthorized.
    """

    def cached(self, token: str, request_id: str) -> context.RequestContext | None: ...

    def load(self, session: Any, token: str, request_id: str) -> context.RequestContext: ...

    def permits(
        self, ctx: context.RequestContext, service_type: str, method: str, path: str
    ) -> bool: ...


class _CompiledRoute:
    __slots__ = ("regex", "route")

    def __init__(self, regex: re.Pattern[str], route: rest.Route) -> None:
        self.regex = regex
        self.route = route


class _Service:
    def __init__(self, api: rest.ServiceApi) -> None:
        self.api = api
        self.by_method: dict[str, list[_CompiledRoute]] = {}
        self.all: list[_CompiledRoute] = []
        for route in api.routes:
            regex, _, _ = compile_path(route.path)
            compiled = _CompiledRoute(regex, route)
            self.by_method.setdefault(route.method, []).append(compiled)
            self.all.append(compiled)

    def match(self, method: str, path: str) -> tuple[rest.Route, dict[str, str]] | None:
        candidates = self.by_method.get(method, [])
        if method == "HEAD" and not candidates:
            candidates = self.by_method.get("GET", [])
        for item in candidates:
            found = item.regex.match(path)
            if found:
                return item.route, found.groupdict()
        if method == "HEAD":
            for item in self.by_method.get("GET", []):
                found = item.regex.match(path)
                if found:
                    return item.route, found.groupdict()
        return None

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({c.route.method for c in self.all if c.regex.match(path)})


# Datetimes and dataclasses go through ``str`` as they did with json's default=str, so
# bodies are the same bytes whichever encoder writes them.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _dumps(body: Any) -> bytes:
    try:
        return orjson.dumps(body, default=str, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        # What orjson refuses (integers beyond 64 bits, ...): the standard library's way.
        return json.dumps(body, separators=(",", ":"), default=str).encode()


class StackboxApp:
    def __init__(
        self,
        services: list[rest.ServiceApi],
        database: db_session.Database,
        authenticator: Authenticator,
        base_url: str,
        on_shutdown: list[Callable[[], Awaitable[None]]] | None = None,
        on_startup: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        # Longest prefix first, so /identity/v3 never falls to a shorter prefix.
        self.services = sorted((_Service(s) for s in services), key=lambda s: -len(s.api.prefix))
        self.db = database
        self.authenticator = authenticator
        self.base_url = base_url.rstrip("/")
        self.on_shutdown = on_shutdown or []
        self.on_startup = on_startup or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self._handle(Request(scope, receive))
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for hook in self.on_startup:
                    await hook()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    await hook()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _find_service(self, path: str) -> tuple[_Service, str] | None:
        for service in self.services:
            prefix = service.api.prefix
            if path == prefix or path.startswith(prefix + "/"):
                return service, path[len(prefix) :] or "/"
        return None

    async def _handle(self, request: Request) -> Response:
        request_id = "req-" + str(uuid.uuid4())
        path = request.url.path
        found = self._find_service(path)
        if found is None:
            return self._root(request, request_id)
        service, sub_path = found
        version_headers: dict[str, str] = {}
        try:
            version = None
            if service.api.negotiate is not None:
                version, version_headers = service.api.negotiate(request.headers)
            response = await self._dispatch(service, sub_path, request, request_id, version)
        except rest.ApiError as error:
            response = self._error(service, error)
        except policy.PolicyNotAuthorized as denied:
            response = self._error(service, rest.Forbidden(str(denied)))
        except Exception:
            LOG.exception("unexpected error in %s %s (%s)", request.method, path, request_id)
            response = self._error(
                service,
                rest.ApiError(
                    "An unexpected error prevented the server from fulfilling your request."
                ),
            )
        response.headers["x-openstack-request-id"] = request_id
        if service.api.request_id_header:
            response.headers[service.api.request_id_header] = request_id
        for key, value in service.api.headers.items():
            response.headers[key] = value
        for key, value in version_headers.items():
            response.headers[key] = value
        return response

    def _root(self, request: Request, request_id: str) -> Response:
        if request.url.path in ("", "/"):
            body = {"services": {s.api.name: self.base_url + s.api.prefix for s in self.services}}
            response = Response(_dumps(body), 200, media_type="application/json")
        else:
            response = Response(
                _dumps({"error": {"code": 404, "message": "Not Found", "title": "Not Found"}}),
                404,
                media_type="application/json",
            )
        response.headers["x-openstack-request-id"] = request_id
        return response

    def _error(self, service: _Service, error: rest.ApiError) -> Response:
        status, body, headers = service.api.render_error(error)
        return Response(_dumps(body), status, headers=headers, media_type="application/json")

    async def _dispatch(
        self,
        service: _Service,
        sub_path: str,
        request: Request,
        request_id: str,
        version: Any = None,
    ) -> Response:
        method = request.method
        matched = service.match(method, sub_path)
        if matched is None and sub_path.endswith("/") and sub_path != "/":
            matched = service.match(method, sub_path.rstrip("/"))
        if matched is None:
            allowed = service.allowed_methods(sub_path)
            if allowed:
                raise rest.MethodNotAllowed(
                    f"The method {method} is not allowed for the requested URL.",
                    headers={"Allow": ", ".join(allowed)},
                )
            raise rest.NotFound("The resource could not be found.")
        route, params = matched

        ctx = context.RequestContext(request_id=request_id)
        token = request.headers.get("x-auth-token")
        if route.auth:
            if not token:
                raise rest.Unauthorized("The request you have made requires authentication.")
            cached = self.authenticator.cached(token, request_id)
            if cached is not None:
                ctx = cached
            else:
                ctx = await run_in_threadpool(
                    self.db.run,
                    lambda s: self.authenticator.load(s, token, request_id),
                    write=False,
                )
            # An application credential's access rules limit its tokens on every
            # service, identity included (401, as Keystone's auth middleware answers).
            if not self.authenticator.permits(ctx, service.api.name, method, sub_path):
                raise rest.Unauthorized("The request you have made requires authentication.")

        raw = b""
        body: Any = None
        if not route.stream:
            raw = await request.body()
            if len(raw) > MAX_BODY:
                raise rest.PayloadTooLarge("Request is too large.")
            if raw.strip():
                ctype = request.headers.get("content-type", "application/json")
                if "json" in ctype or not ctype or ctype.startswith("text/plain"):
                    try:
                        body = json.loads(raw)
                    except (ValueError, UnicodeDecodeError):
                        raise rest.BadRequest(
                            "Malformed request body: the body is not valid JSON."
                        ) from None

        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        url = str(request.url.replace(query=""))
        api_request = rest.ApiRequest(
            method=method,
            path=sub_path,
            path_params=params,
            query=query,
            headers=request.headers,
            body=body,
            context=ctx,
            base_url=self.base_url,
            url=url,
            raw_body=raw,
            body_stream=_BodyStream(request) if route.stream else None,
            version=version,
        )
        result = route.fast(api_request) if route.fast is not None else None
        if result is not None:
            pass
        elif route.no_db:
            result = route.handler(api_request, None)
        elif route.manual_tx or route.stream:
            result = await run_in_threadpool(route.handler, api_request, self.db)
        else:
            result = await run_in_threadpool(
                self.db.run, lambda s: route.handler(api_request, s), write=route.writes
            )
        return _to_response(result)


class _BodyStream:
    """The request body for a handler in a worker thread, pulled from the event loop about
    a mebibyte at a time: memory holds one batch, and a gigabyte costs a thousand
    thread-to-loop round trips rather than one per network read."""

    BATCH = 1 << 20

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream()
        self._done = False

    async def _batch(self) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        while size < self.BATCH:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            if chunk:
                batch.append(chunk)
                size += len(chunk)
        return batch

    def __iter__(self) -> Iterator[bytes]:
        while not self._done:
            yield from anyio.from_thread.run(self._batch)


def _to_response(result: rest.ApiResponse | dict[str, Any] | None) -> Response:
    if result is None:
        return Response(b"", 204)
    if isinstance(result, dict):
        return Response(_dumps(result), 200, media_type="application/json")
    if result.file is not None:
        return FileResponse(
            result.file, result.status, headers=result.headers, media_type=result.content_type
        )
    if result.stream is not None:
        return StreamingResponse(
            result.stream, result.status, headers=result.headers, media_type=result.content_type
        )
    if result.content is not None:
        return Response(
            result.content, result.status, headers=result.headers, media_type=result.content_type
        )
    if result.body is None:
        return Response(b"", result.status, headers=result.headers)
    return Response(
        _dumps(result.body), result.status, headers=result.headers, media_type=result.content_type
    )
