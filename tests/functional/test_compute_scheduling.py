"""The scheduler with several fake compute hosts: zones, RAM and core limits, server
groups, disabled services, forced hosts, and parallel boots that never overcommit.

The cloud's own host (the all-in-one's agent, 4 vCPUs and 4 GB, overcommit off) is
the only host in ``nova``. Each test starts its own extra hosts (a compute agent on
the fake driver plus the host's L2 agent, on the cloud's bus: ``Cloud.start_host``)
and fences them in an availability zone of their own, so the tests do not see each
other's hosts or servers. Everything else goes through the API and the CLI.

The module runs on SQLite and, when ``STACKBOX_TEST_POSTGRES`` names a server, again
on PostgreSQL: there parallel boots of different projects really run at once, and
only the placement's row locks keep them from overcommitting a host.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture, postgres
from tests.functional import computeservers as cs

NANO = "42"  # m1.nano: 1 vCPU, 64 MB, 1 GB
SMALL = "sched-256"  # 1 vCPU, 256 MB, 1 GB (made by the module)
NO_VALID_HOST = "No valid host was found."


# The all-in-one's host: 4 vCPUs and 4 GB, no CPU overcommit (its vCPUs are what
# fits); quotas out of the way of the parallel boots.
COMPUTE = {
    "create_defaults": True,
    "fake_vcpus": 4,
    "fake_memory_mb": 4096,
    "cpu_allocation_ratio": 1.0,
    "quota_instances": -1,
    "quota_cores": -1,
    "quota_ram": -1,
}


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        # Where parallel claims really race: PostgreSQL locks the nodes' rows, not the file.
        pytest.param(
            "postgresql", marks=pytest.mark.skipif(not postgres.DSN, reason=postgres.SKIP_REASON)
        ),
    ],
)
def cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[cloudfixture.Cloud]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres.fresh_database()) if request.param != "sqlite" else ""
        yield stack.enter_context(
            cloudfixture.in_process(
                Path(tmp_path_factory.mktemp("scheduling")),
                database_url=url,
                compute=COMPUTE,
                network={"create_defaults": True},
            )
        )


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with cs.compute(cloud) as client:
        made = client.post(
            "/flavors",
            json={"flavor": {"name": SMALL, "id": SMALL, "ram": 256, "vcpus": 1, "disk": 1}},
        )
        assert made.status_code == 200, made.text
        yield client


@pytest.fixture(scope="module")
def image(cloud: cloudfixture.Cloud) -> str:
    return cs.image_id(cloud)


@pytest.fixture(scope="module")
def private(cloud: cloudfixture.Cloud) -> str:
    return cs.network_id(cloud)


@pytest.fixture(scope="module")
def home_host(cloud: cloudfixture.Cloud, admin: httpx.Client) -> str:
    """The all-in-one's own compute host (the only one in ``nova``). Read from the plane,
    not from os-services: other tests of this module may have added hosts by then."""
    assert cloud.plane is not None
    host = cloud.plane.compute_agents[0].host
    services = admin.get("/os-services", params={"binary": "nova-compute", "host": host})
    assert len(services.json()["services"]) == 1, services.text
    return host


class Boots:
    """Boots servers for one test and deletes them (waiting) when it ends."""

    def __init__(self, admin: httpx.Client, image: str, network: str) -> None:
        self.admin = admin
        self.image = image
        self.network = network
        self.ids: list[str] = []

    def post(
        self, client: httpx.Client | None = None, *, status: int = 202, **options: Any
    ) -> httpx.Response:
        """POST /servers (``options``: flavor, availability_zone, hints, min_count ...)."""
        server: dict[str, Any] = {
            "name": options.pop("name", "sched"),
            "imageRef": self.image,
            "flavorRef": options.pop("flavor", NANO),
            "networks": [{"uuid": options.pop("network", self.network)}],
            **options,
        }
        hints = server.pop("hints", None)
        body: dict[str, Any] = {"server": server}
        if hints is not None:
            body["os:scheduler_hints"] = hints
        response = (client or self.admin).post("/servers", json=body)
        assert response.status_code == status, response.text
        if status == 202 and "server" in response.json():
            self.ids.append(response.json()["server"]["id"])
        return response

    def active(self, **options: Any) -> dict[str, Any]:
        """Boot one server and wait until it is ACTIVE."""
        made = self.post(**options).json()["server"]
        return cs.wait_status(self.admin, made["id"])

    def refused(self, **options: Any) -> dict[str, Any]:
        """Boot one server no host can take: ERROR at once, with NoValidHost's fault."""
        made = self.post(**options).json()["server"]
        shown = cs.show(self.admin, made["id"])
        assert shown["status"] == "ERROR", shown
        assert shown["OS-EXT-SRV-ATTR:host"] is None
        assert shown["fault"]["code"] == 500
        assert shown["fault"]["message"].startswith(NO_VALID_HOST), shown["fault"]
        return shown

    def by_reservation(self, reservation: str) -> list[dict[str, Any]]:
        listed = self.admin.get("/servers/detail", params={"reservation_id": reservation})
        assert listed.status_code == 200, listed.text
        servers = list(listed.json()["servers"])
        self.ids.extend(s["id"] for s in servers if s["id"] not in self.ids)
        return servers

    def delete_all(self) -> None:
        for server_id in self.ids:
            self.admin.delete(f"/servers/{server_id}")
        for server_id in self.ids:
            cs.wait_gone(self.admin, server_id, timeout=30)
        self.ids = []


