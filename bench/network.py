"""Networking API bench: port create throughput and latency (1 and 8 clients),
GET /v2.0/ports with 1,000 ports, and a network + subnet create/delete round trip.

Runs `stackbox up` in a private state dir, drives it with keep-alive HTTP
(http.client, one thread per client), prints figures and the issue's targets
(port create p50 <= 10 ms at 1 client; listing 1,000 ports <= 150 ms), and
Neutron's anchor: create_port median 0.647 s (OPNFV Rally). No assertions.

    .venv/bin/python bench/network.py [--ports 1000] [--creates 200]
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
UPSTREAM_CREATE_PORT_P50 = 0.647


class Client:
    """One keep-alive connection with the admin's token."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"X-Auth-Token": token, "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        payload = json.dumps(body) if body is not None else None
        started = time.perf_counter()
        try:
            self.conn.request(method, "/networking/v2.0" + path, payload, self.headers)
            response = self.conn.getresponse()
        except http.client.RemoteDisconnected:
            # The server closes keep-alive connections left idle; reconnect as clients do.
            self.conn.close()
            started = time.perf_counter()
            self.conn.request(method, "/networking/v2.0" + path, payload, self.headers)
            response = self.conn.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - started
        return response.status, (json.loads(raw) if raw else None), elapsed


def token(port: int) -> tuple[str, str]:
    """The admin's token and project id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = stackbox_server.admin_auth(PASSWORD)
    conn.request(
        "POST", "/identity/v3/auth/tokens", json.dumps(body), {"Content-Type": "application/json"}
    )
    response = conn.getresponse()
    project_id = json.loads(response.read())["token"]["project"]["id"]
    return str(response.headers["X-Subject-Token"]), str(project_id)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def make_network(client: Client, name: str, cidr: str) -> tuple[str, str]:
    status, body, _ = client.call("POST", "/networks", {"network": {"name": name}})
    assert status == 201, body
    network_id = body["network"]["id"]
    status, body, _ = client.call(
        "POST", "/subnets", {"subnet": {"network_id": network_id, "ip_version": 4, "cidr": cidr}}
    )
    assert status == 201, body
    return network_id, body["subnet"]["id"]


def create_ports(port: int, auth: str, network_id: str, count: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [count]

    def work() -> None:
        nonlocal errors
        client = Client(port, auth)
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            status, _, elapsed = client.call("POST", "/ports", {"port": {"network_id": network_id}})
            with lock:
                if status == 201:
                    latencies.append(elapsed)
                else:
                    errors += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "ok": len(latencies),
        "errors": errors,
        "rate": len(latencies) / wall,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ports", type=int, default=1000, help="ports for the listing")
    parser.add_argument("--creates", type=int, default=200, help="creates per client count")
    parser.add_argument("--lists", type=int, default=20, help="listings to time")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="stackbox-netbench-") as tmp:
        work = Path(tmp)
        port = procs.free_port()
        server = stackbox_server.launch(work, work / "state", port, PASSWORD, 4)
        try:
            start = procs.wait_ready(server, "/networking/")
            auth, project_id = token(port)
            client = Client(port, auth)
            # The bench makes more ports than the default quota (500) allows.
            client.call("PUT", f"/quotas/{project_id}", {"quota": {"port": -1}})
            print("== networking bench ==")
            print(
                f"machine: {os.cpu_count()} CPUs, load average "
                f"{os.getloadavg()[0]:.2f} at start; stackbox answered in {start:.2f} s"
            )
            results = {}
            for clients, cidr in ((1, "10.60.0.0/16"), (8, "10.61.0.0/16")):
                network_id, _ = make_network(client, f"bench-{clients}", cidr)
                results[clients] = create_ports(port, auth, network_id, args.creates, clients)
                r = results[clients]
                print(
                    f"port create, {clients} client(s): {r['rate']:,.1f} ports/s, "
                    f"p50 {ms(r['p50'])}, p99 {ms(r['p99'])} ({r['ok']} ok, "
                    f"{r['errors']} errors)"
                )
            # Fill to --ports on one network, then time full listings.
            network_id, _ = make_network(client, "bench-list", "10.62.0.0/16")
            have = results[1]["ok"] + results[8]["ok"]
            create_ports(port, auth, network_id, max(args.ports - have, 0), 8)
            status, body, _ = client.call("GET", "/ports")
            total = len(body["ports"])
            timings = []
            for _ in range(args.lists):
                status, body, elapsed = client.call("GET", "/ports")
                assert status == 200
                timings.append(elapsed)
            print(
                f"GET /v2.0/ports with {total:,} ports: p50 {ms(statistics.median(timings))},"
                f" p99 {ms(percentile(timings, 99))}, min {ms(min(timings))}"
            )
            rounds = []
            for i in range(20):
                started = time.perf_counter()
                network_id, subnet_id = make_network(client, f"round-{i}", f"10.70.{i}.0/24")
                client.call("DELETE", f"/subnets/{subnet_id}")
                status, _, _ = client.call("DELETE", f"/networks/{network_id}")
                assert status == 204
                rounds.append(time.perf_counter() - started)
            print(f"network + subnet create and delete: p50 {ms(statistics.median(rounds))}")
            memory = procs.memory(server.pids())
            print(f"server RSS after the bench: {memory.rss_mb:.1f} MB")
            p50 = results[1]["p50"]
            listing = statistics.median(timings)
            print("targets (figures, not assertions):")
            print(
                f"  port create p50 at 1 client <= 10 ms        {ms(p50):>10}  "
                f"{'met' if p50 <= 0.010 else 'not met'}"
            )
            print(
                f"  GET /v2.0/ports with 1,000 ports <= 150 ms   {ms(listing):>10}  "
                f"{'met' if listing <= 0.150 else 'not met'}"
            )
            print(
                f"  anchor: upstream Neutron create_port median {UPSTREAM_CREATE_PORT_P50} s "
                f"(OPNFV Rally) = {UPSTREAM_CREATE_PORT_P50 / p50:,.0f}x stackbox's p50"
            )
        except Exception:
            print(server.log_tail(40), file=sys.stderr)
            raise
        finally:
            procs.stop(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
