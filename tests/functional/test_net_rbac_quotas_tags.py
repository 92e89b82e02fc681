"""RBAC policies, quotas, tags and service providers of the networking API (Neutron v2.0)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture

RBAC = "/rbac-policies"


def net_client(cloud: cloudfixture.Cloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/networking/v2.0", headers={"X-Auth-Token": token}, timeout=30
    )


@pytest.fixture(scope="module")
def boss(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with net_client(cloud, cloud.token()) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with net_client(cloud, cloud.token("demo", project="demo")) as client:
        yield client


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with net_client(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        yield client


def project_of(client: httpx.Client) -> str:
    return str(client.get("/quotas/project").json()["project"]["project_id"])


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["NeutronError"]["type"]


def make(client: httpx.Client, collection: str, resource: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/{collection}", json={resource: body})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()[resource]
    return made


def share(
    client: httpx.Client, kind: str, object_id: str, target: str, **extra: Any
) -> httpx.Response:
    body = {"object_type": kind, "object_id": object_id, "target_tenant": target}
    body.setdefault("action", "access_as_shared")
    body.update(extra)
    return client.post(RBAC, json={"rbac_policy": body})


# --- RBAC policies ----------------------------------------------------------------------------


def test_network_shared_with_one_project(demo: httpx.Client, alt: httpx.Client) -> None:
    network = make(demo, "networks", "network", name="to-share")
    assert network["id"] not in [n["id"] for n in alt.get("/networks").json()["networks"]]
    made = share(demo, "network", network["id"], project_of(alt))
    assert made.status_code == 201
    policy = made.json()["rbac_policy"]
    assert policy["target_tenant"] == policy["target_project"] == project_of(alt)
    assert policy["project_id"] == project_of(demo)
    assert network["id"] in [n["id"] for n in alt.get("/networks").json()["networks"]]
    # The target sees the shared object, not the owner's policy.
    assert error(alt.get(f"{RBAC}/{policy['id']}")) == (404, "RbacPolicyNotFound")
    assert policy["id"] not in [p["id"] for p in alt.get(RBAC).json()["rbac_policies"]]
    assert demo.get(f"{RBAC}/{policy['id']}").json()["rbac_policy"] == policy
    again = share(demo, "network", network["id"], project_of(alt))
    assert error(again) == (409, "DuplicateRbacPolicy")
    assert demo.delete(f"{RBAC}/{policy['id']}").status_code == 204
    assert network["id"] not in [n["id"] for n in alt.get("/networks").json()["networks"]]


def test_only_owner_or_admin_shares_and_only_admin_shares_with_everyone(
    demo: httpx.Client, alt: httpx.Client, boss: httpx.Client
) -> None:
    network = make(demo, "networks", "network", name="mine")
    wildcard = share(demo, "network", network["id"], "*")
    assert error(wildcard) == (403, "PolicyNotAuthorized")
    assert error(share(alt, "network", network["id"], project_of(alt))) == (404, "NetworkNotFound")
    assert error(share(demo, "network", str(uuid.uuid4()), "*"))[0] == 403
    mine = share(demo, "network", network["id"], project_of(alt)).json()["rbac_policy"]
    # alt now sees the network, but may not share it on.
    assert error(share(alt, "network", network["id"], project_of(demo))) == (400, "InvalidInput")
    to_all = demo.put(f"{RBAC}/{mine['id']}", json={"rbac_policy": {"target_tenant": "*"}})
    assert error(to_all) == (403, "PolicyNotAuthorized")
    by_admin = share(boss, "network", network["id"], "*")
    assert by_admin.status_code == 201
    assert demo.get(f"/networks/{network['id']}").json()["network"]["shared"] is True
    assert boss.delete(f"{RBAC}/{by_admin.json()['rbac_policy']['id']}").status_code == 204
    assert demo.get(f"/networks/{network['id']}").json()["network"]["shared"] is False


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"object_type": "volume"}, "InvalidInput"),
        ({"action": "access_as_owner"}, "InvalidActionForType"),
        ({"target_tenant": "not-a-project"}, "InvalidInput"),
        ({"object_id": "nope"}, "InvalidInput"),
        ({"colour": "blue"}, "BadRequest"),
    ],
)
def test_bad_policies_are_refused(demo: httpx.Client, body: dict[str, Any], kind: str) -> None:
    network = make(demo, "networks", "network", name="bad-policies")
    spec = {
        "object_type": "network",
        "object_id": network["id"],
        "action": "access_as_shared",
        "target_tenant": str(uuid.uuid4()),
        **body,
    }
    assert error(demo.post(RBAC, json={"rbac_policy": spec})) == (400, kind)
    assert demo.get(RBAC, params={"object_id": network["id"]}).json()["rbac_policies"] == []


def test_policy_retargeted_and_filtered(demo: httpx.Client, alt: httpx.Client) -> None:
    network = make(demo, "networks", "network", name="retarget")
    policy = share(demo, "network", network["id"], project_of(alt)).json()["rbac_policy"]
    other = str(uuid.uuid4().hex)
    moved = demo.put(f"{RBAC}/{policy['id']}", json={"rbac_policy": {"target_tenant": other}})
    assert moved.json()["rbac_policy"]["target_project"] == other
    assert network["id"] not in [n["id"] for n in alt.get("/networks").json()["networks"]]
    listed = demo.get(RBAC, params={"object_id": network["id"], "fields": "id"}).json()
    assert listed["rbac_policies"] == [{"id": policy["id"]}]
    assert (
        demo.get(RBAC, params={"target_tenant": other}).json()["rbac_policies"][0]["id"]
        == (policy["id"])
    )
    fixed = demo.put(f"{RBAC}/{policy['id']}", json={"rbac_policy": {"object_type": "network"}})
    assert error(fixed)[0] == 400


def test_policy_a_project_still_uses_cannot_go(
    admin: Any, demo: httpx.Client, alt: httpx.Client
) -> None:
    network = make(demo, "networks", "network", name="used-share")
    policy = share(demo, "network", network["id"], project_of(alt)).json()["rbac_policy"]
    port = alt.post("/ports", json={"port": {"network_id": network["id"]}})
    assert port.status_code == 201, port.text
    assert error(demo.delete(f"{RBAC}/{policy['id']}")) == (409, "RbacPolicyInUse")
    retarget = demo.put(
        f"{RBAC}/{policy['id']}", json={"rbac_policy": {"target_tenant": uuid.uuid4().hex}}
    )
    assert error(retarget) == (409, "RbacPolicyInUse")
    assert alt.delete(f"/ports/{port.json()['port']['id']}").status_code == 204
    assert demo.delete(f"{RBAC}/{policy['id']}").status_code == 204


def test_external_access_policy_makes_the_network_external(
    boss: httpx.Client, alt: httpx.Client
) -> None:
    network = make(boss, "networks", "network", name="ext-by-policy")
    assert network["router:external"] is False
    made = share(boss, "network", network["id"], project_of(alt), action="access_as_external")
    assert made.status_code == 201
    seen = boss.get(f"/networks/{network['id']}").json()["network"]
    assert seen["router:external"] is True and seen["revision_number"] > network["revision_number"]
    assert network["id"] in [n["id"] for n in alt.get("/networks").json()["networks"]]
    assert boss.delete(f"{RBAC}/{made.json()['rbac_policy']['id']}").status_code == 204
    assert boss.get(f"/networks/{network['id']}").json()["network"]["router:external"] is False


def test_security_group_shared_through_rbac(demo: httpx.Client, alt: httpx.Client) -> None:
    group = make(demo, "security-groups", "security_group", name="shared-sg")
    assert error(alt.get(f"/security-groups/{group['id']}")) == (404, "SecurityGroupNotFound")
    policy = share(demo, "security_group", group["id"], project_of(alt)).json()["rbac_policy"]
    seen = alt.get(f"/security-groups/{group['id']}").json()["security_group"]
    assert seen["shared"] is True
    assert demo.get(f"/security-groups/{group['id']}").json()["security_group"]["shared"] is False
    shared_list = alt.get("/security-groups", params={"shared": "true"}).json()["security_groups"]
    assert [g["id"] for g in shared_list] == [group["id"]]
    rule = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp"}
    added = alt.post("/security-group-rules", json={"security_group_rule": rule})
    assert error(added) == (403, "PolicyNotAuthorized")
    assert error(alt.delete(f"/security-groups/{group['id']}")) == (403, "PolicyNotAuthorized")
    assert demo.delete(f"{RBAC}/{policy['id']}").status_code == 204
    assert error(alt.get(f"/security-groups/{group['id']}"))[0] == 404


def test_rbac_policies_count_against_their_quota(
    cloud: cloudfixture.Cloud, admin: Any, boss: httpx.Client
) -> None:
    member = cloudfixture.ProjectMember(cloud, admin)
    with net_client(cloud, member.token()) as client:
        quota = {"quota": {"rbac_policy": 1}}
        assert boss.put(f"/quotas/{member.project.id}", json=quota).status_code == 200
        network = make(client, "networks", "network", name="quota-share")
        assert share(client, "network", network["id"], uuid.uuid4().hex).status_code == 201
        assert error(share(client, "network", network["id"], uuid.uuid4().hex)) == (
            409,
            "OverQuota",
        )


# --- quotas ------------------------------------------------------------------------------------

RESOURCES = {
    "network",
    "subnet",
    "subnetpool",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
    "rbac_policy",
}


def test_quota_show_update_details_and_reset(
    cloud: cloudfixture.Cloud, admin: Any, boss: httpx.Client
) -> None:
    member = cloudfixture.ProjectMember(cloud, admin)
    project = member.project.id
    with net_client(cloud, member.token()) as client:
        shown = client.get(f"/quotas/{project}").json()["quota"]
        assert set(shown) == RESOURCES and shown["network"] == 100 and shown["subnetpool"] == -1
        assert client.get(f"/quotas/{project}/default").json()["quota"] == shown
        make(client, "networks", "network", name="counted")
        make(client, "networks", "network", name="counted-too")
        details = client.get(f"/quotas/{project}/details.json").json()["quota"]
        assert details["network"] == {"limit": 100, "used": 2, "reserved": 0}
        assert set(details) == RESOURCES
        below = boss.put(f"/quotas/{project}", json={"quota": {"network": 1}})
        assert error(below) == (400, "HTTPBadRequest")
        assert "already used 2" in below.text
        forced = boss.put(f"/quotas/{project}", json={"quota": {"network": 1, "force": True}})
        assert forced.json()["quota"]["network"] == 1
        assert error(client.post("/networks", json={"network": {}})) == (409, "OverQuota")
        assert project in [q["project_id"] for q in boss.get("/quotas").json()["quotas"]]
        assert client.get(f"/quotas/{project}/default").json()["quota"]["network"] == 100
        assert boss.delete(f"/quotas/{project}").status_code == 204
        assert client.get(f"/quotas/{project}").json()["quota"]["network"] == 100
        assert error(boss.delete(f"/quotas/{project}")) == (404, "TenantQuotaNotFound")
        assert project not in [q["project_id"] for q in boss.get("/quotas").json()["quotas"]]


@pytest.mark.parametrize(
    ("quota", "kind"),
    [
        ({"network": -2}, "InvalidInput"),
        ({"network": "many"}, "InvalidInput"),
        ({"widgets": 3}, "BadRequest"),
    ],
)
def test_bad_quota_updates(
    boss: httpx.Client, demo: httpx.Client, quota: dict[str, Any], kind: str
) -> None:
    project = project_of(demo)
    before = demo.get(f"/quotas/{project}").json()
    assert error(boss.put(f"/quotas/{project}", json={"quota": quota})) == (400, kind)
    assert demo.get(f"/quotas/{project}").json() == before


def test_quotas_of_others_are_for_admins(demo: httpx.Client, alt: httpx.Client) -> None:
    other = project_of(alt)
    assert error(demo.get(f"/quotas/{other}")) == (403, "PolicyNotAuthorized")
    assert error(demo.get(f"/quotas/{other}/details")) == (403, "AdminRequired")
    assert error(demo.get("/quotas")) == (403, "PolicyNotAuthorized")
    own = project_of(demo)
    assert error(demo.put(f"/quotas/{own}", json={"quota": {"network": 5}}))[0] == 403
    assert error(demo.delete(f"/quotas/{own}"))[0] == 403


def test_openstacksdk_reads_and_sets_quotas(admin: Any) -> None:
    project = admin.identity.find_project("alt_demo")
    admin.network.update_quota(project.id, ports=123)
    assert admin.network.get_quota(project.id).ports == 123
    details = admin.network.get_quota(project.id, details=True)
    assert details.ports["limit"] == 123
    admin.network.delete_quota(project.id)
    assert admin.network.get_quota(project.id).ports == 500


# --- tags ----------------------------------------------------------------------------------------


def _tagged(client: httpx.Client, collection: str, ident: str) -> list[str]:
    tags: list[str] = client.get(f"/{collection}/{ident}/tags").json()["tags"]
    return tags


def taggables(client: httpx.Client) -> list[tuple[str, str]]:
    """One resource of each taggable kind, owned by ``client``'s project."""
    network = make(client, "networks", "network", name="tagged")
    subnet = make(
        client, "subnets", "subnet", network_id=network["id"], ip_version=4, cidr="10.9.8.0/24"
    )
    port = make(client, "ports", "port", network_id=network["id"])
    router = make(client, "routers", "router", name="tagged")
    group = make(client, "security-groups", "security_group", name="tagged")
    pool = make(client, "subnetpools", "subnetpool", name="tagged", prefixes=["10.200.0.0/16"])
    return [
        ("networks", network["id"]),
        ("subnets", subnet["id"]),
        ("ports", port["id"]),
        ("routers", router["id"]),
        ("security-groups", group["id"]),
        ("subnetpools", pool["id"]),
    ]


