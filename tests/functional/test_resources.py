"""Users, projects, domains, groups and roles through openstacksdk (what tools use)."""

from __future__ import annotations

import openstack.exceptions
import pytest

from tests.cloudfixture import Cloud


def test_user_lifecycle(cloud: Cloud, admin) -> None:  # type: ignore[no-untyped-def]
    project = admin.identity.create_project(name="user-home", domain_id="default")
    user = admin.identity.create_user(
        name="alice",
        password="first-pw",
        email="alice@example.org",
        default_project_id=project.id,
        description="Alice",
    )
    assert user.domain_id == "default" and user.is_enabled
    shown = admin.identity.get_user(user.id)
    assert shown.email == "alice@example.org" and shown.description == "Alice"
    assert shown.default_project_id == project.id
    assert [u.id for u in admin.identity.users(name="alice")] == [user.id]
    admin.identity.update_user(user, email="a@example.org", password="second-pw")
    assert admin.identity.get_user(user.id).email == "a@example.org"
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    token = cloud.token("alice", "second-pw", project="user-home")
    assert token
    with pytest.raises(AssertionError):
        cloud.token("alice", "first-pw", project="user-home")
    admin.identity.delete_user(user)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.identity.get_user(user.id)
    with cloud.http() as http:
        validated = http.get(
            "/v3/auth/tokens", headers={"X-Auth-Token": cloud.token(), "X-Subject-Token": token}
        )
        assert validated.status_code == 404


def test_disabled_user_tokens_stop_validating(cloud: Cloud, admin) -> None:  # type: ignore[no-untyped-def]
    user = admin.identity.create_user(name="bob", password="bob-pw")
    demo = admin.identity.find_project("demo")
    admin.identity.assign_project_role_to_user(demo, user, admin.identity.find_role("reader"))
    token = cloud.token("bob", "bob-pw", project="demo")
    with cloud.http() as http:
        assert http.get("/v3/auth/projects", headers={"X-Auth-Token": token}).status_code == 200
        admin.identity.update_user(user, is_enabled=False)
        assert http.get("/v3/auth/projects", headers={"X-Auth-Token": token}).status_code == 401
        # Re-enabling does not bring the old token back.
        admin.identity.update_user(user, is_enabled=True)
        assert http.get("/v3/auth/projects", headers={"X-Auth-Token": token}).status_code == 401
        assert cloud.token("bob", "bob-pw", project="demo")


def test_project_hierarchy_and_tags(admin) -> None:  # type: ignore[no-untyped-def]
    top = admin.identity.create_project(name="top", domain_id="default", tags=["a", "b"])
    assert top.parent_id == "default"
    child = admin.identity.create_project(name="child", domain_id="default", parent_id=top.id)
    assert child.parent_id == top.id
    assert set(admin.identity.get_project(top.id).tags) == {"a", "b"}
    assert [p.id for p in admin.identity.projects(tags="a,b")] == [top.id]
    assert [p.id for p in admin.identity.projects(parent_id=top.id)] == [child.id]
    # A project with children cannot be deleted.
    with pytest.raises(openstack.exceptions.ForbiddenException):
        admin.identity.delete_project(top)
    admin.identity.delete_project(child)
    admin.identity.delete_project(top)


def test_deleting_or_disabling_a_project_ends_its_tokens(cloud: Cloud, admin) -> None:  # type: ignore[no-untyped-def]
    member = admin.identity.find_role("member")
    user = admin.identity.create_user(name="frank", password="frank-pw")
    doomed = admin.identity.create_project(name="doomed", domain_id="default")
    paused = admin.identity.create_project(name="paused", domain_id="default")
    for project in (doomed, paused):
        admin.identity.assign_project_role_to_user(project, user, member)
    doomed_token = cloud.token("frank", "frank-pw", project="doomed")
    paused_token = cloud.token("frank", "frank-pw", project="paused")
    admin.identity.delete_project(doomed)
    admin.identity.update_project(paused, is_enabled=False)
    admin.identity.update_project(paused, is_enabled=True)
    with cloud.http() as http:
        for token in (doomed_token, paused_token):
            used = http.get("/v3/auth/projects", headers={"X-Auth-Token": token})
            assert used.status_code == 401
    # A fresh token on the re-enabled project works again.
    assert cloud.token("frank", "frank-pw", project="paused")


