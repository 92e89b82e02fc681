"""(being written)"""

from __future__ import annotations

from stackbox import rest

ROUTES: list[rest.Route] = []