def test_tags_on_every_taggable_resource(demo: httpx.Client) -> None:
    for collection, ident in taggables(demo):
        assert demo.put(f"/{collection}/{ident}/tags/red").status_code == 201
        assert demo.put(f"/{collection}/{ident}/tags/red").status_code == 201  # idempotent
        assert _tagged(demo, collection, ident) == ["red"]
        assert demo.get(f"/{collection}/{ident}/tags/red").status_code == 204
        assert error(demo.get(f"/{collection}/{ident}/tags/blue")) == (404, "TagNotFound")
        replaced = demo.put(f"/{collection}/{ident}/tags", json={"tags": ["a", "b", "c"]})
        assert replaced.status_code == 200 and replaced.json() == {"tags": ["a", "b", "c"]}
        singular = collection.rstrip("s").replace("-", "_")
        shown = demo.get(f"/{collection}/{ident}").json()[singular]
        assert sorted(shown["tags"]) == ["a", "b", "c"]
        assert demo.delete(f"/{collection}/{ident}/tags/a").status_code == 204
        assert error(demo.delete(f"/{collection}/{ident}/tags/a")) == (404, "TagNotFound")
        listed = demo.get(f"/{collection}", params={"tags": "b,c", "fields": "id"}).json()
        assert {"id": ident} in listed[collection.replace("-", "_")]
        assert demo.delete(f"/{collection}/{ident}/tags").status_code == 204
        assert _tagged(demo, collection, ident) == []


