"""Compute quotas: os-quota-sets, os-quota-class-sets, /limits, and the quota engine
the servers API calls (instances, cores, ram, metadata, server groups)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import models, quotas
from stackbox.db import session as db_session
from tests import cloudfixture

NETWORK = {"fixed_ips", "floating_ips", "security_groups", "security_group_rules"}
INJECTED = {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
CORE = {
    "instances",
    "cores",
    "ram",
    "metadata_items",
    "key_pairs",
    "server_groups",
    "server_group_members",
}


def compute(cloud: cloudfixture.Cloud, token: str, version: str = "2.96") -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/compute/v2.1",
        headers={"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"},
        timeout=30,
    )


def v(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture(scope="module")
def boss(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with compute(cloud, cloud.token()) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with compute(cloud, cloud.token("demo", project="demo")) as client:
        yield client


@pytest.fixture(scope="module")
def database(cloud: cloudfixture.Cloud) -> db_session.Database:
    return db_session.Database(f"sqlite:///{cloud.state_dir / 'stackbox.db'}")


@pytest.fixture(scope="module")
def ids(cloud: cloudfixture.Cloud) -> dict[str, str]:
    conn = cloud.sdk()
    found = {}
    for name in ("admin", "demo", "alt_demo"):
        found[f"project:{name}"] = conn.identity.find_project(name, ignore_missing=False).id
        found[f"user:{name}"] = conn.identity.find_user(name, ignore_missing=False).id
    return found


def fault(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    (name,) = body
    return str(body[name]["message"])


def new_project(cloud: cloudfixture.Cloud) -> str:
    return str(cloud.sdk().identity.create_project(name=f"q-{uuid.uuid4().hex[:8]}").id)


def add_server(
    database: db_session.Database, project_id: str, user_id: str, vcpus: int, ram: int
) -> str:
    """A server row as the servers API would write it (only what quotas read)."""
    server_id = str(uuid.uuid4())

    def write(session: Session) -> None:
        session.add(
            models.Server(
                id=server_id,
                project_id=project_id,
                user_id=user_id,
                flavor={"vcpus": vcpus, "memory_mb": ram},
            )
        )

    database.run(write, write=True)
    return server_id


# --- os-quota-sets ---------------------------------------------------------------------------


def test_show_shapes_per_microversion(demo: httpx.Client, ids: dict[str, str]) -> None:
    project = ids["project:demo"]
    old = demo.get(f"/os-quota-sets/{project}", headers=v("2.1")).json()["quota_set"]
    assert set(old) == CORE | NETWORK | INJECTED | {"id"}
    assert old["id"] == project and old["instances"] == 10 and old["floating_ips"] == -1
    mid = demo.get(f"/os-quota-sets/{project}", headers=v("2.36")).json()["quota_set"]
    assert set(mid) == CORE | INJECTED | {"id"}
    new = demo.get(f"/os-quota-sets/{project}").json()["quota_set"]
    assert set(new) == CORE | {"id"}
    assert (new["cores"], new["ram"], new["key_pairs"]) == (20, 51200, 100)
    defaults = demo.get(f"/os-quota-sets/{project}/defaults").json()["quota_set"]
    assert defaults == new


def test_unknown_project_is_400(boss: httpx.Client) -> None:
    message = fault(boss.get("/os-quota-sets/no-such-project"), 400)
    assert message == "Project ID no-such-project is not a valid project."


def test_sdk_update_and_revert(cloud: cloudfixture.Cloud, admin: Any) -> None:
    project = new_project(cloud)
    admin.compute.update_quota_set(project, instances=3, ram="4096")
    shown = admin.compute.get_quota_set(project)
    assert (shown.instances, shown.ram, shown.cores) == (3, 4096, 20)
    detailed = admin.compute.get_quota_set(project, usage=True)
    assert detailed.usage["instances"] == 0
    admin.compute.revert_quota_set(project)
    assert admin.compute.get_quota_set(project).instances == 10


def test_update_validation(cloud: cloudfixture.Cloud, boss: httpx.Client) -> None:
    project = new_project(cloud)
    for bad in ({"instances": -2}, {"instances": "ten"}, {"colour": 1}, {"cores": 2**31}):
        fault(boss.put(f"/os-quota-sets/{project}", json={"quota_set": bad}), 400)
    # The nova-network quotas are gone from 2.36, the injected-file ones from 2.57.
    fault(boss.put(f"/os-quota-sets/{project}", json={"quota_set": {"floating_ips": 5}}), 400)
    fault(boss.put(f"/os-quota-sets/{project}", json={"quota_set": {"injected_files": 5}}), 400)
    ok = boss.put(
        f"/os-quota-sets/{project}", json={"quota_set": {"floating_ips": 5}}, headers=v("2.35")
    )
    assert ok.status_code == 200 and ok.json()["quota_set"]["floating_ips"] == 5
    assert "id" not in ok.json()["quota_set"]


def test_non_admin_cannot_update(demo: httpx.Client, ids: dict[str, str]) -> None:
    project = ids["project:demo"]
    fault(demo.put(f"/os-quota-sets/{project}", json={"quota_set": {"instances": 50}}), 403)
    fault(demo.delete(f"/os-quota-sets/{project}"), 403)
    fault(demo.get(f"/os-quota-sets/{ids['project:alt_demo']}"), 403)


def test_limit_below_usage_needs_force(
    cloud: cloudfixture.Cloud, boss: httpx.Client, database: db_session.Database
) -> None:
    project = new_project(cloud)
    add_server(database, project, "someone", 2, 512)
    add_server(database, project, "someone", 2, 512)
    detail = boss.get(f"/os-quota-sets/{project}/detail").json()["quota_set"]
    assert detail["instances"] == {"limit": 10, "in_use": 2, "reserved": 0}
    assert detail["cores"]["in_use"] == 4 and detail["ram"]["in_use"] == 1024
    message = fault(
        boss.put(f"/os-quota-sets/{project}", json={"quota_set": {"instances": 1}}), 400
    )
    assert message == (
        "Quota limit 1 for instances must be greater than or equal to already used and reserved 2."
    )
    forced = boss.put(
        f"/os-quota-sets/{project}", json={"quota_set": {"instances": 1, "force": True}}
    )
    assert forced.status_code == 200 and forced.json()["quota_set"]["instances"] == 1


def test_per_user_quotas(
    cloud: cloudfixture.Cloud, boss: httpx.Client, ids: dict[str, str]
) -> None:
    project = new_project(cloud)
    user = ids["user:demo"]
    assert (
        boss.put(f"/os-quota-sets/{project}", json={"quota_set": {"ram": 5120}}).status_code == 200
    )
    set_user = boss.put(
        f"/os-quota-sets/{project}", params={"user_id": user}, json={"quota_set": {"ram": 2048}}
    )
    assert set_user.status_code == 200 and set_user.json()["quota_set"]["ram"] == 2048
    assert (
        boss.get(f"/os-quota-sets/{project}", params={"user_id": user}).json()["quota_set"]["ram"]
        == 2048
    )
    assert boss.get(f"/os-quota-sets/{project}").json()["quota_set"]["ram"] == 5120
    # A user's limit may not pass what the project has left to hand out.
    too_much = boss.put(
        f"/os-quota-sets/{project}", params={"user_id": user}, json={"quota_set": {"ram": 6000}}
    )
    assert fault(too_much, 400) == "Quota limit 6000 for ram must be less than or equal to 5120."
    assert boss.delete(f"/os-quota-sets/{project}", params={"user_id": user}).status_code == 202
    assert (
        boss.get(f"/os-quota-sets/{project}", params={"user_id": user}).json()["quota_set"]["ram"]
        == 5120
    )
    fault(boss.get(f"/os-quota-sets/{project}", params={"colour": "x"}), 400)


# --- os-quota-class-sets --------------------------------------------------------------------


def test_quota_class_default_changes_defaults(
    cloud: cloudfixture.Cloud, boss: httpx.Client, demo: httpx.Client
) -> None:
    old = boss.get("/os-quota-class-sets/default", headers=v("2.1")).json()["quota_class_set"]
    assert set(old) == (CORE | NETWORK | INJECTED | {"id"}) - {
        "server_groups",
        "server_group_members",
    }
    mid = boss.get("/os-quota-class-sets/default", headers=v("2.50")).json()["quota_class_set"]
    assert set(mid) == CORE | INJECTED | {"id"}
    shown = boss.get("/os-quota-class-sets/default").json()["quota_class_set"]
    assert set(shown) == CORE | {"id"} and shown["id"] == "default"
    fault(demo.get("/os-quota-class-sets/default"), 403)
    try:
        updated = boss.put(
            "/os-quota-class-sets/default", json={"quota_class_set": {"instances": 33}}
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["quota_class_set"]["instances"] == 33
        assert "id" not in updated.json()["quota_class_set"]
        project = new_project(cloud)
        assert boss.get(f"/os-quota-sets/{project}").json()["quota_set"]["instances"] == 33
        assert boss.get(f"/os-quota-sets/{project}/defaults").json()["quota_set"]["instances"] == 33
        fault(boss.put("/os-quota-class-sets/default", json={"quota_class_set": {"bogus": 1}}), 400)
    finally:
        boss.put("/os-quota-class-sets/default", json={"quota_class_set": {"instances": 10}})


# --- limits ---------------------------------------------------------------------------------


def test_limits_per_microversion(cloud: cloudfixture.Cloud, admin: Any) -> None:
    with compute(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        old = client.get("/limits", headers=v("2.1")).json()["limits"]
        assert old["rate"] == []
        assert {
            "maxSecurityGroups",
            "maxTotalFloatingIps",
            "maxImageMeta",
            "maxPersonality",
            "totalSecurityGroupsUsed",
            "totalFloatingIpsUsed",
        } <= set(old["absolute"])
        after_236 = client.get("/limits", headers=v("2.36")).json()["limits"]["absolute"]
        assert "maxSecurityGroups" not in after_236 and "maxImageMeta" in after_236
        after_239 = client.get("/limits", headers=v("2.39")).json()["limits"]["absolute"]
        assert "maxImageMeta" not in after_239 and "maxPersonality" in after_239
        new = client.get("/limits").json()["limits"]["absolute"]
        assert "maxPersonality" not in new
        assert new["maxTotalInstances"] == 10 and new["totalInstancesUsed"] == 0
    limits = admin.compute.get_limits()
    assert limits.absolute.instances == 10


def test_limits_count_usage_and_other_project(
    cloud: cloudfixture.Cloud,
    boss: httpx.Client,
    demo: httpx.Client,
    database: db_session.Database,
    ids: dict[str, str],
) -> None:
    project = new_project(cloud)
    add_server(database, project, "u1", 3, 1024)
    shown = boss.get("/limits", params={"tenant_id": project}).json()["limits"]["absolute"]
    assert (shown["totalInstancesUsed"], shown["totalCoresUsed"], shown["totalRAMUsed"]) == (
        1,
        3,
        1024,
    )
    fault(demo.get("/limits", params={"tenant_id": project}), 403)


# --- the engine -----------------------------------------------------------------------------


def test_check_instances_messages(cloud: cloudfixture.Cloud, database: db_session.Database) -> None:
    project = new_project(cloud)
    for _ in range(10):
        add_server(database, project, "u", 1, 64)
    with pytest.raises(rest.Forbidden) as raised:
        database.run(lambda s: quotas.check_instances(s, project, "u", 1, 1, 64), write=True)
    assert raised.value.message == (
        "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
    )
    other = new_project(cloud)
    add_server(database, other, "u", 16, 1024)
    with pytest.raises(rest.Forbidden) as raised:
        database.run(lambda s: quotas.check_instances(s, other, "u", 2, 4, 1024), write=True)
    assert raised.value.message == (
        "Quota exceeded for cores: Requested 8, but already used 16 of 20 cores"
    )
    # min_count: as many as fit, if at least min_count do.
    allowed = database.run(
        lambda s: quotas.check_instances(s, other, "u", 3, 2, 64, min_count=1), write=True
    )
    assert allowed == 2
    with pytest.raises(rest.Forbidden) as raised:
        database.run(
            lambda s: quotas.check_instances(s, other, "u", 5, 4, 64, min_count=2), write=True
        )
    assert raised.value.message == (
        "Quota exceeded for cores: Requested 20, but already used 16 of 20 cores"
    )


def test_check_resize_and_others(cloud: cloudfixture.Cloud, database: db_session.Database) -> None:
    project = new_project(cloud)
    add_server(database, project, "u", 18, 1024)
    small, big = {"vcpus": 1, "memory_mb": 512}, {"vcpus": 4, "memory_mb": 512}
    with pytest.raises(rest.Forbidden, match="Quota exceeded for cores"):
        database.run(lambda s: quotas.check_resize(s, project, "u", small, big), write=True)
    database.run(lambda s: quotas.check_resize(s, project, "u", big, small), write=True)
    with pytest.raises(rest.Forbidden, match="Maximum number of metadata items exceeds 128"):
        database.run(lambda s: quotas.check_metadata_items(s, project, 129), write=False)
    database.run(lambda s: quotas.check_metadata_items(s, project, 128), write=False)

    def groups(session: Session, count: int) -> None:
        for _ in range(count):
            session.add(
                models.ServerGroup(
                    id=str(uuid.uuid4()),
                    name="g",
                    project_id=project,
                    user_id="u",
                    policy="affinity",
                )
            )

    database.run(lambda s: groups(s, 10), write=True)
    with pytest.raises(rest.Forbidden, match=r"Quota exceeded, too many server groups\."):
        database.run(lambda s: quotas.check_server_groups(s, project, "u"), write=True)
    group_id = str(uuid.uuid4())

    def members(session: Session) -> None:
        session.add(
            models.ServerGroup(
                id=group_id, name="m", project_id="p", user_id="u", policy="affinity"
            )
        )
        session.flush()
        for _ in range(10):
            session.add(models.ServerGroupMember(group_id=group_id, server_id=str(uuid.uuid4())))

    database.run(members, write=True)
    with pytest.raises(rest.Forbidden, match="Quota exceeded, too many servers in group"):
        database.run(
            lambda s: quotas.check_server_group_members(s, project, "u", group_id), write=True
        )


def test_concurrent_creates_never_pass_the_limit(
    cloud: cloudfixture.Cloud, boss: httpx.Client
) -> None:
    project = new_project(cloud)
    assert (
        boss.put(f"/os-quota-sets/{project}", json={"quota_set": {"instances": 3}}).status_code
        == 200
    )
    # A second engine on the same file, so the threads really race for the database.
    racers = [db_session.Database(f"sqlite:///{cloud.state_dir / 'stackbox.db'}") for _ in range(2)]
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def create(database: db_session.Database) -> None:
        def work(session: Session) -> None:
            quotas.check_instances(session, project, "u", 1, 1, 64)
            session.add(
                models.Server(
                    id=str(uuid.uuid4()),
                    project_id=project,
                    user_id="u",
                    flavor={"vcpus": 1, "memory_mb": 64},
                )
            )

        start.wait()
        try:
            database.run(work, write=True)
            outcomes.append("made")
        except rest.Forbidden:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(racers[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["made"] * 3 + ["refused"] * 5
    used = racers[0].run(lambda s: quotas.server_usage(s, project)["instances"], write=False)
    assert used == 3
