"""Glance's read-only http store, and the allow-list of every URL the server fetches.

Image data may stay where it is, at an http(s) URL that is a location of the
image: downloads stream from there, the size comes from a HEAD request, and
nothing is ever written back (read-only, as Glance's http store).

Any URL the server itself requests (a location, a web-download, each redirect
on the way) must pass ``check_url``: an allowed scheme, host and port (the
``import_allowed_*`` settings, Glance's import filtering). When no host list
is configured, hosts that name this machine or its link (loopback, link-local
such as the metadata address, unspecified, multicast, reserved addresses) are
refused too; a listed host is the operator's explicit choice and is allowed
whatever its address. The connection then goes to an address that was checked,
so a name cannot resolve to something else between the check and the request.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from collections.abc import Generator

from stackbox import rest
from stackbox.image import runtime

DEFAULT_PORTS = {"http": 80, "https": 443}
SCHEMES = ("http", "https")
# Seconds any one network step (connect, each read) may take.
TIMEOUT = 60.0
CHUNK = 1 << 20
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "stackbox-image/1"


class FetchFailed(Exception):
    """The data or size at a URL could not be had; the message says why (no credentials)."""


@dataclasses.dataclass(frozen=True)
class Target:
    """A URL that passed the allow-list, and the addresses it may be reached at."""

    scheme: str
    host: str
    port: int
    # Path and query as sent in the request line (the fragment never leaves us).
    resource: str
    addresses: tuple[str, ...]
    # user:password from the URL, for Basic authentication (the http store's form).
    credentials: str | None


def enabled() -> bool:
    return runtime.get().settings.http_store


def store_id() -> str:
    return runtime.get().settings.http_store_id


def is_http_url(url: str) -> bool:
    return urllib.parse.urlsplit(url).scheme.lower() in SCHEMES


# --- the allow-list ---


def _csv(value: str) -> list[str]:
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def _normal_host(host: str) -> str | None:
    """The host as a canonical address or a lower-case name; None for numeric forms that
    hide an address (``2130706433``, ``127.1``, ``0x7f.1``), which Glance refuses too."""
    for kind in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        with contextlib.suppress(ValueError):
            return str(kind(host))
    name = host.rstrip(".").lower()
    if not name or all(c.isdigit() or c == "." for c in name):
        return None
    if name.split(".")[-1].startswith("0x"):
        return None
    return name


def _local(address: str) -> bool:
    """Whether an address reaches this machine or its link rather than a remote server."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip.is_reserved
    )


def _addresses(host: str, port: int) -> tuple[str, ...]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in found))


def resolve(url: str) -> Target | None:
    """The URL's target if the server may fetch it; None if the allow-list refuses it."""
    settings = runtime.get().settings
    try:
        parts = urllib.parse.urlsplit(url)
        explicit_port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or scheme not in _csv(settings.import_allowed_schemes):
        return None
    host = _normal_host(parts.hostname or "")
    if host is None:
        return None
    port = explicit_port or DEFAULT_PORTS[scheme]
    ports = {int(p) for p in _csv(settings.import_allowed_ports)}
    if ports and port not in ports:
        return None
    listed = {_normal_host(h) for h in _csv(settings.import_allowed_hosts)}
    addresses = _addresses(host, port)
    if not addresses:
        return None
    if listed:
        if host not in listed:
            return None
    elif any(_local(address) for address in addresses):
        return None
    credentials = None
    if parts.username is not None:
        credentials = f"{urllib.parse.unquote(parts.username)}:"
        credentials += urllib.parse.unquote(parts.password or "")
    resource = parts.path or "/"
    if parts.query:
        resource += f"?{parts.query}"
    return Target(scheme, host, port, resource, addresses, credentials)


def allowed(url: str) -> bool:
    return resolve(url) is not None


def check_url(url: str, what: str = "location") -> None:
    """400 unless the server may fetch ``url`` (the allow-list; Glance's wording).

    Shared by everything that fetches on a caller's behalf (locations,
    web-download): ``what`` names the use in the message.
    """
    if not allowed(url):
        raise rest.BadRequest(f"URI for {what} does not pass filtering: {shown(url)}")


def shown(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<malformed URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))


# --- connections to checked addresses ---