def test_tag_changes_bump_revision_and_post_adds(demo: httpx.Client) -> None:
    network = make(demo, "networks", "network", name="rev")
    assert demo.put(f"/networks/{network['id']}/tags/x").status_code == 201
    after = demo.get(f"/networks/{network['id']}").json()["network"]
    assert after["revision_number"] > network["revision_number"]
    added = demo.post(f"/networks/{network['id']}/tags", json={"tags": ["y", "x"]})
    assert added.status_code == 201
    assert _tagged(demo, "networks", network["id"]) == ["x", "y"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"tags": ["dup", "dup"]}, "InvalidInput"),
        ({"tags": "not-a-list"}, "InvalidInput"),
        ({"tags": ["x" * 256]}, "InvalidInput"),
        ({"tags": [3]}, "InvalidInput"),
        ({"labels": []}, "InvalidInput"),
        ({"tags": [f"t{i}" for i in range(51)]}, "BadRequest"),
    ],
)
def test_bad_tag_bodies_change_nothing(demo: httpx.Client, body: dict[str, Any], kind: str) -> None:
    network = make(demo, "networks", "network", name="bad-tags")
    demo.put(f"/networks/{network['id']}/tags/keep")
    assert error(demo.put(f"/networks/{network['id']}/tags", json=body)) == (400, kind)
    assert _tagged(demo, "networks", network["id"]) == ["keep"]


