"""Rescue, shelve / offload / unshelve, changePassword, trigger_crash_dump and
forceDelete."""

from __future__ import annotations

import httpx
import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, cloud, error

__all__ = ["cloud"]


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("demo", project="demo"))


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token())


def test_rescue_and_unrescue(demo: Compute) -> None:
    sid = demo.boot("rescue-me")["id"]
    response = demo.action(sid, {"rescue": {"adminPass": "rescue-pw"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"adminPass": "rescue-pw"}
    demo.wait(sid, "RESCUE")
    message = error(demo.action(sid, {"reboot": {"type": "HARD"}}), 409)
    assert message == f"Cannot 'reboot' instance {sid} while it is in vm_state rescued"
    error(demo.action(sid, {"pause": None}), 409)
    assert demo.action(sid, {"unrescue": None}).status_code == 202
    demo.wait(sid, "ACTIVE")
    error(demo.action(sid, {"unrescue": None}), 409)
    generated = demo.action(sid, {"rescue": None})
    assert generated.status_code == 200 and len(generated.json()["adminPass"]) >= 8
    demo.wait(sid, "RESCUE")
    assert demo.action(sid, {"unrescue": None}).status_code == 202
    demo.wait(sid, "ACTIVE")
    missing = {"rescue": {"rescue_image_ref": "6b2bd5d6-2b5b-4a4c-8f0c-000000000000"}}
    error(demo.action(sid, missing), 400)


def test_shelve_offload_unshelve(demo: Compute, admin: Compute) -> None:
    server = demo.boot("shelve-me")
    sid = server["id"]
    assert demo.action(sid, {"shelve": None}).status_code == 202
    # shelved_offload_time is 0 (Nova's default): the host is freed at once.
    offloaded = admin.wait(sid, "SHELVED_OFFLOADED")
    assert offloaded["OS-EXT-SRV-ATTR:host"] is None
    images = httpx.get(
        f"{demo.cloud.base_url}/image/v2/images",
        headers={"X-Auth-Token": demo.token},
        params={"name": "shelve-me-shelved"},
    ).json()["images"]
    assert len(images) == 1 and images[0]["status"] == "active"
    error(demo.action(sid, {"shelve": None}), 409)
    error(demo.action(sid, {"shelveOffload": None}), 403)
    # Offloading what is offloaded already is a wrong state.
    error(admin.action(sid, {"shelveOffload": None}), 409)
    assert demo.action(sid, {"unshelve": None}).status_code == 202
    back = admin.wait(sid, "ACTIVE")
    assert back["OS-EXT-SRV-ATTR:host"]
    assert back["addresses"] == server["addresses"]
    gone = httpx.get(
        f"{demo.cloud.base_url}/image/v2/images/{images[0]['id']}",
        headers={"X-Auth-Token": demo.token},
    )
    assert gone.status_code == 404
    message = error(demo.action(sid, {"unshelve": None}), 409)
    assert message == f"Cannot 'unshelve' instance {sid} while it is in vm_state active"


def test_change_password_and_crash_dump(demo: Compute) -> None:
    sid = demo.boot("guest-bits")["id"]
    assert demo.action(sid, {"changePassword": {"adminPass": "n3w"}}).status_code == 202
    error(demo.action(sid, {"changePassword": {}}), 400)
    assert demo.action(sid, {"trigger_crash_dump": None}).status_code == 202
    error(demo.action(sid, {"trigger_crash_dump": {}}), 400)
    listed = demo.http.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    assert {"changePassword", "trigger_crash_dump"} <= {a["action"] for a in listed}
    assert demo.action(sid, {"os-stop": None}).status_code == 202
    demo.wait(sid, "SHUTOFF")
    error(demo.action(sid, {"changePassword": {"adminPass": "x"}}), 409)
    error(demo.action(sid, {"trigger_crash_dump": None}), 409)


def test_force_delete(demo: Compute) -> None:
    sid = demo.boot("force-delete")["id"]
    assert demo.action(sid, {"lock": None}).status_code == 202
    assert error(demo.action(sid, {"forceDelete": None}), 409) == f"Instance {sid} is locked"
    assert demo.action(sid, {"unlock": None}).status_code == 202
    assert demo.action(sid, {"forceDelete": None}).status_code == 202
    demo.wait_gone(sid)
