"""Closed-loop HTTP load: N connections, each sending its next request when the last returns.

Run as its own process (``python bench/httpload.py '<json spec>'``, one per
measurement) so the bench's own work never shares the client's GIL, and the
CPU it reports is the client's alone. Prints one JSON object.

The default client is ``http.client`` with one persistent HTTP/1.1 connection
per thread: on this kind of machine it costs about a third of httpx's CPU per
request, and the client must not be what limits a fast server. ``httpx`` is
there to show that difference (``--client httpx``).
"""

from __future__ import annotations

import http.client
import json
import math
import resource
import sys
import threading
import time
from typing import Any

import procs


class Connection:
    """One keep-alive connection; counts how often it had to (re)connect."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.method: str = spec["method"]
        self.path: str = spec["path"]
        self.headers: dict[str, str] = spec["headers"]
        self.body: bytes | None = spec["body"].encode() if spec.get("body") else None
        self.connects = 0
        self.client = spec.get("client", "http.client")
        if self.client == "httpx":
            import httpx

            self._httpx = httpx.Client(
                base_url=f"http://{spec['host']}:{spec['port']}",
                timeout=spec["timeout"],
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
        else:
            self._conn = http.client.HTTPConnection(
                spec["host"], spec["port"], timeout=spec["timeout"]
            )

    def send(self) -> int:
        if self.client == "httpx":
            return self._send_httpx()
        if self._conn.sock is None:
            self.connects += 1
        self._conn.request(self.method, self.path, body=self.body, headers=self.headers)
        response = self._conn.getresponse()
        response.read()
        return response.status

    def _send_httpx(self) -> int:
        def trace(event: str, info: dict[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                self.connects += 1

        response = self._httpx.request(
            self.method,
            self.path,
            content=self.body,
            headers=self.headers,
            extensions={"trace": trace},
        )
        return response.status_code

    def close(self) -> None:
        if self.client == "httpx":
            self._httpx.close()
        else:
            self._conn.close()


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class Run:
    """Shared state of one measurement: when to stop and what each thread saw."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.expect: int = spec["expect"]
        self.concurrency: int = spec["concurrency"]
        self.duration: float | None = spec.get("duration")
        self.budget: int | None = spec.get("requests")
        self.lock = threading.Lock()
        self.start = threading.Barrier(self.concurrency + 1)
        self.deadline = math.inf
        self.latencies: list[list[float]] = [[] for _ in range(self.concurrency)]
        self.errors = 0
        self.first_error = ""
        self.reconnects = 0
        self.warmup_failed = ""

    def take(self) -> bool:
        """May a thread send another request?"""
        if self.budget is None:
            return time.perf_counter() < self.deadline
        with self.lock:
            if self.budget <= 0:
                return False
            self.budget -= 1
            return True

    def failed(self, what: str) -> None:
        with self.lock:
            self.errors += 1
            self.first_error = self.first_error or what

    def worker(self, index: int) -> None:
        try:
            conn = Connection(self.spec)
            # Connect and warm the server's caches outside the measured window.
            for _ in range(self.spec.get("warmup", 1)):
                status = conn.send()
                if status != self.expect:
                    self.warmup_failed = f"warm-up answered {status}, wanted {self.expect}"
        except Exception as exc:
            self.warmup_failed = f"warm-up failed: {exc!r}"
            self.start.abort()
            return
        try:
            self.start.wait()
        except threading.BrokenBarrierError:
            return
        # The first connect of each connection is not a re-connect, warm-up or not.
        connected = max(conn.connects, 1)
        mine = self.latencies[index]
        while self.take():
            began = time.perf_counter()
            try:
                status = conn.send()
            except Exception as exc:  # a refused or reset request is a result too
                self.failed(repr(exc))
                conn.close()
                continue
            if status == self.expect:
                mine.append(time.perf_counter() - began)
            else:
                self.failed(f"HTTP {status}")
        conn.close()
        with self.lock:
            self.reconnects += conn.connects - connected


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    run = Run(spec)
    threads = [
        threading.Thread(target=run.worker, args=(i,), daemon=True) for i in range(run.concurrency)
    ]
    for thread in threads:
        thread.start()
    server_pids: list[int] = spec.get("server_pids", [])
    try:
        run.start.wait()
    except threading.BrokenBarrierError:
        return {"ok": 0, "errors": 1, "first_error": run.warmup_failed}
    began = time.perf_counter()
    cpu0, server0, busy0 = own_cpu(), procs.cpu_seconds(server_pids), procs.machine_busy_seconds()
    if run.duration is not None:
        run.deadline = began + run.duration
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    client_cpu, server_cpu = own_cpu() - cpu0, procs.cpu_seconds(server_pids) - server0
    # Whatever else ran on the machine meanwhile competed with both for the CPUs.
    others = max(0.0, procs.machine_busy_seconds() - busy0 - client_cpu - server_cpu)
    latencies = sorted(t for per_thread in run.latencies for t in per_thread)
    ok = len(latencies)
    return {
        "ok": ok,
        "errors": run.errors,
        "first_error": run.first_error or run.warmup_failed,
        "elapsed": elapsed,
        "rps": ok / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": sum(latencies) / ok * 1000 if ok else math.nan,
        "client_cpu_pct": 100 * client_cpu / elapsed if elapsed > 0 else 0.0,
        "client_cpu_us_per_req": 1e6 * client_cpu / ok if ok else math.nan,
        "server_cpu_pct": 100 * server_cpu / elapsed if elapsed > 0 else 0.0,
        "server_cpu_ms_per_req": 1e3 * server_cpu / ok if ok else math.nan,
        "others_cpu_pct": 100 * others / elapsed if elapsed > 0 else 0.0,
        "reconnects": run.reconnects,
    }


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    print(json.dumps(measure(spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
