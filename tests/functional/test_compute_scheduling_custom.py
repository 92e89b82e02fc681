"""Custom scheduler filters loaded by dotted path change where servers land.

The cloud's ``enabled_filters`` are the defaults plus two of the example filters in
``tests/unit/scheduler_example_filter.py``: ``EvenHostsFilter`` (a plain class: only
hosts whose name ends in an even digit) and ``HostPrefixFilter`` (a
``BaseHostFilter``: only hosts named with the ``host_prefix`` scheduler hint). The
all-in-one runs no compute agent here (driver ``none``), so every host is one this
module starts, with a name the filters can judge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackbox.compute.scheduler import filters
from tests import cloudfixture
from tests.functional import computeservers as cs

EXAMPLES = "tests.unit.scheduler_example_filter"
# Free RAM orders them for the RAM weigher: odd-1 first, then even-2, then even-4.
HOSTS = {
    "cf-odd-1": {"vcpus": 16, "memory_mb": 16384},
    "cf-even-2": {"vcpus": 16, "memory_mb": 8192},
    "cf-even-4": {"vcpus": 16, "memory_mb": 4096},
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    enabled = [*filters.DEFAULT_FILTERS, f"{EXAMPLES}.EvenHostsFilter"]
    enabled.append(f"{EXAMPLES}.HostPrefixFilter")
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("custom-filters")),
        compute={"create_defaults": True, "driver": "none", "enabled_filters": ",".join(enabled)},
        network={"create_defaults": True},
    ) as running:
        for host, size in HOSTS.items():
            running.start_host(host, **size)
        yield running


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with cs.compute(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def boot(cloud: cloudfixture.Cloud, admin: httpx.Client) -> Iterator[Any]:
    image = cs.image_id(cloud)
    network = cs.network_id(cloud)
    made: list[str] = []

    def boot(**extra: Any) -> dict[str, Any]:
        hints = extra.pop("hints", None)
        body = cs.boot(admin, image, networks=[{"uuid": network}], hints=hints, **extra)
        made.append(body["server"]["id"])
        return cs.show(admin, body["server"]["id"])

    yield boot
    for server_id in made:
        admin.delete(f"/servers/{server_id}")
    for server_id in made:
        cs.wait_gone(admin, server_id)


def host_of(admin: httpx.Client, server: dict[str, Any]) -> str:
    return str(cs.wait_status(admin, server["id"])["OS-EXT-SRV-ATTR:host"])


def test_plain_class_filter_keeps_servers_off_odd_hosts(admin: httpx.Client, boot: Any) -> None:
    # cf-odd-1 has the most free RAM, so the weighers alone would pick it every time.
    landed = [host_of(admin, boot(name=f"even-{i}")) for i in range(4)]
    assert set(landed) <= {"cf-even-2", "cf-even-4"}
    assert landed[0] == "cf-even-2"
    # The host itself is fine: an admin forcing it (filters skipped) gets it.
    forced = boot(name="forced", availability_zone="nova:cf-odd-1")
    assert host_of(admin, forced) == "cf-odd-1"


def test_hint_driven_filter_sends_servers_where_the_hint_says(
    admin: httpx.Client, boot: Any
) -> None:
    # Without the hint the RAM weigher prefers cf-even-2; the hint narrows to cf-even-4.
    assert host_of(admin, boot(name="no-hint")) == "cf-even-2"
    for index in range(2):
        hinted = boot(name=f"hinted-{index}", hints={"host_prefix": "cf-even-4"})
        assert host_of(admin, hinted) == "cf-even-4"


def test_filter_that_passes_no_host_is_named_in_the_fault(admin: httpx.Client, boot: Any) -> None:
    refused = boot(name="nowhere", hints={"host_prefix": "cf-odd"})
    assert refused["status"] == "ERROR"
    message = refused["fault"]["message"]
    assert message.startswith("No valid host was found."), message
    # EvenHostsFilter left only the even hosts; HostPrefixFilter refused both of those.
    assert "EvenHostsFilter eliminated 1 of 3 hosts" in message, message
    assert "HostPrefixFilter eliminated 2 of 2 hosts" in message, message
