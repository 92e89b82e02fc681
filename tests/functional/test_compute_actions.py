"""Server actions: power and guest state through openstacksdk and HTTP, Nova's 409s for
wrong states and locks, other projects' servers, and the instance-action log."""

from __future__ import annotations

from typing import Any

import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, cloud, error

__all__ = ["cloud"]


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("demo", project="demo"))


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("alt_demo", project="alt_demo"))


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token())


@pytest.fixture(scope="module")
def server(demo: Compute) -> dict[str, Any]:
    return demo.boot("actions-main")


def test_power_cycle_through_the_sdk(cloud: cloudfixture.Cloud, server: dict[str, Any]) -> None:
    conn = cloud.sdk("stackbox")
    sid = server["id"]
    conn.compute.stop_server(sid)
    conn.compute.wait_for_server(conn.compute.get_server(sid), status="SHUTOFF", wait=30)
    assert conn.compute.get_server(sid).power_state == 4
    conn.compute.start_server(sid)
    conn.compute.wait_for_server(conn.compute.get_server(sid), status="ACTIVE", wait=30)
    conn.compute.reboot_server(sid, "SOFT")
    conn.compute.wait_for_server(conn.compute.get_server(sid), status="ACTIVE", wait=30)
    conn.compute.reboot_server(sid, "HARD")
    conn.compute.wait_for_server(conn.compute.get_server(sid), status="ACTIVE", wait=30)
    conn.compute.pause_server(sid)
    conn.compute.wait_for_server(conn.compute.get_server(sid), status="PAUSED", wait=30)
    conn.compute.unpause_server(sid)
    conn.compute.wait_for_server(conn.compute.get_server(sid), status="ACTIVE", wait=30)
    conn.compute.suspend_server(sid)
    conn.compute.wait_for_server(conn.compute.get_server(sid), status="SUSPENDED", wait=30)
    conn.compute.resume_server(sid)
    conn.compute.wait_for_server(conn.compute.get_server(sid), status="ACTIVE", wait=30)


def test_wrong_states_answer_novas_409(demo: Compute, server: dict[str, Any]) -> None:
    sid = server["id"]
    demo.wait(sid, "ACTIVE")
    message = error(demo.action(sid, {"os-start": None}), 409)
    assert message == f"Cannot 'start' instance {sid} while it is in vm_state active"
    message = error(demo.action(sid, {"unpause": None}), 409)
    assert message == f"Cannot 'unpause' instance {sid} while it is in vm_state active"
    message = error(demo.action(sid, {"resume": None}), 409)
    assert message == f"Cannot 'resume' instance {sid} while it is in vm_state active"
    assert error(demo.action(sid, {"confirmResize": None}), 409).startswith(
        "Cannot 'confirmResize'"
    )
    assert demo.action(sid, {"os-stop": None}).status_code == 202
    demo.wait(sid, "SHUTOFF")
    # A soft reboot needs a running server; a hard one does not (Nova's rules).
    message = error(demo.action(sid, {"reboot": {"type": "SOFT"}}), 409)
    assert message == f"Cannot 'reboot' instance {sid} while it is in vm_state stopped"
    assert error(demo.action(sid, {"pause": None}), 409).endswith("vm_state stopped")
    assert demo.action(sid, {"os-start": None}).status_code == 202
    # A second action while the first runs: the task is in the way.
    message = error(demo.action(sid, {"os-start": None}), 409)
    assert message.startswith(f"Cannot 'start' instance {sid} while it is in")
    demo.wait(sid, "ACTIVE")


def test_bad_bodies_change_nothing(demo: Compute, server: dict[str, Any]) -> None:
    sid = server["id"]
    assert "Malformed request body" in error(demo.action(sid, {}), 400)
    assert "Malformed" in error(demo.action(sid, {"os-stop": None, "os-start": None}), 400)
    assert error(demo.action(sid, {"fly": None}), 400) == "There is no such action: fly"
    error(demo.action(sid, {"reboot": {"type": "GENTLE"}}), 400)
    error(demo.action(sid, {"reboot": {}}), 400)
    # trigger_crash_dump exists from 2.17 only.
    error(demo.at("2.16").action(sid, {"trigger_crash_dump": None}), 404)
    assert demo.server(sid)["status"] == "ACTIVE"
    assert demo.server(sid)["OS-EXT-STS:task_state"] is None


