"""Agents, the agent schedulers and availability zones, and the path a port takes to
ACTIVE: outbox -> relay -> bus -> fake agent -> RPC -> status report -> database.

The cloud here runs with short agent timers (heartbeat 0.3 s, dead after 2 s) and
a known host name, and keeps a handle on its network plane, so a test can start
a second node's agent on the same bus and stop it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from stackbox import config
from stackbox.agent.network import fake
from stackbox.bus import codec, interface, memory, messages
from stackbox.db import session as db_session
from stackbox.network import agent_scheduling
from stackbox.web import assembly
from tests import cloudfixture, postgres

HOST = "node-a"
DOWN_TIME = 2
T = TypeVar("T")


class Running:
    def __init__(
        self, cloud: cloudfixture.Cloud, plane: assembly.NetworkPlane, database: db_session.Database
    ) -> None:
        self.cloud = cloud
        self.plane = plane
        self.database = database

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the cloud's event loop (where the bus lives)."""
        assert self.plane.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.plane.loop).result(timeout=20)

    def call(self, request: codec.Record) -> Any:
        return self.run(self.plane.bus.call(messages.CONTROLLER_TOPIC, request, 10))

    def agent(
        self, host: str, bus: interface.Bus | None = None, **options: Any
    ) -> fake.FakeNetworkAgent:
        """Start the fake agents of another node on this cloud's bus."""
        options.setdefault("report_interval", 0.3)
        options.setdefault("resync_interval", 30.0)
        node = fake.FakeNetworkAgent(bus or self.plane.bus, host, **options)
        self.run(node.start())
        return node


@contextlib.contextmanager
def cloud_with_agents(tmp: Path, database_url: str = "") -> Iterator[Running]:
    settings = config.Settings(
        state_dir=tmp,
        database_url=database_url,
        port=cloudfixture.free_port(),
        admin_password=cloudfixture.ADMIN_PASSWORD,
        hostname=HOST,
        log_level="warning",
        identity=config.IdentitySettings(bcrypt_rounds=4),
        network=config.NetworkSettings(
            agent_down_time=DOWN_TIME,
            agent_report_interval=0.3,
            agent_resync_interval=1.0,
            create_defaults=False,
        ),
    )
    with cloudfixture.serve(settings) as (cloud, database):
        assert cloud.plane is not None
        yield Running(cloud, cloud.plane, database)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with cloud_with_agents(Path(tmp_path_factory.mktemp("agents"))) as running:
        yield running


def client(env: Running, user: str = "admin", project: str = "admin") -> httpx.Client:
    token = env.cloud.token(user, project=project)
    return httpx.Client(
        base_url=env.cloud.base_url + "/networking/v2.0",
        headers={"X-Auth-Token": token},
        timeout=30,
    )


@pytest.fixture(scope="module")
def api(env: Running) -> Iterator[httpx.Client]:
    with client(env) as http:
        yield http


@pytest.fixture(scope="module")
def demo(env: Running) -> Iterator[httpx.Client]:
    with client(env, "demo", "demo") as http:
        yield http


wait_for = cloudfixture.wait_for


