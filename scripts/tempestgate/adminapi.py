"""Admin calls to one of the running cloud's APIs (urllib: the runner has no other client)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tempestgate.cloud import Cloud, CloudError

TIMEOUT = 60


class AdminApi:
    """JSON requests as the cloud's admin, rooted at ``base`` (a catalog URL plus a suffix)."""

    def __init__(self, cloud: Cloud, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base.rstrip("/")
        self.headers = {"X-Auth-Token": cloud.admin_token, **(headers or {})}

    def _send(self, method: str, path: str, data: bytes | None, content_type: str) -> bytes:
        request = urllib.request.Request(
            self.base + path,
            data=data,
            headers={**self.headers, "Content-Type": content_type},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise CloudError(f"{method} {self.base}{path}: {exc.code} {detail}") from None
        except OSError as exc:
            raise CloudError(f"{method} {self.base}{path}: {exc}") from None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        answer = self._send(method, path, data, "application/json")
        return json.loads(answer) if answer else None

    def get_bytes(self, path: str) -> bytes:
        return self._send("GET", path, None, "application/json")

    def put_bytes(self, path: str, data: bytes) -> None:
        self._send("PUT", path, data, "application/octet-stream")