def test_lock_with_reason_blocks_others(
    demo: Compute, admin: Compute, server: dict[str, Any]
) -> None:
    sid = server["id"]
    response = demo.action(sid, {"lock": {"locked_reason": "maintenance"}})
    assert response.status_code == 202, response.text
    body = demo.server(sid)
    assert body["locked"] is True
    assert body["locked_reason"] == "maintenance"
    assert error(demo.action(sid, {"os-stop": None}), 409) == f"Instance {sid} is locked"
    assert error(demo.action(sid, {"reboot": {"type": "HARD"}}), 409).endswith("is locked")
    assert demo.action(sid, {"unlock": None}).status_code == 202
    assert demo.server(sid)["locked"] is False
    # Before 2.73 a reason is not read (Nova's schema there accepts anything).
    assert demo.at("2.72").action(sid, {"lock": {"locked_reason": "x"}}).status_code == 202
    assert demo.server(sid)["locked_reason"] is None
    error(demo.action(sid, {"lock": {"locked_reason": ""}}), 400)
    assert demo.action(sid, {"unlock": None}).status_code == 202
    # An admin's lock can be lifted only by an admin (unlock_override).
    assert admin.action(sid, {"lock": None}).status_code == 202
    error(demo.action(sid, {"unlock": None}), 403)
    assert admin.action(sid, {"unlock": None}).status_code == 202
    assert demo.server(sid)["locked_reason"] is None


def test_other_projects_servers_are_404(alt: Compute, server: dict[str, Any]) -> None:
    sid = server["id"]
    for body in ({"os-stop": None}, {"reboot": {"type": "HARD"}}, {"lock": None}):
        message = error(alt.action(sid, body), 404)
        assert message == f"Instance {sid} could not be found."
    error(alt.http.get(f"/servers/{sid}/os-instance-actions"), 404)
    error(alt.http.get(f"/servers/{sid}/os-interface"), 404)


def test_admin_reset_state(demo: Compute, admin: Compute, server: dict[str, Any]) -> None:
    sid = server["id"]
    error(demo.action(sid, {"os-resetState": {"state": "error"}}), 403)
    error(admin.action(sid, {"os-resetState": {"state": "paused"}}), 400)
    assert admin.action(sid, {"os-resetState": {"state": "error"}}).status_code == 202
    assert demo.server(sid)["status"] == "ERROR"
    assert admin.action(sid, {"os-resetState": {"state": "active"}}).status_code == 202
    assert demo.server(sid)["status"] == "ACTIVE"


def test_deferred_delete_is_off(demo: Compute, server: dict[str, Any]) -> None:
    sid = server["id"]
    message = error(demo.action(sid, {"restore": None}), 409)
    assert message == f"Cannot 'restore' instance {sid} while it is in vm_state active"


def test_moves_need_another_host(admin: Compute, server: dict[str, Any]) -> None:
    sid = server["id"]
    assert "No valid host was found" in error(admin.action(sid, {"migrate": None}), 400)
    live = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
    assert "No valid host was found" in error(admin.action(sid, live), 400)
    message = error(admin.action(sid, {"evacuate": {}}), 400)
    assert message.startswith("Compute service of ") and message.endswith("is still in use.")
    assert admin.server(sid)["status"] == "ACTIVE"