def _connect_any(addresses: tuple[str, ...], port: int, timeout: float) -> socket.socket:
    failure: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            failure = exc
    raise failure or OSError("no address to connect to")


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target) -> None:
        super().__init__(target.host, target.port, timeout=TIMEOUT)
        self._addresses = target.addresses

    def connect(self) -> None:
        self.sock = _connect_any(self._addresses, self.port, TIMEOUT)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=TIMEOUT, context=self._tls)
        self._addresses = target.addresses

    def connect(self) -> None:
        raw = _connect_any(self._addresses, self.port, TIMEOUT)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class Response:
    """An open response and its connection (closing it closes both)."""

    def __init__(self, connection: http.client.HTTPConnection, raw: http.client.HTTPResponse):
        self.connection = connection
        self.raw = raw

    @property
    def status(self) -> int:
        return self.raw.status

    def header(self, name: str) -> str | None:
        return self.raw.getheader(name)

    def close(self) -> None:
        self.raw.close()
        self.connection.close()


def _origin(target: Target) -> tuple[str, str, int]:
    return target.scheme, target.host, target.port


def open_url(url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> Response:
    """Send ``method`` to ``url``, following redirects that pass the allow-list too."""
    extra = dict(headers or {})
    first: Target | None = None
    for _ in range(MAX_REDIRECTS + 1):
        target = resolve(url)
        if target is None:
            raise FetchFailed(f"URI does not pass filtering: {shown(url)}")
        first = first or target
        same_origin = _origin(target) == _origin(first)
        # Headers and credentials the caller gave go only to the origin they were meant
        # for, never on to where a redirect points.
        sent = {"User-Agent": USER_AGENT, "Accept": "*/*", **(extra if same_origin else {})}
        if target.credentials and same_origin:
            token = base64.b64encode(target.credentials.encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        connection: http.client.HTTPConnection = (
            _PinnedHTTPS(target) if target.scheme == "https" else _PinnedHTTP(target)
        )
        try:
            connection.request(method, target.resource, headers=sent)
            raw = connection.getresponse()
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            connection.close()
            raise FetchFailed(f"{method} {shown(url)} failed: {exc}") from None
        response = Response(connection, raw)
        location = response.header("Location")
        if response.status in REDIRECTS and location:
            response.close()
            url = urllib.parse.urljoin(url, location)
            if response.status == 303 and method != "HEAD":
                method = "GET"
            continue
        return response
    raise FetchFailed(f"Too many redirects from {shown(url)}")


# --- the store's operations ---


def size(url: str) -> int:
    """The size of the data at ``url`` (HEAD, Content-Length)."""
    response = open_url(url, method="HEAD")
    try:
        if response.status != 200:
            raise FetchFailed(f"HEAD {shown(url)} answered HTTP {response.status}")
        length = response.header("Content-Length")
        if length is None or not length.strip().isdigit():
            raise FetchFailed(f"HEAD {shown(url)} gave no usable Content-Length")
        return int(length)
    finally:
        response.close()


def read(url: str, first: int = 0, length: int | None = None) -> Generator[bytes, None, None]:
    """The data at ``url`` from byte ``first``, ``length`` bytes (None: to the end).

    The request is made now (FetchFailed if it cannot be); the body is read as
    the returned iterator is consumed. A server that ignores the Range header
    is read from the start and the leading bytes dropped.
    """
    headers = {}
    if first or length is not None:
        last = "" if length is None else str(first + length - 1)
        headers["Range"] = f"bytes={first}-{last}"
    response = open_url(url, headers=headers)
    if response.status == 206 and headers:
        skip = 0
    elif response.status == 200:
        skip = first
    else:
        response.close()
        raise FetchFailed(f"GET {shown(url)} answered HTTP {response.status}")
    return _body(response, url, skip, length)


def _body(
    response: Response, url: str, skip: int, length: int | None
) -> Generator[bytes, None, None]:
    left = length
    try:
        while left is None or left > 0:
            try:
                chunk = response.raw.read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise FetchFailed(f"Reading {shown(url)} failed: {exc}") from None
            if not chunk:
                if left:
                    raise FetchFailed(f"{shown(url)} ended {left} bytes early")
                return
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
            if left is not None:
                chunk = chunk[:left]
                left -= len(chunk)
            yield chunk
    finally:
        response.close()
