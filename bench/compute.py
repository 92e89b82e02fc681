"""Compute API bench on the fake driver: boot-to-ACTIVE and delete latency for
sequential and parallel boots, GET /servers/detail with 1,000 servers, and the
scheduler's decision time with 1,000 host states.

Runs `stackbox up` in a private state dir (DevStack's flavors, a fake compute host
sized for a thousand small servers), drives it with keep-alive HTTP (one thread per
client), prints figures and the issue's targets (boot-to-ACTIVE p50 <= 200 ms;
listing 1,000 servers <= 150 ms) and Nova's anchor: Rally boot_server 9.0 s on
average. No assertions.

    .venv/bin/python bench/compute.py [--sequential 100] [--parallel 50] [--servers 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import procs
import stackbox_server

PASSWORD = "bench-admin-pw"
UPSTREAM_BOOT_AVG = 9.0
MICROVERSION = "compute 2.96"
POLL = 0.005


class Client:
    """One keep-alive connection with the admin's token."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {
            "X-Auth-Token": token,
            "Content-Type": "application/json",
            "OpenStack-API-Version": MICROVERSION,
        }

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        payload = json.dumps(body) if body is not None else None
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self.conn.request(method, path, payload, self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closes keep-alive connections left idle; reconnect as clients do.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        elapsed = time.perf_counter() - started
        return response.status, (json.loads(raw) if raw else None), elapsed


def token(port: int) -> tuple[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        "/identity/v3/auth/tokens",
        json.dumps(stackbox_server.admin_auth(PASSWORD)),
        {"Content-Type": "application/json"},
    )
    response = conn.getresponse()
    project_id = json.loads(response.read())["token"]["project"]["id"]
    return str(response.headers["X-Subject-Token"]), str(project_id)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def wait_for(
    client: Client, server_id: str, wanted: str, timeout: float = 120.0, poll: float = POLL
) -> str:
    """Poll until the server's status is ``wanted`` ("GONE" = 404); returns the last status."""
    deadline = time.monotonic() + timeout
    status_text = "?"
    while time.monotonic() < deadline:
        status, body, _ = client.call("GET", f"/compute/v2.1/servers/{server_id}")
        if status == 404:
            status_text = "GONE"
        elif status == 200:
            status_text = body["server"]["status"]
        if status_text == wanted or (status_text == "ERROR" and wanted != "ERROR"):
            return status_text
        time.sleep(poll)
    return status_text


def boot_and_delete(
    port: int, auth: str, network_id: str, count: int, clients: int
) -> dict[str, Any]:
    boots: list[float] = []
    deletes: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [count]
    # Every client polls; keep the total poll rate near one client's (200/s), so the
    # figures measure boots rather than the polling.
    poll = POLL * clients

    def work(index: int) -> None:
        client = Client(port, auth)
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
                number = remaining[0]
            body = {
                "server": {
                    "name": f"bench-{clients}-{index}-{number}",
                    "imageRef": IMAGE[0],
                    "flavorRef": "42",
                    "networks": [{"uuid": network_id}],
                }
            }
            started = time.perf_counter()
            status, answer, _ = client.call("POST", "/compute/v2.1/servers", body)
            if status != 202:
                with lock:
                    errors.append(f"create {status}: {answer}")
                continue
            server_id = answer["server"]["id"]
            final = wait_for(client, server_id, "ACTIVE", poll=poll)
            booted = time.perf_counter() - started
            started = time.perf_counter()
            client.call("DELETE", f"/compute/v2.1/servers/{server_id}")
            gone = wait_for(client, server_id, "GONE", poll=poll)
            deleted = time.perf_counter() - started
            with lock:
                if final == "ACTIVE":
                    boots.append(booted)
                else:
                    errors.append(f"server ended {final}")
                if gone == "GONE":
                    deletes.append(deleted)
                else:
                    errors.append(f"delete ended {gone}")

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "boots": boots,
        "deletes": deletes,
        "errors": errors,
        "wall": wall,
    }


IMAGE: list[str] = [""]