def agents(api: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    response = api.get("/agents", params=filters)
    assert response.status_code == 200, response.text
    return list(response.json()["agents"])


def agent_of(api: httpx.Client, agent_type: str, host: str = HOST) -> dict[str, Any]:
    found = [a for a in agents(api, host=host) if a["agent_type"] == agent_type]
    assert len(found) == 1, found
    return found[0]


def is_alive(api: httpx.Client, agent_type: str, host: str) -> bool:
    """Whether that agent is registered and alive (False while it is not registered yet)."""
    return any(a["alive"] for a in agents(api, host=host) if a["agent_type"] == agent_type)


def network(api: httpx.Client, name: str, dhcp_subnet: str | None = None) -> str:
    response = api.post("/networks", json={"network": {"name": name}})
    assert response.status_code == 201, response.text
    network_id = str(response.json()["network"]["id"])
    if dhcp_subnet:
        response = api.post(
            "/subnets",
            json={"subnet": {"network_id": network_id, "cidr": dhcp_subnet, "ip_version": 4}},
        )
        assert response.status_code == 201, response.text
    return network_id


def port(api: httpx.Client, network_id: str, **attrs: Any) -> dict[str, Any]:
    response = api.post("/ports", json={"port": {"network_id": network_id, **attrs}})
    assert response.status_code == 201, response.text
    return dict(response.json()["port"])


def status_of(api: httpx.Client, port_id: str) -> str:
    return str(api.get(f"/ports/{port_id}").json()["port"]["status"])


def ids(items: Iterable[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


# --- the agents API -------------------------------------------------------------------------


def test_the_fake_agents_register_alive(api: httpx.Client) -> None:
    found = wait_for(lambda: len(agents(api, host=HOST)) == 4 and agents(api, host=HOST))
    by_type = {a["agent_type"]: a for a in found}
    assert set(by_type) == {"Linux bridge agent", "DHCP agent", "L3 agent", "Metadata agent"}
    assert all(a["alive"] and a["admin_state_up"] for a in found)
    dhcp = by_type["DHCP agent"]
    assert (dhcp["binary"], dhcp["topic"]) == ("neutron-dhcp-agent", "dhcp_agent")
    assert dhcp["availability_zone"] == "nova"
    assert by_type["Metadata agent"]["availability_zone"] is None
    assert by_type["L3 agent"]["configurations"]["agent_mode"] == "dvr_snat"
    assert by_type["Linux bridge agent"]["configurations"]["tunnel_types"] == ["vxlan"]
    # Neutron's time format for agents: "2026-11-22 03:30:00".
    assert len(dhcp["heartbeat_timestamp"]) == 19 and dhcp["heartbeat_timestamp"][10] == " "
    shown = api.get(f"/agents/{dhcp['id']}").json()["agent"]
    assert shown["id"] == dhcp["id"] and shown["description"] is None


def test_agent_filters_and_fields(api: httpx.Client) -> None:
    # Neutron's gate compares on MySQL, case-insensitively; Tempest relies on it.
    found = agents(api, agent_type="DHCP Agent", host=HOST)
    assert [a["agent_type"] for a in found] == ["DHCP agent"]
    assert all(a["alive"] for a in agents(api, alive="true"))
    assert not [a for a in agents(api, alive="false") if a["host"] == HOST]
    only = agents(api, host=HOST, fields="id,alive")
    assert only and all(set(a) == {"id", "alive"} for a in only)
    response = api.get("/agents", params={"no_such": "x"})
    assert response.status_code == 400


def test_only_admins_see_agents(api: httpx.Client, demo: httpx.Client) -> None:
    agent = agent_of(api, "L3 agent")
    listing = demo.get("/agents")
    assert listing.status_code == 200 and listing.json()["agents"] == []
    assert demo.get(f"/agents/{agent['id']}").status_code == 404
    assert (
        demo.put(f"/agents/{agent['id']}", json={"agent": {"description": "x"}}).status_code == 404
    )
    assert demo.delete(f"/agents/{agent['id']}").status_code == 404
    assert demo.get(f"/agents/{agent['id']}/l3-routers").status_code == 403
    assert agent_of(api, "L3 agent")["description"] is None


def test_update_agent(api: httpx.Client) -> None:
    agent = agent_of(api, "Metadata agent")
    response = api.put(f"/agents/{agent['id']}", json={"agent": {"description": "the proxy"}})
    assert response.status_code == 200, response.text
    assert response.json()["agent"]["description"] == "the proxy"
    bad = api.put(f"/agents/{agent['id']}", json={"agent": {"host": "elsewhere"}})
    assert bad.status_code == 400
    bad = api.put(f"/agents/{agent['id']}", json={"agent": {"admin_state_up": "maybe"}})
    assert bad.status_code == 400
    made = api.post("/agents", json={"agent": {}})
    assert made.status_code == 400 and "not supported" in made.json()["NeutronError"]["message"]
    assert api.post("/agents", json={"agent": {"host": "x"}}).status_code == 400
    missing = api.put("/agents/00000000-0000-0000-0000-000000000000", json={"agent": {}})
    assert missing.status_code == 404
    assert missing.json()["NeutronError"]["type"] == "AgentNotFound"
    assert agent_of(api, "Metadata agent")["description"] == "the proxy"


def test_extensions_are_listed(api: httpx.Client) -> None:
    aliases = {e["alias"] for e in api.get("/extensions").json()["extensions"]}
    assert {"agent", "dhcp_agent_scheduler", "l3_agent_scheduler", "availability_zone"} <= aliases


# --- ports: the whole path to ACTIVE --------------------------------------------------------


def test_a_port_bound_here_goes_active(api: httpx.Client) -> None:
    network_id = network(api, "ports-here")
    bound = port(api, network_id, **{"binding:host_id": HOST})
    assert bound["status"] == "DOWN"
    started = time.monotonic()
    wait_for(lambda: status_of(api, bound["id"]) == "ACTIVE", what="the port to go ACTIVE")
    elapsed = time.monotonic() - started
    print(f"port ACTIVE {elapsed:.3f}s after its creation returned")
    shown = api.get(f"/ports/{bound['id']}").json()["port"]
    assert shown["revision_number"] > bound["revision_number"]
    # Not bound, or bound to a host with no agent: nobody reports them.
    loose = port(api, network_id)
    elsewhere = port(api, network_id, **{"binding:host_id": "no-such-node"})
    time.sleep(0.5)
    assert status_of(api, loose["id"]) == "DOWN"
    assert status_of(api, elsewhere["id"]) == "DOWN"


def test_admin_state_decides_the_reported_status(env: Running, api: httpx.Client) -> None:
    network_id = network(api, "admin-state")
    disabled = port(api, network_id, admin_state_up=False, **{"binding:host_id": HOST})
    here = env.plane.agents[0]
    wait_for(lambda: disabled["id"] in here.ports, what="the agent to wire the port")
    assert here.ports[disabled["id"]] == (network_id, "DOWN")
    assert status_of(api, disabled["id"]) == "DOWN"
    api.put(f"/ports/{disabled['id']}", json={"port": {"admin_state_up": True}})
    wait_for(lambda: status_of(api, disabled["id"]) == "ACTIVE")
    # A disabled network takes its ports down too.
    api.put(f"/networks/{network_id}", json={"network": {"admin_state_up": False}})
    wait_for(lambda: status_of(api, disabled["id"]) == "DOWN")


def test_binding_to_another_node_moves_the_report(env: Running, api: httpx.Client) -> None:
    other = env.agent("node-move")
    try:
        network_id = network(api, "moving")
        moving = port(api, network_id, **{"binding:host_id": HOST})
        wait_for(lambda: status_of(api, moving["id"]) == "ACTIVE")
        api.put(f"/ports/{moving['id']}", json={"port": {"binding:host_id": "node-move"}})
        wait_for(lambda: moving["id"] in other.ports)
        wait_for(
            lambda: moving["id"] not in env.plane.agents[0].ports, what="the old host to let go"
        )
        assert status_of(api, moving["id"]) == "ACTIVE"
    finally:
        env.run(other.stop())


class DeafBus:
    """A bus on which every nudge to this subscriber is lost (calls still work)."""

    def __init__(self, real: memory.Bus) -> None:
        self.real = real

    async def publish(self, topic: str, record: codec.Record) -> None:
        await self.real.publish(topic, record)

    def subscribe(self, topics: Iterable[str]) -> interface.Subscription:
        return self.real.subscribe(["nobody-publishes-here"])

    def serve(self, topic: str, handler: interface.Handler) -> interface.Service:
        return self.real.serve(topic, handler)

    async def call(self, topic: str, request: codec.Record, timeout: float = 30.0) -> codec.Record:
        return await self.real.call(topic, request, timeout)

    async def close(self) -> None:
        return None


def test_a_lost_nudge_is_repaired_by_resync(env: Running, api: httpx.Client) -> None:
    deaf = env.agent("node-deaf", bus=DeafBus(env.plane.bus), resync_interval=0.5)
    try:
        wait_for(lambda: is_alive(api, "Linux bridge agent", "node-deaf"))
        network_id = network(api, "lost-nudges")
        lonely = port(api, network_id, **{"binding:host_id": "node-deaf"})
        wait_for(lambda: status_of(api, lonely["id"]) == "ACTIVE", what="resync to find the port")
        assert lonely["id"] in deaf.ports
    finally:
        env.run(deaf.stop())


def test_ports_bound_before_their_agent_came_up_are_bound_when_it_does(
    env: Running, api: httpx.Client
) -> None:
    network_id = network(api, "early-ports")
    early = port(api, network_id, **{"binding:host_id": "node-late"})
    assert early["binding:vif_type"] == "binding_failed"
    late = env.agent("node-late")
    try:
        wait_for(lambda: status_of(api, early["id"]) == "ACTIVE")
        assert api.get(f"/ports/{early['id']}").json()["port"]["binding:vif_type"] == "bridge"
    finally:
        env.run(late.stop())


# --- liveness -------------------------------------------------------------------------------


def test_a_stopped_agent_is_shown_dead_then_alive_again(env: Running, api: httpx.Client) -> None:
    node = env.agent("node-b")
    wait_for(lambda: len(agents(api, host="node-b")) == 4)
    assert all(a["alive"] for a in agents(api, host="node-b"))
    env.run(node.stop())
    wait_for(
        lambda: not any(a["alive"] for a in agents(api, host="node-b")),
        timeout=DOWN_TIME + 3,
        what="node-b's agents to be seen dead",
    )
    dead = {a["id"] for a in agents(api, alive="false")}
    assert {a["id"] for a in agents(api, host="node-b")} <= dead
    # Our own node kept heartbeating all along.
    assert all(a["alive"] for a in agents(api, host=HOST))
    again = env.agent("node-b")
    try:
        wait_for(lambda: all(a["alive"] for a in agents(api, host="node-b")))
        assert again.agent_ids["DHCP agent"] == agent_of(api, "DHCP agent", "node-b")["id"]
    finally:
        env.run(again.stop())


def test_deleting_an_agent(env: Running, api: httpx.Client) -> None:
    node = env.agent("node-gone")
    wait_for(lambda: len(agents(api, host="node-gone")) == 4)
    env.run(node.stop())
    victim = agent_of(api, "L3 agent", "node-gone")
    assert api.delete(f"/agents/{victim['id']}").status_code == 204
    assert api.get(f"/agents/{victim['id']}").status_code == 404
    assert api.delete(f"/agents/{victim['id']}").status_code == 404
    # A running agent that is deleted registers again under a new id.
    own = agent_of(api, "Metadata agent")
    assert api.delete(f"/agents/{own['id']}").status_code == 204
    back = wait_for(
        lambda: [a for a in agents(api, host=HOST) if a["agent_type"] == "Metadata agent"]
    )
    assert back[0]["id"] != own["id"]


# --- the RPC contract -----------------------------------------------------------------------


def test_rpc_answers_match_the_api(env: Running, api: httpx.Client) -> None:
    network_id = network(api, "rpc")
    bound = port(api, network_id, **{"binding:host_id": HOST})
    mine = env.call(messages.GetPortsForHost(HOST, (bound["id"],)))
    assert [p.id for p in mine.ports] == [bound["id"]]
    spec = mine.ports[0]
    assert (spec.network_id, spec.mac_address, spec.host) == (
        network_id,
        bound["mac_address"],
        HOST,
    )
    assert spec.segment is not None and spec.segment.network_type == "vxlan"
    assert spec.vif_type == "bridge"
    assert set(spec.security_group_ids) == set(bound["security_groups"])
    everything = env.call(messages.GetPortsForHost(HOST))
    assert bound["id"] in {p.id for p in everything.ports}
    info = env.call(messages.GetNetwork(network_id))
    assert info.network.id == network_id and bound["id"] in {p.id for p in info.network.ports}
    assert env.call(messages.GetNetwork("00000000-0000-0000-0000-000000000000")).network is None
    l2 = env.call(messages.GetL2Population(network_id))
    assert [(e.port_id, e.host, e.mac_address) for e in l2.entries] == [
        (bound["id"], HOST, bound["mac_address"])
    ]
    rules = env.call(messages.GetSecurityGroupRulesForPorts((bound["id"],)))
    assert [p.port_id for p in rules.ports] == [bound["id"]]
    assert set(bound["security_groups"]) <= {g.id for g in rules.groups}
    with pytest.raises(interface.RemoteError):
        env.call(messages.Nudge("port", "not a request"))


def test_status_reports_only_count_for_the_bound_host(env: Running, api: httpx.Client) -> None:
    network_id = network(api, "reports")
    elsewhere = port(api, network_id, **{"binding:host_id": "node-x"})
    from stackbox.bus import specs

    ack = env.call(messages.ReportPortStatus(HOST, (specs.PortStatus(elsewhere["id"], "ACTIVE"),)))
    assert ack.unknown == (elsewhere["id"],) and ack.updated == ()
    assert status_of(api, elsewhere["id"]) == "DOWN"


# --- L3 agent scheduling --------------------------------------------------------------------


def router(api: httpx.Client, name: str, **attrs: Any) -> str:
    response = api.post("/routers", json={"router": {"name": name, **attrs}})
    assert response.status_code == 201, response.text
    return str(response.json()["router"]["id"])


def l3_agents_of(api: httpx.Client, router_id: str) -> set[str]:
    response = api.get(f"/routers/{router_id}/l3-agents")
    assert response.status_code == 200, response.text
    return ids(response.json()["agents"])


def test_routers_are_scheduled_to_a_live_l3_agent(env: Running, api: httpx.Client) -> None:
    l3 = agent_of(api, "L3 agent")
    router_id = router(api, "scheduled")
    wait_for(lambda: l3_agents_of(api, router_id) == {l3["id"]}, what="the router's L3 agent")
    hosted = api.get(f"/agents/{l3['id']}/l3-routers").json()["routers"]
    assert router_id in ids(hosted)
    assert all("external_gateway_info" in r for r in hosted)
    # The agent was told and asked for it.
    wait_for(lambda: router_id in env.plane.agents[0].routers, what="the agent to take the router")
    answer = env.call(messages.GetRouters(HOST, (router_id,)))
    assert [r.id for r in answer.routers] == [router_id]
    zones = env.database.run(lambda s: agent_scheduling.router_zones(s, [router_id]), write=False)
    assert zones == {router_id: ["nova"]}


def test_moving_a_router_between_l3_agents(env: Running, api: httpx.Client) -> None:
    node = env.agent("node-l3")
    try:
        wait_for(lambda: len(agents(api, host="node-l3")) == 4)
        here, there = agent_of(api, "L3 agent"), agent_of(api, "L3 agent", "node-l3")
        router_id = router(api, "moving-router")
        first = wait_for(lambda: l3_agents_of(api, router_id))
        (current,) = first
        other = there["id"] if current == here["id"] else here["id"]
        taken = api.post(f"/agents/{other}/l3-routers", json={"router_id": router_id})
        assert taken.status_code == 409
        assert taken.json()["NeutronError"]["type"] == "RouterHostedByL3Agent"
        again = api.post(f"/agents/{current}/l3-routers", json={"router_id": router_id})
        assert again.status_code == 201  # already there: nothing to do
        assert api.delete(f"/agents/{current}/l3-routers/{router_id}").status_code == 204
        assert l3_agents_of(api, router_id) == set()
        assert (
            api.post(f"/agents/{other}/l3-routers", json={"router_id": router_id}).status_code
            == 201
        )
        assert l3_agents_of(api, router_id) == {other}
        mover = node if other == there["id"] else env.plane.agents[0]
        wait_for(lambda: router_id in mover.routers, what="the new host to take the router")
    finally:
        env.run(node.stop())


def test_l3_scheduler_errors(api: httpx.Client, demo: httpx.Client) -> None:
    dhcp = agent_of(api, "DHCP agent")
    l3 = agent_of(api, "L3 agent")
    router_id = router(api, "errors")
    wrong = api.post(f"/agents/{dhcp['id']}/l3-routers", json={"router_id": router_id})
    assert wrong.status_code == 404 and wrong.json()["NeutronError"]["type"] == "InvalidL3Agent"
    missing = api.post(
        f"/agents/{l3['id']}/l3-routers", json={"router_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert missing.status_code == 404
    assert missing.json()["NeutronError"]["type"] == "RouterNotFound"
    assert api.post(f"/agents/{l3['id']}/l3-routers", json={}).status_code == 400
    assert api.post(f"/agents/{l3['id']}/l3-routers", json={"router_id": "x"}).status_code == 400
    assert demo.get(f"/routers/{router_id}/l3-agents").status_code == 403
    assert api.get("/agents/00000000-0000-0000-0000-000000000000/l3-routers").status_code == 404


def test_disabled_and_dead_agents_get_no_new_routers(env: Running, api: httpx.Client) -> None:
    node = env.agent("node-dying")
    wait_for(lambda: len(agents(api, host="node-dying")) == 4)
    env.run(node.stop())
    wait_for(lambda: not agent_of(api, "L3 agent", "node-dying")["alive"], timeout=DOWN_TIME + 3)
    here = agent_of(api, "L3 agent")
    assert (
        api.put(f"/agents/{here['id']}", json={"agent": {"admin_state_up": False}}).status_code
        == 200
    )
    try:
        orphan = router(api, "orphan")
        time.sleep(0.5)
        assert l3_agents_of(api, orphan) == set()
        forced = api.post(f"/agents/{here['id']}/l3-routers", json={"router_id": orphan})
        assert forced.status_code == 404  # a disabled agent is not a valid target
    finally:
        api.put(f"/agents/{here['id']}", json={"agent": {"admin_state_up": True}})
    # Enabled again, it takes what nobody hosts.
    wait_for(lambda: l3_agents_of(api, orphan) == {here["id"]}, what="the orphan to be placed")


# --- availability zones ---------------------------------------------------------------------


def test_availability_zones_come_from_agents(api: httpx.Client, demo: httpx.Client) -> None:
    zones = demo.get("/availability_zones")
    assert zones.status_code == 200, zones.text
    assert {"name": "nova", "resource": "network", "state": "available"} in zones.json()[
        "availability_zones"
    ]
    assert {"name": "nova", "resource": "router", "state": "available"} in zones.json()[
        "availability_zones"
    ]
    routers_only = api.get("/availability_zones", params={"resource": "router"}).json()
    assert {z["resource"] for z in routers_only["availability_zones"]} == {"router"}
    # Zones are available while one of their agents is enabled.
    disabled = [a for a in agents(api, agent_type="DHCP agent") if a["admin_state_up"]]
    try:
        for agent in disabled:
            api.put(f"/agents/{agent['id']}", json={"agent": {"admin_state_up": False}})
        listing = api.get("/availability_zones", params={"resource": "network"}).json()
        assert listing["availability_zones"] == [
            {"name": "nova", "resource": "network", "state": "unavailable"}
        ]
    finally:
        for agent in disabled:
            api.put(f"/agents/{agent['id']}", json={"agent": {"admin_state_up": True}})


# --- DHCP agent scheduling ------------------------------------------------------------------


def dhcp_agents_of(api: httpx.Client, network_id: str) -> set[str]:
    response = api.get(f"/networks/{network_id}/dhcp-agents")
    assert response.status_code == 200, response.text
    return ids(response.json()["agents"])


def dhcp_networks_of(api: httpx.Client, agent_id: str) -> set[str]:
    response = api.get(f"/agents/{agent_id}/dhcp-networks")
    assert response.status_code == 200, response.text
    return ids(response.json()["networks"])


def test_networks_with_dhcp_get_a_dhcp_agent(env: Running, api: httpx.Client) -> None:
    dhcp = agent_of(api, "DHCP agent")
    served = network(api, "served", dhcp_subnet="10.91.0.0/24")
    plain = network(api, "plain")
    wait_for(lambda: dhcp_agents_of(api, served) == {dhcp["id"]}, what="DHCP scheduling")
    assert served in dhcp_networks_of(api, dhcp["id"])
    assert dhcp_agents_of(api, plain) == set()
    # The agent was told and asked: it serves the network now.
    wait_for(lambda: served in env.plane.agents[0].dhcp_networks, what="the agent to serve it")
    assert served in env.call(messages.GetDhcpNetworks(HOST)).network_ids
    # The zones a network is in are those of its DHCP agents (for the networks API).
    zones = env.database.run(
        lambda s: agent_scheduling.network_zones(s, [served, plain]), write=False
    )
    assert zones == {served: ["nova"], plain: []}


def test_adding_and_removing_networks_by_hand(env: Running, api: httpx.Client) -> None:
    dhcp = agent_of(api, "DHCP agent")
    network_id = network(api, "by-hand")
    added = api.post(f"/agents/{dhcp['id']}/dhcp-networks", json={"network_id": network_id})
    assert added.status_code == 201, added.text
    assert network_id in dhcp_networks_of(api, dhcp["id"])
    wait_for(lambda: network_id in env.plane.agents[0].dhcp_networks)
    again = api.post(f"/agents/{dhcp['id']}/dhcp-networks", json={"network_id": network_id})
    assert again.status_code == 409
    assert again.json()["NeutronError"]["type"] == "NetworkHostedByDHCPAgent"
    assert api.delete(f"/agents/{dhcp['id']}/dhcp-networks/{network_id}").status_code == 204
    assert network_id not in dhcp_networks_of(api, dhcp["id"])
    wait_for(lambda: network_id not in env.plane.agents[0].dhcp_networks)
    gone = api.delete(f"/agents/{dhcp['id']}/dhcp-networks/{network_id}")
    assert gone.status_code == 409
    assert gone.json()["NeutronError"]["type"] == "NetworkNotHostedByDhcpAgent"
    # Removed by hand, a network with DHCP stays off that agent until it changes.
    with_dhcp = network(api, "stays-off", dhcp_subnet="10.92.0.0/24")
    wait_for(lambda: dhcp_agents_of(api, with_dhcp) == {dhcp["id"]})
    assert api.delete(f"/agents/{dhcp['id']}/dhcp-networks/{with_dhcp}").status_code == 204
    time.sleep(0.3)
    assert dhcp_agents_of(api, with_dhcp) == set()


def test_dhcp_scheduler_errors(api: httpx.Client, demo: httpx.Client) -> None:
    l3 = agent_of(api, "L3 agent")
    dhcp = agent_of(api, "DHCP agent")
    network_id = network(api, "dhcp-errors")
    wrong = api.post(f"/agents/{l3['id']}/dhcp-networks", json={"network_id": network_id})
    assert wrong.status_code == 404 and wrong.json()["NeutronError"]["type"] == "InvalidDHCPAgent"
    missing = api.post(
        f"/agents/{dhcp['id']}/dhcp-networks",
        json={"network_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert missing.status_code == 404
    assert missing.json()["NeutronError"]["type"] == "NetworkNotFound"
    assert api.post(f"/agents/{dhcp['id']}/dhcp-networks", json={}).status_code == 400
    assert demo.get(f"/networks/{network_id}/dhcp-agents").status_code == 403
    assert (
        demo.post(
            f"/agents/{dhcp['id']}/dhcp-networks", json={"network_id": network_id}
        ).status_code
        == 403
    )
    assert api.get("/agents/00000000-0000-0000-0000-000000000000/dhcp-networks").status_code == 404


def test_networks_leave_a_long_dead_dhcp_agent(env: Running, api: httpx.Client) -> None:
    node = env.agent("node-failover")
    try:
        wait_for(lambda: len(agents(api, host="node-failover")) == 4)
        theirs = agent_of(api, "DHCP agent", "node-failover")
        ours = agent_of(api, "DHCP agent")
        network_id = network(api, "failover")
        assert (
            api.post(
                f"/agents/{theirs['id']}/dhcp-networks", json={"network_id": network_id}
            ).status_code
            == 201
        )
        api.post(
            "/subnets",
            json={"subnet": {"network_id": network_id, "cidr": "10.93.0.0/24", "ip_version": 4}},
        )
    finally:
        env.run(node.stop())
    # Dead for twice agent_down_time, its network moves to the live agent (sweeps run
    # every agent_down_time / 2).
    wait_for(
        lambda: dhcp_agents_of(api, network_id) == {ours["id"]},
        timeout=3 * DOWN_TIME + 4,
        what="DHCP failover",
    )


def test_a_disabled_dhcp_agent_stops_serving(env: Running, api: httpx.Client) -> None:
    dhcp = agent_of(api, "DHCP agent")
    network_id = network(api, "disable-me", dhcp_subnet="10.94.0.0/24")
    here = env.plane.agents[0]
    wait_for(lambda: network_id in here.dhcp_networks, what="the agent to serve the network")
    api.put(f"/agents/{dhcp['id']}", json={"agent": {"admin_state_up": False}})
    try:
        wait_for(lambda: not here.dhcp_networks, what="the disabled agent to stop serving")
        assert env.call(messages.GetDhcpNetworks(HOST)).network_ids == ()
    finally:
        api.put(f"/agents/{dhcp['id']}", json={"agent": {"admin_state_up": True}})
    wait_for(lambda: network_id in here.dhcp_networks, what="the agent to serve again")


# --- on PostgreSQL --------------------------------------------------------------------------


@pytest.mark.skipif(not postgres.DSN, reason=postgres.SKIP_REASON)
def test_the_path_to_active_and_scheduling_on_postgresql(tmp_path: Path) -> None:
    with (
        postgres.fresh_database() as url,
        cloud_with_agents(tmp_path, database_url=url) as pg,
        client(pg) as http,
    ):
        wait_for(lambda: len(agents(http, host=HOST)) == 4, what="the agents to register")
        network_id = network(http, "pg", dhcp_subnet="10.95.0.0/24")
        bound = port(http, network_id, **{"binding:host_id": HOST})
        wait_for(lambda: status_of(http, bound["id"]) == "ACTIVE", what="the port to go ACTIVE")
        wait_for(lambda: dhcp_agents_of(http, network_id), what="DHCP scheduling")
        router_id = router(http, "pg")
        wait_for(lambda: l3_agents_of(http, router_id), what="L3 scheduling")