def test_tags_of_others_resources(
    demo: httpx.Client, alt: httpx.Client, boss: httpx.Client
) -> None:
    network = make(demo, "networks", "network", name="private-tags")
    assert error(alt.get(f"/networks/{network['id']}/tags")) == (404, "NetworkNotFound")
    assert error(alt.put(f"/networks/{network['id']}/tags/x")) == (404, "NetworkNotFound")
    group = make(demo, "security-groups", "security_group", name="private-tags")
    assert error(alt.put(f"/security-groups/{group['id']}/tags/x"))[0] == 404
    missing = str(uuid.uuid4())
    assert error(demo.get(f"/routers/{missing}/tags")) == (404, "RouterNotFound")
    shared = make(boss, "networks", "network", name="shared-tags", shared=True)
    assert boss.put(f"/networks/{shared['id']}/tags/official").status_code == 201
    assert _tagged(demo, "networks", shared["id"]) == ["official"]
    assert error(demo.put(f"/networks/{shared['id']}/tags/mine")) == (403, "PolicyNotAuthorized")
    assert error(demo.delete(f"/networks/{shared['id']}/tags")) == (403, "PolicyNotAuthorized")
    assert _tagged(boss, "networks", shared["id"]) == ["official"]


# --- service providers ------------------------------------------------------------------------


