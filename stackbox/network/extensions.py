"""GET /v2.0/extensions: exactly the API extensions stackbox implements.

Clients and Tempest decide what to call from this list, so an alias belongs here
only once its behaviour is served (each module that implements one adds it).
"""

from __future__ import annotations

from typing import Any

from stackbox import rest
from stackbox.network import errors

UPDATED = "2026-11-22T00:00:00-00:00"

# alias -> (name, description)
EXTENSIONS: dict[str, tuple[str, str]] = {
    "standard-attr-description": (
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    "standard-attr-revisions": (
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    "standard-attr-timestamp": (
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron "
        "resources that have Neutron standard attributes.",
    ),
    "revision-if-match": (
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    "network-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "network-mtu-writable": (
        "Network MTU (writable)",
        "Provides a writable MTU attribute for a network resource.",
    ),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "multi-provider": (
        "Multi Provider Network",
        "Expose mapping of virtual networks to multiple physical networks",
    ),
    "external-net": (
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "network_availability_zone": (
        "Network Availability Zone",
        "Availability zone support for network.",
    ),
    "sorting": ("Sorting support", "Enables sorting support on all endpoints."),
    "pagination": ("Pagination support", "Enables pagination support on all endpoints."),
    "filter-validation": (
        "Filter parameters validation",
        "Provides validation on filter parameters.",
    ),
    "fields": ("fields", "Select the fields a response shows"),
    "empty-string-filtering": (
        "Empty String Filtering Extension",
        "Allow filtering by attributes with empty string value",
    ),
    "port-security": ("Port Security", "Provides port security"),
    "quotas": ("Quota management support", "Expose functions for quotas management per tenant"),
    "project-id": (
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
}


def _body(alias: str) -> dict[str, Any]:
    name, description = EXTENSIONS[alias]
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": UPDATED,
        "links": [],
    }


def list_extensions(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return {"extensions": [_body(alias) for alias in sorted(EXTENSIONS)]}


def show(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    alias = request.path_params["alias"]
    if alias not in EXTENSIONS:
        raise errors.not_found("ExtensionNotFound", f"Extension with alias {alias} does not exist")
    return {"extension": _body(alias)}


ROUTES = [
    rest.Route("GET", "/v2.0/extensions", list_extensions, no_db=True),
    rest.Route("GET", "/v2.0/extensions/{alias}", show, no_db=True),
]