def parallel_boots(port: int, auth: str, network_id: str, count: int) -> dict[str, Any]:
    """``count`` clients create one server each at the same moment; one poller lists the
    servers (a single request every few milliseconds, so polling does not load the
    server as ``count`` pollers would) and records when each turns ACTIVE; then every
    client deletes its server at once and the poller records when each is gone."""
    poller = Client(port, auth)
    created: dict[str, float] = {}
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def create(index: int) -> None:
        client = Client(port, auth)
        body = {
            "server": {
                "name": f"par-{index}",
                "imageRef": IMAGE[0],
                "flavorRef": "42",
                "networks": [{"uuid": network_id}],
            }
        }
        barrier.wait()
        started = time.perf_counter()
        status, answer, _ = client.call("POST", "/compute/v2.1/servers", body)
        with lock:
            if status == 202:
                created[answer["server"]["id"]] = started
            else:
                errors.append(f"create {status}: {answer}")

    def delete(server_id: str) -> None:
        Client(port, auth).call("DELETE", f"/compute/v2.1/servers/{server_id}")

    def run(threads: list[threading.Thread]) -> float:
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        return started

    def watch(ids: set[str], done: Any, deadline: float) -> dict[str, float]:
        seen: dict[str, float] = {}
        while len(seen) < len(ids) and time.monotonic() < deadline:
            status, body, _ = poller.call("GET", "/compute/v2.1/servers/detail?name=^par-")
            now = time.perf_counter()
            for server in body.get("servers", []) if status == 200 else []:
                if server["id"] in ids and server["id"] not in seen and done(server):
                    seen[server["id"]] = now
            if done is gone:
                listed = {s["id"] for s in body.get("servers", [])}
                for server_id in ids - listed - set(seen):
                    seen[server_id] = now
            time.sleep(POLL)
        return seen

    def gone(server: dict[str, Any]) -> bool:
        return False

    threads = [threading.Thread(target=create, args=(i,)) for i in range(count)]
    wall = run(threads)
    for thread in threads:
        thread.join()
    active = watch(set(created), lambda s: s["status"] == "ACTIVE", time.monotonic() + 300)
    boots = [active[i] - created[i] for i in active]
    errors += [f"server {i} not ACTIVE" for i in set(created) - set(active)]
    deleted_at = {}
    threads = [threading.Thread(target=delete, args=(i,)) for i in created]
    for server_id in created:
        deleted_at[server_id] = time.perf_counter()
    run(threads)
    for thread in threads:
        thread.join()
    vanished = watch(set(created), gone, time.monotonic() + 300)
    deletes = [vanished[i] - deleted_at[i] for i in vanished]
    return {
        "boots": boots,
        "deletes": deletes,
        "errors": errors,
        "wall": time.perf_counter() - wall,
    }


def report(name: str, result: dict[str, Any]) -> None:
    boots, deletes = result["boots"], result["deletes"]
    if not boots:
        print(f"{name}: no server became ACTIVE; errors: {result['errors'][:3]}")
        return
    print(
        f"{name}: boot-to-ACTIVE p50 {ms(statistics.median(boots))}, p95 "
        f"{ms(percentile(boots, 95))}; delete p50 {ms(statistics.median(deletes))}, p95 "
        f"{ms(percentile(deletes, 95))}; {len(boots)} booted in {result['wall']:.1f} s"
        f" ({len(result['errors'])} errors{': ' + result['errors'][0] if result['errors'] else ''})"
    )


def fill(client: Client, network_id: str, total: int) -> int:
    """Boot servers in batches (min_count) until ``total`` exist; returns how many."""
    made = 0
    while made < total:
        batch = min(50, total - made)
        body = {
            "server": {
                "name": "fill",
                "imageRef": IMAGE[0],
                "flavorRef": "42",
                "networks": [{"uuid": network_id}],
                "min_count": batch,
                "max_count": batch,
            }
        }
        status, answer, _ = client.call("POST", "/compute/v2.1/servers", body)
        if status != 202:
            print(f"  fill stopped: {status} {answer}")
            break
        made += batch
    return made


