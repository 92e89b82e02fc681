"""(being written) Security groups and rules.

Contract used by ports: ensure_default(session, project_id) -> str returns the id of the
project's "default" group, creating it (with Neutron's default rules) on first use.
"""

from __future__ import annotations

from stackbox import rest

ROUTES: list[rest.Route] = []
