"""Glance's error body: webob's JSON rendering of an HTTP error."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from stackbox import rest


def render(error: rest.ApiError) -> tuple[int, Any, dict[str, str]]:
    phrase = HTTPStatus(error.status).phrase
    body = {"message": error.message, "code": f"{error.status} {phrase}", "title": phrase}
    return error.status, body, dict(error.headers)


def image_not_found(image_id: str) -> rest.NotFound:
    return rest.NotFound(f"No image found with ID {image_id}")