@pytest.fixture
def boots(admin: httpx.Client, image: str, private: str) -> Iterator[Boots]:
    made = Boots(admin, image, private)
    yield made
    made.delete_all()


def zone_of_hosts(
    cloud: cloudfixture.Cloud, admin: httpx.Client, zone: str, hosts: dict[str, dict[str, int]]
) -> None:
    """Start fake hosts (name -> vcpus, memory_mb) and put them in ``zone``'s aggregate."""
    for host, size in hosts.items():
        cloud.start_host(host, **size)
    made = admin.post(
        "/os-aggregates", json={"aggregate": {"name": zone, "availability_zone": zone}}
    )
    assert made.status_code == 200, made.text
    for host in hosts:
        added = admin.post(
            f"/os-aggregates/{made.json()['aggregate']['id']}/action",
            json={"add_host": {"host": host}},
        )
        assert added.status_code == 200, added.text


def hypervisor(admin: httpx.Client, host: str) -> dict[str, Any]:
    """The host's node as os-hypervisors shows it (2.1: with the usage figures)."""
    listed = admin.get("/os-hypervisors/detail", headers=cs.version("2.1"))
    assert listed.status_code == 200, listed.text
    (node,) = [h for h in listed.json()["hypervisors"] if h["service"]["host"] == host]
    return dict(node)


def usage(admin: httpx.Client, host: str) -> tuple[int, int, int]:
    node = hypervisor(admin, host)
    return node["vcpus_used"], node["memory_mb_used"], node["running_vms"]


