"""The metadata definitions catalog (metadefs): namespaces and the objects,
properties, tags and resource-type associations inside them, plus their schemas.

Each concept lives in its own ``metadefs_*`` module; this one gathers their routes
(the image API registers this module only).
"""

from __future__ import annotations

from stackbox import rest
from stackbox.image import (
    metadefs_namespaces,
    metadefs_objects,
    metadefs_properties,
    metadefs_resource_types,
    metadefs_schemas,
    metadefs_tags,
)

ROUTES: list[rest.Route] = [
    *metadefs_schemas.ROUTES,
    *metadefs_resource_types.ROUTES,
    *metadefs_namespaces.ROUTES,
    *metadefs_objects.ROUTES,
    *metadefs_properties.ROUTES,
    *metadefs_tags.ROUTES,
]
