"""Shelving with ``shelved_offload_time = -1``: the server stays SHELVED on its host
until an admin offloads it (Nova's setting; the default 0 offloads at once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, error


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("cloud")),
        compute={"create_defaults": True, "shelved_offload_time": -1},
        network={"create_defaults": True},
    ) as running:
        yield running


def test_shelved_server_waits_for_an_admin_offload(cloud: cloudfixture.Cloud) -> None:
    demo = Compute(cloud, cloud.token("demo", project="demo"))
    admin = Compute(cloud, cloud.token())
    sid = demo.boot("shelve-kept")["id"]
    assert demo.action(sid, {"shelve": None}).status_code == 202
    shelved = admin.wait(sid, "SHELVED")
    assert shelved["OS-EXT-SRV-ATTR:host"]
    error(demo.action(sid, {"shelveOffload": None}), 403)
    assert admin.action(sid, {"shelveOffload": None}).status_code == 202
    offloaded = admin.wait(sid, "SHELVED_OFFLOADED")
    assert offloaded["OS-EXT-SRV-ATTR:host"] is None
    assert demo.action(sid, {"unshelve": None}).status_code == 202
    assert admin.wait(sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
