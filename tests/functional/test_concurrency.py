"""Concurrent writes on SQLite: serialized inside stackbox, never a 500 or a double insert."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.cloudfixture import Cloud


def test_parallel_creates_all_succeed(cloud: Cloud) -> None:
    headers = {"X-Auth-Token": cloud.token()}

    def create(i: int) -> int:
        with cloud.http() as http:
            kind, body = [
                ("projects", {"project": {"name": f"par-p{i}"}}),
                ("users", {"user": {"name": f"par-u{i}", "password": "pw"}}),
                ("groups", {"group": {"name": f"par-g{i}"}}),
                ("roles", {"role": {"name": f"par-r{i}"}}),
            ][i % 4]
            return http.post(f"/v3/{kind}", json=body, headers=headers).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(create, range(64)))
    assert statuses == [201] * 64


def test_same_name_race_has_one_winner(cloud: Cloud) -> None:
    headers = {"X-Auth-Token": cloud.token()}

    def create(_: int) -> int:
        with cloud.http() as http:
            return http.post(
                "/v3/projects", json={"project": {"name": "contested"}}, headers=headers
            ).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = sorted(pool.map(create, range(24)))
    assert statuses == [201] + [409] * 23
    with httpx.Client(base_url=cloud.identity_url) as http:
        found = http.get("/v3/projects", params={"name": "contested"}, headers=headers)
    assert len(found.json()["projects"]) == 1


def test_reads_and_writes_interleave(cloud: Cloud) -> None:
    """Token validations keep answering while writers queue."""
    admin = cloud.token()
    headers = {"X-Auth-Token": admin}

    def work(i: int) -> int:
        with cloud.http() as http:
            if i % 2:
                return http.post(
                    "/v3/domains", json={"domain": {"name": f"mix-d{i}"}}, headers=headers
                ).status_code
            return http.get(
                "/v3/auth/tokens", headers={**headers, "X-Subject-Token": admin}
            ).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(work, range(80)))
    assert sorted(set(statuses)) == [200, 201]