def scheduler_decision(hosts: int) -> tuple[float, float] | None:
    """p50/p95 of one decision over ``hosts`` host states, in-process (no database)."""
    try:
        import scheduler_decision as decision  # bench/scheduler_decision.py
    except ImportError:
        return None
    measure = getattr(decision, "measure", None)
    if measure is None:
        return None
    result: tuple[float, float] = measure(hosts)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--servers", type=int, default=1000, help="servers for the listing")
    parser.add_argument("--lists", type=int, default=20, help="listings to time")
    args = parser.parse_args(argv)

    settings = {
        # A fake host big enough for the listing's thousand m1.nano servers.
        "STACKBOX_COMPUTE_FAKE_VCPUS": "4096",
        "STACKBOX_COMPUTE_FAKE_MEMORY_MB": str(2048 * 1024),
        "STACKBOX_COMPUTE_FAKE_LOCAL_GB": "65536",
    }
    with tempfile.TemporaryDirectory(prefix="stackbox-computebench-") as tmp:
        work = Path(tmp)
        port = procs.free_port()
        server = stackbox_server.launch(work, work / "state", port, PASSWORD, 4, settings)
        try:
            start = procs.wait_ready(server, "/compute/")
            auth, project_id = token(port)
            client = Client(port, auth)
            print("== compute bench (fake driver) ==")
            print(
                f"machine: {os.cpu_count()} CPUs, load average "
                f"{os.getloadavg()[0]:.2f} at start; stackbox answered in {start:.2f} s"
            )
            # Unlimited quotas for the bench's project, in both services.
            client.call(
                "PUT",
                f"/compute/v2.1/os-quota-sets/{project_id}",
                {"quota_set": {"instances": -1, "cores": -1, "ram": -1}},
            )
            client.call("PUT", f"/networking/v2.0/quotas/{project_id}", {"quota": {"port": -1}})
            status, body, _ = client.call("GET", "/image/v2/images?name=stackbox-tiny")
            IMAGE[0] = body["images"][0]["id"]
            status, body, _ = client.call(
                "POST", "/networking/v2.0/networks", {"network": {"name": "bench"}}
            )
            network_id = body["network"]["id"]
            client.call(
                "POST",
                "/networking/v2.0/subnets",
                {"subnet": {"network_id": network_id, "ip_version": 4, "cidr": "10.80.0.0/20"}},
            )
            # Wait for the compute host to register (the agent's first heartbeat).
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status, body, _ = client.call("GET", "/compute/v2.1/os-hypervisors")
                if status == 200 and body.get("hypervisors"):
                    break
                time.sleep(0.1)
            sequential = boot_and_delete(port, auth, network_id, args.sequential, 1)
            report(f"{args.sequential} sequential boots", sequential)
            parallel = parallel_boots(port, auth, network_id, args.parallel)
            report(f"{args.parallel} parallel boots", parallel)

            made = fill(client, network_id, args.servers)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                status, body, _ = client.call(
                    "GET", "/compute/v2.1/servers/detail?status=BUILD&limit=1"
                )
                if status == 200 and not body["servers"]:
                    break
                time.sleep(0.5)
            # Steady state: the fake network agent has reported every port (right after
            # the boots its status writes still compete with the listings).
            while time.monotonic() < deadline:
                status, body, _ = client.call(
                    "GET", "/networking/v2.0/ports?status=DOWN&device_owner=compute:nova&limit=1"
                )
                if status == 200 and not body["ports"]:
                    break
                time.sleep(0.5)
            status, body, _ = client.call("GET", "/compute/v2.1/servers/detail")
            total = len(body.get("servers", []))
            timings = []
            for _ in range(args.lists):
                status, body, elapsed = client.call("GET", "/compute/v2.1/servers/detail")
                timings.append(elapsed)
            listing = statistics.median(timings)
            print(
                f"GET /servers/detail with {total:,} servers ({made} booted in batches): "
                f"p50 {ms(listing)}, p95 {ms(percentile(timings, 95))}, min {ms(min(timings))}"
            )
            decision = scheduler_decision(1000)
            if decision is not None:
                print(
                    f"scheduler decision, 1,000 host states: p50 {ms(decision[0])}, "
                    f"p95 {ms(decision[1])}"
                )
            memory = procs.memory(server.pids())
            print(f"server RSS after the bench: {memory.rss_mb:.1f} MB")
            boots = sequential["boots"] or [float("inf")]
            p50 = statistics.median(boots)
            print("targets (figures, not assertions):")
            print(
                f"  boot-to-ACTIVE p50 <= 200 ms (sequential)     {ms(p50):>10}  "
                f"{'met' if p50 <= 0.200 else 'not met'}"
            )
            print(
                f"  GET /servers/detail, 1,000 servers <= 150 ms  {ms(listing):>10}  "
                f"{'met' if listing <= 0.150 else 'not met'}"
            )
            print(
                f"  anchor: Rally boot_server average {UPSTREAM_BOOT_AVG} s = "
                f"{UPSTREAM_BOOT_AVG / p50:,.0f}x stackbox's p50"
            )
        except Exception:
            print(server.log_tail(40), file=sys.stderr)
            raise
        finally:
            procs.stop(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