def test_domain_lifecycle(admin) -> None:  # type: ignore[no-untyped-def]
    domain = admin.identity.create_domain(name="dom1", description="first")
    project = admin.identity.create_project(name="inside", domain_id=domain.id)
    assert project.domain_id == domain.id
    with pytest.raises(openstack.exceptions.ForbiddenException):
        admin.identity.delete_domain(domain)
    admin.identity.update_domain(domain, is_enabled=False)
    admin.identity.delete_domain(domain)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.identity.get_project(project.id)


def test_groups_give_roles(cloud: Cloud, admin) -> None:  # type: ignore[no-untyped-def]
    group = admin.identity.create_group(name="readers", domain_id="default")
    user = admin.identity.create_user(name="carol", password="carol-pw")
    alt = admin.identity.find_project("alt_demo")
    admin.identity.assign_project_role_to_group(alt, group, admin.identity.find_role("reader"))
    with pytest.raises(AssertionError):
        cloud.token("carol", "carol-pw", project="alt_demo")
    admin.identity.add_user_to_group(user, group)
    assert admin.identity.check_user_in_group(user, group)
    token = cloud.token("carol", "carol-pw", project="alt_demo")
    admin.identity.remove_user_from_group(user, group)
    with cloud.http() as http:
        assert http.get("/v3/auth/projects", headers={"X-Auth-Token": token}).status_code == 401


def test_roles_and_implied_roles(cloud: Cloud, admin) -> None:  # type: ignore[no-untyped-def]
    prior = admin.identity.create_role(name="operator")
    implied = admin.identity.create_role(name="viewer")
    with cloud.http() as http:
        headers = {"X-Auth-Token": cloud.token()}
        made = http.put(f"/v3/roles/{prior.id}/implies/{implied.id}", headers=headers)
        assert made.status_code == 201
        assert made.json()["role_inference"]["implies"]["id"] == implied.id
        rules = http.get("/v3/role_inferences", headers=headers).json()["role_inferences"]
        assert any(r["prior_role"]["id"] == prior.id for r in rules)
        admin_role = admin.identity.find_role("admin")
        refused = http.put(f"/v3/roles/{prior.id}/implies/{admin_role.id}", headers=headers)
        assert refused.status_code == 403
        cycle = http.put(f"/v3/roles/{implied.id}/implies/{prior.id}", headers=headers)
        assert cycle.status_code == 403
    user = admin.identity.create_user(name="dave", password="dave-pw")
    demo = admin.identity.find_project("demo")
    admin.identity.assign_project_role_to_user(demo, user, prior)
    with cloud.http() as http:
        token = http.post(
            "/v3/auth/tokens",
            json={
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": "dave",
                                "domain": {"id": "default"},
                                "password": "dave-pw",
                            }
                        },
                    },
                    "scope": {"project": {"id": demo.id}},
                }
            },
        )
        assert {r["name"] for r in token.json()["token"]["roles"]} == {"operator", "viewer"}


def test_inherited_and_effective_assignments(cloud: Cloud, admin) -> None:  # type: ignore[no-untyped-def]
    domain = admin.identity.create_domain(name="inherit-dom")
    parent = admin.identity.create_project(name="parent", domain_id=domain.id)
    leaf = admin.identity.create_project(name="leaf", domain_id=domain.id, parent_id=parent.id)
    user = admin.identity.create_user(name="erin", password="erin-pw", domain_id=domain.id)
    member = admin.identity.find_role("member")
    with cloud.http() as http:
        headers = {"X-Auth-Token": cloud.token()}
        put = http.put(
            f"/v3/OS-INHERIT/projects/{parent.id}/users/{user.id}/roles/{member.id}"
            "/inherited_to_projects",
            headers=headers,
        )
        assert put.status_code == 204
        listed = http.get(
            "/v3/role_assignments", params={"user.id": user.id}, headers=headers
        ).json()["role_assignments"]
        assert listed[0]["scope"]["OS-INHERIT:inherited_to"] == "projects"
        effective = http.get(
            "/v3/role_assignments",
            params={"user.id": user.id, "effective": "", "include_names": "1"},
            headers=headers,
        ).json()["role_assignments"]
        scopes = {(a["scope"]["project"]["name"], a["role"]["name"]) for a in effective}
        assert scopes == {("leaf", "member"), ("leaf", "reader")}
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": user.id, "password": "erin-pw"}},
                },
                "scope": {"project": {"id": ""}},
            }
        }
        body["auth"]["scope"]["project"]["id"] = leaf.id
        assert http.post("/v3/auth/tokens", json=body).status_code == 201
        body["auth"]["scope"]["project"]["id"] = parent.id
        assert http.post("/v3/auth/tokens", json=body).status_code == 401