def cli(cloud: cloudfixture.Cloud, *args: str, name: str = "stackbox-admin") -> Any:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    done = subprocess.run(
        [str(Path(sys.executable).with_name("openstack")), "--os-cloud", name, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "-f" in args else done.stdout


def host_of(server: dict[str, Any]) -> str:
    return str(server["OS-EXT-SRV-ATTR:host"])


# --- 1. availability zones --------------------------------------------------------------------


def test_availability_zone_puts_servers_on_its_hosts(
    cloud: cloudfixture.Cloud, admin: httpx.Client, boots: Boots, home_host: str
) -> None:
    # The biggest host of the cloud, so only its zone keeps servers off it.
    cloud.start_host("az-b", vcpus=16, memory_mb=16384)
    made = cli(cloud, "aggregate", "create", "--zone", "az2", "agg-az2", "-f", "json")
    assert made["availability_zone"] == "az2"
    cli(cloud, "aggregate", "add", "host", "agg-az2", "az-b")
    zones = admin.get("/os-availability-zone").json()["availabilityZoneInfo"]
    assert {"zoneName": "az2", "zoneState": {"available": True}, "hosts": None} in zones

    in_az2 = boots.active(name="in-az2", availability_zone="az2")
    assert host_of(in_az2) == "az-b"
    assert in_az2["OS-EXT-AZ:availability_zone"] == "az2"
    in_nova = boots.active(name="in-nova", availability_zone="nova")
    assert host_of(in_nova) == home_host
    assert in_nova["OS-EXT-AZ:availability_zone"] == "nova"
    # Asking for no zone, the weighers pick the host with the most free RAM: az-b.
    anywhere = boots.active(name="anywhere")
    assert host_of(anywhere) == "az-b"

    before = len(admin.get("/servers").json()["servers"])
    message = cs.error(boots.post(availability_zone="no-such-zone", status=400), 400)
    assert message == "The requested availability zone is not available"
    assert len(admin.get("/servers").json()["servers"]) == before


# --- 2. RAM and core limits -------------------------------------------------------------------


def test_ram_and_core_limits_refuse_the_server_that_does_not_fit(
    cloud: cloudfixture.Cloud, admin: httpx.Client, boots: Boots
) -> None:
    zone_of_hosts(cloud, admin, "az-ram", {"ram-1": {"vcpus": 16, "memory_mb": 512}})
    zone_of_hosts(cloud, admin, "az-core", {"core-1": {"vcpus": 2, "memory_mb": 16384}})

    # 512 MB take two 256 MB servers; the third has RAM left nowhere in the zone.
    first, second = (boots.active(flavor=SMALL, availability_zone="az-ram") for _ in range(2))
    assert {host_of(first), host_of(second)} == {"ram-1"}
    refused = boots.refused(flavor=SMALL, availability_zone="az-ram")
    assert "RamFilter eliminated 1 of 1 host" in refused["fault"]["message"]
    assert "CoreFilter" not in refused["fault"]["message"]
    assert cs.ports_of(cloud, refused["id"]) == []
    assert usage(admin, "ram-1") == (2, 512, 2)

    # Two vCPUs take two 1-vCPU servers; the third has a core left nowhere.
    for _ in range(2):
        assert host_of(boots.active(flavor=NANO, availability_zone="az-core")) == "core-1"
    refused_core = boots.refused(flavor=NANO, availability_zone="az-core")
    assert "CoreFilter eliminated 1 of 1 host" in refused_core["fault"]["message"]
    assert "RamFilter" not in refused_core["fault"]["message"]
    assert cs.ports_of(cloud, refused_core["id"]) == []
    assert usage(admin, "core-1") == (2, 128, 2)

    # Deleting a server gives its claim back: the next one fits again.
    cs.delete(admin, first["id"])
    assert usage(admin, "ram-1") == (1, 256, 1)
    assert host_of(boots.active(flavor=SMALL, availability_zone="az-ram")) == "ram-1"
    cs.delete(admin, refused["id"])
    assert usage(admin, "ram-1") == (2, 512, 2)


# --- 3. server groups -------------------------------------------------------------------------


AA_HOSTS = ("aa-1", "aa-2", "aa-3")


@pytest.fixture(scope="module")
def group_zone(cloud: cloudfixture.Cloud, admin: httpx.Client) -> str:
    zone_of_hosts(cloud, admin, "az-aa", {h: {"vcpus": 8, "memory_mb": 4096} for h in AA_HOSTS})
    return "az-aa"


def new_group(admin: httpx.Client, name: str, policy: str, **rules: int) -> str:
    body = {"server_group": {"name": name, "policy": policy, "rules": rules}}
    made = admin.post("/os-server-groups", json=body, headers=cs.version("2.64"))
    assert made.status_code == 200, made.text
    return str(made.json()["server_group"]["id"])


def test_anti_affinity_takes_one_host_each_and_refuses_the_next(
    cloud: cloudfixture.Cloud, admin: httpx.Client, boots: Boots, group_zone: str
) -> None:
    group = cli(cloud, "server", "group", "create", "--policy", "anti-affinity", "aa", "-f", "json")
    placed = [
        boots.active(availability_zone=group_zone, hints={"group": group["id"]}) for _ in AA_HOSTS
    ]
    assert sorted(host_of(s) for s in placed) == sorted(AA_HOSTS)
    refused = boots.refused(availability_zone=group_zone, hints={"group": group["id"]})
    assert "ServerGroupAntiAffinityFilter eliminated 3 of 3 hosts" in refused["fault"]["message"]
    assert cs.ports_of(cloud, refused["id"]) == []
    assert [usage(admin, h) for h in AA_HOSTS] == [(1, 64, 1)] * 3

    # The same in one request: three servers of a fresh group, three hosts.
    boots.delete_all()
    fresh = new_group(admin, "aa-multi", "anti-affinity")
    reservation = boots.post(
        availability_zone=group_zone,
        hints={"group": fresh},
        min_count=3,
        return_reservation_id=True,
    ).json()["reservation_id"]
    together = [cs.wait_status(admin, s["id"]) for s in boots.by_reservation(reservation)]
    assert sorted(host_of(s) for s in together) == sorted(AA_HOSTS)


def test_affinity_packs_servers_on_one_host(
    admin: httpx.Client, boots: Boots, group_zone: str
) -> None:
    group = new_group(admin, "packed", "affinity")
    placed = [boots.active(availability_zone=group_zone, hints={"group": group}) for _ in range(3)]
    # Left alone the RAM weigher spreads them; the group keeps them together.
    assert len({host_of(s) for s in placed}) == 1
    spread = [boots.active(availability_zone=group_zone) for _ in range(2)]
    assert host_of(placed[0]) not in {host_of(s) for s in spread}


def test_max_server_per_host_allows_two_per_host(
    admin: httpx.Client, boots: Boots, group_zone: str
) -> None:
    group = new_group(admin, "two-each", "anti-affinity", max_server_per_host=2)
    placed = [
        boots.active(availability_zone=group_zone, hints={"group": group})
        for _ in range(2 * len(AA_HOSTS))
    ]
    assert Counter(host_of(s) for s in placed) == dict.fromkeys(AA_HOSTS, 2)
    refused = boots.refused(availability_zone=group_zone, hints={"group": group})
    assert "ServerGroupAntiAffinityFilter eliminated 3 of 3 hosts" in refused["fault"]["message"]


# --- 5. disabled services and forced hosts ----------------------------------------------------


def test_disabled_compute_service_gets_no_new_servers(
    cloud: cloudfixture.Cloud, admin: httpx.Client, boots: Boots
) -> None:
    zone_of_hosts(
        cloud, admin, "az-dis", {h: {"vcpus": 8, "memory_mb": 4096} for h in ("dis-1", "dis-2")}
    )
    cli(cloud, "compute", "service", "set", "--disable", "dis-1", "nova-compute")
    services = admin.get("/os-services", params={"host": "dis-1"}).json()["services"]
    assert [s["status"] for s in services] == ["disabled"]
    landed = [boots.active(availability_zone="az-dis") for _ in range(4)]
    assert {host_of(s) for s in landed} == {"dis-2"}
    assert usage(admin, "dis-1") == (0, 0, 0)

    cli(cloud, "compute", "service", "set", "--enable", "dis-1", "nova-compute")
    # dis-1 is the emptier host again: the weighers send the next servers there.
    again = [boots.active(availability_zone="az-dis") for _ in range(2)]
    assert {host_of(s) for s in again} == {"dis-1"}


def test_forced_host_is_admin_only(
    cloud: cloudfixture.Cloud, admin: httpx.Client, boots: Boots, home_host: str
) -> None:
    zone_of_hosts(
        cloud,
        admin,
        "az-force",
        {
            "force-big": {"vcpus": 8, "memory_mb": 8192},
            "force-small": {"vcpus": 8, "memory_mb": 1024},
        },
    )
    # The weighers send servers to the host with the most free RAM; forcing overrides them.
    assert host_of(boots.active(availability_zone="az-force")) == "force-big"
    forced = boots.active(availability_zone="az-force:force-small")
    assert host_of(forced) == "force-small"
    assert forced["OS-EXT-AZ:availability_zone"] == "az-force"
    assert host_of(boots.active(availability_zone=f"nova:{home_host}")) == home_host

    with cs.compute(cloud, token=cloud.token("demo", project="demo")) as demo:
        before = len(demo.get("/servers").json()["servers"])
        response = boots.post(demo, availability_zone="az-force:force-small", status=403)
        assert "os_compute_api:servers:create:forced_host" in cs.error(response, 403)
        assert len(demo.get("/servers").json()["servers"]) == before
    assert usage(admin, "force-small") == (1, 64, 1)


# --- 6. parallel boots ------------------------------------------------------------------------


def test_parallel_boots_never_overcommit(
    cloud: cloudfixture.Cloud, admin: httpx.Client, boots: Boots
) -> None:
    # Room for 12 m1.nano: par-1 has 6 vCPUs, par-2 has 6 x 64 MB.
    hosts = {"par-1": {"vcpus": 6, "memory_mb": 16384}, "par-2": {"vcpus": 64, "memory_mb": 384}}
    zone_of_hosts(cloud, admin, "az-par", hosts)
    # Five projects boot at once (one project's boots queue on its quota lock), on a
    # shared network.
    sdk = cloud.sdk()
    tokens = [cloudfixture.ProjectMember(cloud, sdk).token() for _ in range(5)]
    with cs.networking(cloud) as net:
        made = net.post("/networks", json={"network": {"name": "par-net", "shared": True}})
        assert made.status_code == 201, made.text
        shared = made.json()["network"]["id"]
        subnet = {"network_id": shared, "ip_version": 4, "cidr": "10.77.0.0/24"}
        assert net.post("/subnets", json={"subnet": subnet}).status_code == 201

    def create(index: int) -> str:
        with cs.compute(cloud, token=tokens[index % len(tokens)]) as client:
            response = boots.post(
                client, name=f"par-{index}", availability_zone="az-par", network=shared
            )
        return str(response.json()["server"]["id"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(create, range(20)))
    assert len(set(ids)) == 20

    deadline = time.monotonic() + 60
    while True:
        servers = [cs.show(admin, server_id) for server_id in ids]
        if all(s["status"] in ("ACTIVE", "ERROR") for s in servers):
            break
        assert time.monotonic() < deadline, Counter(s["status"] for s in servers)
        time.sleep(0.2)
    active = [s for s in servers if s["status"] == "ACTIVE"]
    failed = [s for s in servers if s["status"] == "ERROR"]
    assert (len(active), len(failed)) == (12, 8)
    assert Counter(host_of(s) for s in active) == {"par-1": 6, "par-2": 6}
    for server in failed:
        assert server["fault"]["message"].startswith(NO_VALID_HOST), server["fault"]
        assert server["OS-EXT-SRV-ATTR:host"] is None
        assert cs.ports_of(cloud, server["id"]) == []
    for host in hosts:
        node = hypervisor(admin, host)
        assert node["vcpus_used"] <= node["vcpus"], node
        assert node["memory_mb_used"] <= node["memory_mb"], node
        assert node["running_vms"] == 6, node
    assert usage(admin, "par-1") == (6, 384, 6)
    assert usage(admin, "par-2") == (6, 384, 6)