def test_instance_actions_record_what_was_done(
    demo: Compute, admin: Compute, server: dict[str, Any]
) -> None:
    sid = server["id"]
    demo.wait(sid, "ACTIVE")
    listed = demo.http.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    names = [a["action"] for a in listed]
    assert names[-1] == "create"
    for name in ("stop", "start", "reboot", "pause", "unpause", "lock", "unlock", "resetState"):
        assert name in names
    assert listed == sorted(listed, key=lambda a: a["start_time"], reverse=True)
    stop = next(a for a in listed if a["action"] == "stop")
    assert stop["instance_uuid"] == sid and stop["message"] is None
    # Members see events from 2.51, without tracebacks or hosts; admins see all.
    shown = demo.http.get(f"/servers/{sid}/os-instance-actions/{stop['request_id']}").json()
    events = shown["instanceAction"]["events"]
    assert [e["event"] for e in events] == ["compute_stop_instance"]
    assert events[0]["result"] == "Success" and events[0]["finish_time"]
    assert "traceback" not in events[0] and "host" not in events[0] and events[0]["hostId"]
    full = admin.http.get(f"/servers/{sid}/os-instance-actions/{stop['request_id']}").json()
    event = full["instanceAction"]["events"][0]
    assert event["host"] and "traceback" in event and "details" in event
    old = demo.at("2.50").http.get(f"/servers/{sid}/os-instance-actions/{stop['request_id']}")
    assert "events" not in old.json()["instanceAction"]
    error(demo.http.get(f"/servers/{sid}/os-instance-actions/req-none"), 404)


def test_instance_actions_paging(demo: Compute, server: dict[str, Any]) -> None:
    sid = server["id"]
    everything = demo.http.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    first = demo.http.get(f"/servers/{sid}/os-instance-actions", params={"limit": 2}).json()
    assert first["instanceActions"] == everything[:2]
    marker = first["instanceActions"][-1]["request_id"]
    assert "marker=" + marker in first["links"][0]["href"]
    rest = demo.http.get(
        f"/servers/{sid}/os-instance-actions", params={"marker": marker, "limit": 100}
    ).json()
    assert rest["instanceActions"] == everything[2:]
    error(demo.http.get(f"/servers/{sid}/os-instance-actions", params={"marker": "x"}), 400)
    error(demo.http.get(f"/servers/{sid}/os-instance-actions", params={"bogus": "1"}), 400)
    since = everything[0]["updated_at"]
    recent = demo.http.get(f"/servers/{sid}/os-instance-actions", params={"changes-since": since})
    assert everything[0] in recent.json()["instanceActions"]
    assert (
        "updated_at"
        not in demo.at("2.57")
        .http.get(f"/servers/{sid}/os-instance-actions")
        .json()["instanceActions"][0]
    )


def test_deleted_servers_keep_their_actions(demo: Compute) -> None:
    sid = demo.boot("actions-deleted")["id"]
    assert demo.http.delete(f"/servers/{sid}").status_code == 204
    demo.wait_gone(sid)
    listed = demo.http.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    assert sorted(a["action"] for a in listed) == ["create", "delete"]
    error(demo.at("2.20").http.get(f"/servers/{sid}/os-instance-actions"), 404)


def test_a_server_without_host_is_not_ready(demo: Compute, admin: Compute) -> None:
    flavor = {
        "flavor": {"name": "huge-disk", "id": "huge-disk", "ram": 64, "vcpus": 1, "disk": 100000}
    }
    assert admin.http.post("/flavors", json=flavor).status_code == 200
    body = {
        "server": {
            "name": "nowhere",
            "imageRef": demo.server(demo.boot("ref")["id"])["image"]["id"],
            "flavorRef": "huge-disk",
            "networks": "none",
        }
    }
    response = demo.http.post("/servers", json=body)
    assert response.status_code == 202, response.text
    sid = response.json()["server"]["id"]
    failed = demo.wait(sid, "ERROR")
    assert "No valid host" in failed["fault"]["message"]
    assert error(demo.action(sid, {"os-stop": None}), 409).endswith("is not ready")
    # Nova checks a reboot's state only: a server never launched cannot reboot.
    message = error(demo.action(sid, {"reboot": {"type": "HARD"}}), 409)
    assert message.endswith("while it is in launched_at None")
    assert demo.server(sid)["OS-EXT-STS:task_state"] is None
