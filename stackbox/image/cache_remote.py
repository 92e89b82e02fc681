"""Fill a node's image cache through the Image API, as a compute node does.

A node has no database and no image store: it authenticates with the
credentials of a clouds.yaml entry, finds the image endpoint in the catalog,
reads each queued image's record (``GET /v2/images/{id}``) for its size and
hashes, and downloads ``/v2/images/{id}/file`` into the cache, which verifies
the data before keeping it. Only the standard library: agents run without the
test tooling installed.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from stackbox.image import cache

DEFAULT_CLOUD = "stackbox-admin"
TIMEOUT = 60.0


class RemoteError(cache.CacheError):
    """The Image API or Identity could not be reached or refused us."""


@dataclasses.dataclass(frozen=True)
class ImageApi:
    """An authenticated view of the Image API (a cache.Source)."""

    url: str
    token: str

    def _open(self, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"X-Auth-Token": self.token, "Accept": "*/*"}
        )
        return urllib.request.urlopen(request, timeout=TIMEOUT)

    def describe(self, image_id: str) -> Mapping[str, Any] | None:
        try:
            with self._open(f"/v2/images/{image_id}") as response:
                found = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RemoteError(f"GET image {image_id}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RemoteError(f"GET image {image_id}: {exc}") from None
        if not isinstance(found, dict):
            raise RemoteError(f"GET image {image_id}: not an image record")
        return found

    def read(self, image_id: str, image: Mapping[str, Any]) -> Iterator[bytes]:
        try:
            response = self._open(f"/v2/images/{image_id}/file")
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"download of {image_id}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteError(f"download of {image_id}: {exc}") from None
        with response:
            while chunk := response.read(cache.CHUNK):
                yield chunk


def _post_json(url: str, body: dict[str, Any]) -> tuple[dict[str, Any], Mapping[str, str]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read()), response.headers
    except urllib.error.HTTPError as exc:
        raise RemoteError(f"authentication at {url} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RemoteError(f"authentication at {url} failed: {exc}") from None


def _password_auth(auth: Mapping[str, Any]) -> dict[str, Any]:
    user: dict[str, Any] = {"name": auth.get("username"), "password": auth.get("password")}
    if auth.get("user_domain_id"):
        user["domain"] = {"id": auth["user_domain_id"]}
    else:
        user["domain"] = {"name": auth.get("user_domain_name", "Default")}
    body: dict[str, Any] = {
        "auth": {"identity": {"methods": ["password"], "password": {"user": user}}}
    }
    if auth.get("project_id"):
        body["auth"]["scope"] = {"project": {"id": auth["project_id"]}}
    elif auth.get("project_name"):
        domain = (
            {"id": auth["project_domain_id"]}
            if auth.get("project_domain_id")
            else {"name": auth.get("project_domain_name", "Default")}
        )
        body["auth"]["scope"] = {"project": {"name": auth["project_name"], "domain": domain}}
    return body


def _image_endpoint(catalog: list[dict[str, Any]], interface: str, region: str | None) -> str:
    for service in catalog:
        if service.get("type") != "image":
            continue
        for endpoint in service.get("endpoints", []):
            if endpoint.get("interface") != interface:
                continue
            if region and region not in (endpoint.get("region_id"), endpoint.get("region")):
                continue
            return str(endpoint["url"]).rstrip("/")
    raise RemoteError(f"the catalog has no {interface} image endpoint")


def connect(clouds_yaml: Path, cloud: str = DEFAULT_CLOUD) -> ImageApi:
    """Log in with a clouds.yaml entry's password credentials."""
    try:
        entries = (yaml.safe_load(clouds_yaml.read_text()) or {}).get("clouds") or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RemoteError(f"cannot read {clouds_yaml}: {exc}") from None
    entry = entries.get(cloud)
    if not isinstance(entry, dict) or not isinstance(entry.get("auth"), dict):
        raise RemoteError(f"{clouds_yaml} has no cloud {cloud!r}")
    auth = entry["auth"]
    auth_url = str(auth.get("auth_url", "")).rstrip("/")
    if not auth_url.endswith("/v3"):
        auth_url += "/v3"
    body, headers = _post_json(f"{auth_url}/auth/tokens", _password_auth(auth))
    token = headers.get("X-Subject-Token")
    if not token:
        raise RemoteError("the identity service returned no token")
    catalog = (body.get("token") or {}).get("catalog") or []
    url = _image_endpoint(catalog, entry.get("interface", "public"), entry.get("region_name"))
    return ImageApi(url=url, token=token)
