"""A server's ports (os-interface attach / detach), its security groups
(addSecurityGroup / removeSecurityGroup) and os-volume_attachments without Block Storage."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, cloud, error

__all__ = ["cloud"]


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("demo", project="demo"))


@pytest.fixture(scope="module")
def server(demo: Compute) -> dict[str, Any]:
    return demo.boot("ifaces")


@pytest.fixture(scope="module")
def network(cloud: cloudfixture.Cloud, demo: Compute) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/networking/v2.0",
        headers={"X-Auth-Token": demo.token},
        timeout=30,
    )


def test_list_attach_show_detach(
    cloud: cloudfixture.Cloud, demo: Compute, server: dict[str, Any], network: httpx.Client
) -> None:
    # Bindings are for admins' eyes.
    admin_network = httpx.Client(
        base_url=cloud.base_url + "/networking/v2.0", headers={"X-Auth-Token": cloud.token()}
    )
    sid = server["id"]
    listed = demo.http.get(f"/servers/{sid}/os-interface").json()["interfaceAttachments"]
    assert len(listed) == 1
    first = listed[0]
    assert first["fixed_ips"][0]["subnet_id"] and first["mac_addr"] and first["tag"] is None
    net_id = first["net_id"]
    # Attach by network, with a tag (2.49+).
    body = {"interfaceAttachment": {"net_id": net_id, "tag": "second"}}
    response = demo.http.post(f"/servers/{sid}/os-interface", json=body)
    assert response.status_code == 200, response.text
    added = response.json()["interfaceAttachment"]
    assert added["net_id"] == net_id and added["tag"] == "second"
    port = admin_network.get(f"/ports/{added['port_id']}").json()["port"]
    assert port["device_id"] == sid and port["binding:host_id"]
    shown = demo.http.get(f"/servers/{sid}/os-interface/{added['port_id']}").json()
    # The port goes ACTIVE once the host's agents have plugged it.
    assert shown["interfaceAttachment"] | {"port_state": ""} == added | {"port_state": ""}
    # Attach the user's own port; detaching gives it back unbound.
    own = network.post("/ports", json={"port": {"network_id": net_id}}).json()["port"]
    response = demo.http.post(
        f"/servers/{sid}/os-interface", json={"interfaceAttachment": {"port_id": own["id"]}}
    )
    assert response.status_code == 200, response.text
    assert len(demo.http.get(f"/servers/{sid}/os-interface").json()["interfaceAttachments"]) == 3
    assert demo.http.delete(f"/servers/{sid}/os-interface/{own['id']}").status_code == 202
    kept = admin_network.get(f"/ports/{own['id']}").json()["port"]
    assert kept["device_id"] == "" and kept["binding:host_id"] == ""
    # The port the attach made is deleted with the detach.
    assert demo.http.delete(f"/servers/{sid}/os-interface/{added['port_id']}").status_code == 202
    assert network.get(f"/ports/{added['port_id']}").status_code == 404
    listed = demo.http.get(f"/servers/{sid}/os-interface").json()["interfaceAttachments"]
    assert [i["port_id"] for i in listed] == [first["port_id"]]
    names = [
        a["action"]
        for a in demo.http.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    ]
    assert names.count("attach_interface") == 2 and names.count("detach_interface") == 2


def test_interface_errors(demo: Compute, server: dict[str, Any], network: httpx.Client) -> None:
    sid = server["id"]
    missing = "6b2bd5d6-2b5b-4a4c-8f0c-000000000000"
    path = f"/servers/{sid}/os-interface"
    error(demo.http.get(f"{path}/{missing}"), 404)
    error(demo.http.delete(f"{path}/{missing}"), 404)
    error(demo.http.post(path, json={"interfaceAttachment": {"net_id": missing}}), 404)
    error(demo.http.post(path, json={"interfaceAttachment": {"port_id": missing}}), 404)
    both = {"interfaceAttachment": {"net_id": missing, "port_id": missing}}
    assert (
        error(demo.http.post(path, json=both), 400) == "Must not input both network_id and port_id"
    )
    ip_only = {"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.0.0.9"}]}}
    error(demo.http.post(path, json=ip_only), 400)
    used = demo.http.get(path).json()["interfaceAttachments"][0]
    taken = {"interfaceAttachment": {"port_id": used["port_id"]}}
    assert error(demo.http.post(path, json=taken), 409).endswith("is still in use.")
    assert demo.action(sid, {"os-stop": None}).status_code == 202
    demo.wait(sid, "SHUTOFF")
    assert demo.action(sid, {"lock": None}).status_code == 202
    assert error(demo.http.post(path, json={}), 409) == f"Instance {sid} is locked"
    assert demo.action(sid, {"unlock": None}).status_code == 202
    assert demo.action(sid, {"os-start": None}).status_code == 202
    demo.wait(sid, "ACTIVE")


def test_security_groups_follow_the_ports(
    demo: Compute, server: dict[str, Any], network: httpx.Client
) -> None:
    sid = server["id"]
    group = network.post("/security-groups", json={"security_group": {"name": "web"}}).json()
    group_id = group["security_group"]["id"]
    assert demo.action(sid, {"addSecurityGroup": {"name": "web"}}).status_code == 202
    names = {g["name"] for g in demo.server(sid)["security_groups"]}
    assert names == {"default", "web"}
    ports = network.get("/ports", params={"device_id": sid}).json()["ports"]
    assert all(group_id in p["security_groups"] for p in ports)
    assert demo.action(sid, {"removeSecurityGroup": {"name": "web"}}).status_code == 202
    assert {g["name"] for g in demo.server(sid)["security_groups"]} == {"default"}
    message = error(demo.action(sid, {"removeSecurityGroup": {"name": "web"}}), 404)
    assert message == f"Security group web not associated with the instance {sid}"
    error(demo.action(sid, {"addSecurityGroup": {"name": "nope"}}), 404)
    error(demo.action(sid, {"addSecurityGroup": {"name": " "}}), 400)
    assert demo.action(sid, {"removeSecurityGroup": {"name": "default"}}).status_code == 202
    assert "security_groups" not in demo.server(sid)


def test_volume_attachments_without_block_storage(demo: Compute, server: dict[str, Any]) -> None:
    sid = server["id"]
    volume = "6b2bd5d6-2b5b-4a4c-8f0c-000000000000"
    path = f"/servers/{sid}/os-volume_attachments"
    assert demo.http.get(path).json() == {"volumeAttachments": []}
    body = {"volumeAttachment": {"volumeId": volume}}
    assert "Block Storage is not available" in error(demo.http.post(path, json=body), 404)
    error(demo.http.post(path, json={"volumeAttachment": {}}), 400)
    error(demo.http.get(f"{path}/{volume}"), 404)
    error(demo.http.put(f"{path}/{volume}", json=body), 404)
    error(demo.http.delete(f"{path}/{volume}"), 404)
