"""tempest.conf's compute facts, read from the running cloud (images and flavors ensured).

Tempest boots its servers from ``[compute] image_ref`` with ``flavor_ref`` and rebuilds
and resizes them to ``image_ref_alt`` and ``flavor_ref_alt``. A fresh stackbox makes
DevStack's flavors (m1.nano id 42, m1.micro id 84, ...) and a small default image
``stackbox-tiny`` on first start; the runner finds them by name through the APIs, as
network.py finds the public network. Two tests of interop-target.txt (server list
filtered by image) are skipped unless the two images differ, so when the cloud has only
its default image the runner adds ``stackbox-tiny-alt``, a copy of its bytes. Anything
missing is created as admin and said so. ``max_microversion`` is the ``version`` of the
cloud's own ``/compute/v2.1`` document, and the scheduler filters Tempest may rely on
are cloud.toml's ``[compute] enabled_filters``, so the two always agree.
"""

from __future__ import annotations

import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from tempestgate import paths
from tempestgate.adminapi import AdminApi
from tempestgate.cloud import Cloud, CloudError
from tempestgate.fileserver import Files

IMAGE_NAME = "stackbox-tiny"
ALT_IMAGE_NAME = "stackbox-tiny-alt"


@dataclass(frozen=True)
class Flavor:
    """One of DevStack's flavors Tempest uses, as the runner creates it when it is missing."""

    name: str
    id: str
    ram: int
    vcpus: int
    disk: int


# m1.micro must be the larger of the two: Tempest resizes flavor_ref -> flavor_ref_alt.
FLAVOR = Flavor("m1.nano", "42", 64, 1, 1)
ALT_FLAVOR = Flavor("m1.micro", "84", 128, 1, 1)


def _compute_api(cloud: Cloud) -> AdminApi:
    return AdminApi(cloud, cloud.endpoint("compute"))


def _image_api(cloud: Cloud) -> AdminApi:
    return AdminApi(cloud, cloud.endpoint("image").removesuffix("/v2") + "/v2")


def microversions(api: AdminApi) -> tuple[str, str]:
    """(min_version, version) of the cloud's v2.1 version document."""
    document = api.call("GET", "")
    version = document.get("version", {}) if isinstance(document, dict) else {}
    low, high = version.get("min_version"), version.get("version")
    if not low or not high:
        raise CloudError(f"{api.base} has no microversion range: {document}")
    return str(low), str(high)


def _active_image(api: AdminApi, name: str) -> dict[str, Any] | None:
    found = api.call("GET", f"/images?name={name}&status=active")["images"]
    return found[0] if found else None


def _upload(
    api: AdminApi, name: str, data: bytes, disk_format: str, **attributes: str
) -> dict[str, Any]:
    body = {
        "name": name,
        "disk_format": disk_format,
        "container_format": "bare",
        "visibility": "public",
        **attributes,
    }
    image = api.call("POST", "/images", body)
    api.put_bytes(f"/images/{image['id']}/file", data)
    done = api.call("GET", f"/images/{image['id']}")
    if done.get("status") != "active":
        raise CloudError(f"image {name} ({image['id']}) is {done.get('status')} after upload")
    return dict(done)


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return bytes(response.read())
    except (urllib.error.URLError, OSError) as exc:
        raise CloudError(f"cannot read the runner's own test image {url}: {exc}") from None


def images(api: AdminApi, files: Files) -> tuple[str, str, list[str]]:
    """Ids of the primary and alternate images, and what the runner had to create."""
    created: list[str] = []
    image = _active_image(api, IMAGE_NAME)
    if image is None:
        # The cloud's first start should have made it: say so, then stand in for it with
        # the qcow2 (or the raw bytes) the runner serves anyway.
        url, disk_format = files.http_qcow2_image, "qcow2"
        if not url:
            url, disk_format = files.http_image, "raw"
        image = _upload(api, IMAGE_NAME, _fetch(url), disk_format)
        created.append(f"the image {IMAGE_NAME} ({image['id']}, {disk_format})")
    if image.get("visibility") not in ("public", "community"):
        # Tempest's test projects boot from it: a private default makes every boot a 400.
        raise CloudError(f"the image {IMAGE_NAME} is {image.get('visibility')}, not public")
    alt = _active_image(api, ALT_IMAGE_NAME)
    if alt is None:
        data = api.get_bytes(f"/images/{image['id']}/file")
        # Same formats, and the same kernel and ramdisk where the image boots from them.
        same = {
            key: str(image[key])
            for key in ("container_format", "kernel_id", "ramdisk_id")
            if image.get(key)
        }
        alt = _upload(api, ALT_IMAGE_NAME, data, str(image.get("disk_format") or "raw"), **same)
        created.append(f"the image {ALT_IMAGE_NAME} ({alt['id']}), a copy of {IMAGE_NAME}")
    return str(image["id"]), str(alt["id"]), created


def flavor(api: AdminApi, wanted: Flavor) -> tuple[str, bool]:
    """The id of the flavor named ``wanted.name``, creating it if missing; and whether it was."""
    listed = api.call("GET", "/flavors/detail?is_public=None")["flavors"]
    for found in listed:
        if found.get("name") == wanted.name:
            return str(found["id"]), False
    body = {
        "flavor": {
            "name": wanted.name,
            "id": wanted.id,
            "ram": wanted.ram,
            "vcpus": wanted.vcpus,
            "disk": wanted.disk,
        }
    }
    return str(api.call("POST", "/flavors", body)["flavor"]["id"]), True


def scheduler_filters() -> str:
    """cloud.toml's [compute] enabled_filters, the list the gate cloud schedules with."""
    settings = tomllib.loads(paths.CLOUD_CONFIG.read_text()).get("compute", {})
    value = settings.get("enabled_filters")
    if not value:
        raise ValueError(f"{paths.CLOUD_CONFIG}: [compute] enabled_filters must be set")
    names = value.split(",") if isinstance(value, str) else value
    return ",".join(name.strip() for name in names if name.strip())


def options(cloud: Cloud, files: Files) -> dict[tuple[str, str], str]:
    """``[compute]`` and ``[compute-feature-enabled]`` values that come from the cloud."""
    compute = _compute_api(cloud)
    low, high = microversions(compute)
    image_id, alt_id, created = images(_image_api(cloud), files)
    flavor_id, made = flavor(compute, FLAVOR)
    if made:
        created.append(f"the flavor {FLAVOR.name} ({flavor_id})")
    alt_flavor_id, made = flavor(compute, ALT_FLAVOR)
    if made:
        created.append(f"the flavor {ALT_FLAVOR.name} ({alt_flavor_id})")
    for what in created:
        print(f"tempest: set up {what}", flush=True)
    print(
        f"tempest: compute microversions {low}..{high}; images {image_id}, {alt_id}; "
        f"flavors {flavor_id}, {alt_flavor_id}",
        flush=True,
    )
    return {
        ("compute", "region"): cloud.region(),
        ("compute", "min_microversion"): low,
        ("compute", "max_microversion"): high,
        ("compute", "image_ref"): image_id,
        ("compute", "image_ref_alt"): alt_id,
        ("compute", "flavor_ref"): flavor_id,
        ("compute", "flavor_ref_alt"): alt_flavor_id,
        ("compute-feature-enabled", "scheduler_enabled_filters"): scheduler_filters(),
    }