def test_service_providers(demo: httpx.Client) -> None:
    providers = demo.get("/service-providers").json()["service_providers"]
    assert {"service_type": "L3_ROUTER_NAT", "name": "single_node", "default": True} in providers
    only = demo.get("/service-providers", params={"service_type": "LOADBALANCERV2"}).json()
    assert only["service_providers"] == []
    aliases = [e["alias"] for e in demo.get("/extensions").json()["extensions"]]
    assert {"service-type", "rbac-policies", "quotas", "standard-attr-tag"} <= set(aliases)


# --- PostgreSQL: the quota lock row -------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A database of its own on the server scripts/with-postgres provides (else skip)."""
    dsn = os.environ.get("STACKBOX_TEST_POSTGRES")
    if not dsn:
        pytest.skip("no PostgreSQL: run under scripts/with-postgres")
    import psycopg

    name = f"quota_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = dsn.rpartition("/")
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_creates_stop_at_the_quota_on_postgresql(tmp_path: Path) -> None:
    with (
        postgres_database() as url,
        cloudfixture.as_process(tmp_path, env={"STACKBOX_DATABASE_URL": url}) as cloud,
        net_client(cloud, cloud.token()) as client,
    ):
        project = project_of(client)
        assert client.get("/security-groups").status_code == 200  # the default group: 1 of 6
        limits = {"security_group": 6, "security_group_rule": -1}
        assert client.put(f"/quotas/{project}", json={"quota": limits}).status_code == 200

        def create(i: int) -> int:
            body = {"security_group": {"name": f"race-{i}"}}
            return client.post("/security-groups", json=body).status_code

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(create, range(40)))
        assert statuses.count(201) == 5
        assert statuses.count(409) == 35
        groups = client.get("/security-groups").json()["security_groups"]
        assert len(groups) == 6
        assert [g["name"] for g in groups].count("default") == 1


def test_quota_check_holds_the_projects_lock_row_on_postgresql() -> None:
    """A second check of the same project waits for the first transaction to end, then
    counts what it added: even for a project with no quota rows of its own (the default
    limit), whose first check inserts its lock row."""
    from stackbox import config, rest
    from stackbox.db import migrate
    from stackbox.db import session as db_session
    from stackbox.network import models, quotas, runtime

    with postgres_database() as url:
        db = db_session.Database(url)
        saved = runtime._runtime
        try:
            migrate.upgrade(db.engine)
            runtime.init(config.NetworkSettings(quota_security_group=1), "http://127.0.0.1")
            project = uuid.uuid4().hex
            locked, release = threading.Event(), threading.Event()

            def first(session: Any) -> None:
                quotas.check(session, project, "security_group")
                locked.set()
                release.wait(10)
                session.add(models.SecurityGroup(id=str(uuid.uuid4()), project_id=project))

            def second(session: Any) -> None:
                quotas.check(session, project, "security_group")

            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                holder = pool.submit(db.run, first, write=True)
                assert locked.wait(10)
                waiter = pool.submit(db.run, second, write=True)
                with pytest.raises(concurrent.futures.TimeoutError):
                    waiter.result(timeout=0.5)
                release.set()
                holder.result(timeout=10)
                with pytest.raises(rest.Conflict) as refused:
                    waiter.result(timeout=10)
            assert refused.value.kind == "OverQuota"
        finally:
            runtime._runtime = saved
            db.dispose()
