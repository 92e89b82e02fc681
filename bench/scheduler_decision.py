"""Scheduler decision time with 1,000 fake hosts (the default filters and weighers).

Times ``FilterScheduler.select`` alone: the host states are built before each timed
call (the scheduler consumes them), as the controller builds them from its rows.
Prints p50/p95 for one server (all hosts, then one zone of three), a 10-server
request, and a 10-server anti-affinity request. No assertions; to be folded into bench/compute.py.

    .venv/bin/python bench/scheduler_decision.py [--hosts 1000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from stackbox.compute.scheduler import select
from stackbox.compute.scheduler.host_state import Aggregate, HostState
from stackbox.compute.scheduler.request_spec import Flavor, InstanceGroup, RequestSpec


def cloud(count: int, seed: int) -> list[HostState]:
    rng = random.Random(seed)
    zones = [Aggregate(f"az{i}", {"availability_zone": f"az{i}"}) for i in range(3)]
    return [
        HostState(
            f"compute{i:05d}",
            vcpus=64,
            vcpus_used=rng.randrange(0, 200),
            memory_mb=262144,
            memory_mb_used=rng.randrange(0, 250000),
            local_gb=2000,
            local_gb_used=rng.randrange(0, 1900),
            num_instances=rng.randrange(0, 40),
            instance_ids={f"srv-{i}-{n}" for n in range(3)},
            service_up=i % 100 != 0,
            aggregates=[zones[i % 3]],
            availability_zone=f"az{i % 3}",
            supported_instances=[("x86_64", "fake", "hvm")],
        )
        for i in range(count)
    ]


def timed(
    scheduler: select.FilterScheduler,
    hosts: int,
    rounds: int,
    make_spec: Callable[[], RequestSpec],
) -> list[float]:
    times = []
    for round_ in range(rounds):
        states = cloud(hosts, round_)
        spec = make_spec()
        start = time.perf_counter()
        scheduler.select(states, spec)
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(hosts: int, rounds: int = 100) -> tuple[float, float]:
    """p50 and p95 (seconds) of one server's decision over ``hosts`` hosts (bench/compute.py)."""
    flavor = Flavor(vcpus=2, memory_mb=4096, root_gb=20)
    times = timed(
        select.FilterScheduler(),
        hosts,
        rounds,
        lambda: RequestSpec(flavor, {"hw_architecture": "x86_64"}),
    )
    return percentile(times, 0.5), percentile(times, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    scheduler = select.FilterScheduler()
    flavor = Flavor(vcpus=2, memory_mb=4096, root_gb=20)
    image = {"hw_architecture": "x86_64"}
    cases: dict[str, Callable[[], RequestSpec]] = {
        "1 server": lambda: RequestSpec(flavor, image),
        "1 server in a zone (1/3)": lambda: RequestSpec(flavor, image, availability_zone="az1"),
        "10 servers": lambda: RequestSpec(flavor, image, num_instances=10),
        "10 servers, anti-affinity": lambda: RequestSpec(
            flavor, image, num_instances=10, instance_group=InstanceGroup("anti-affinity")
        ),
    }
    print(f"scheduler decision, {args.hosts} hosts, {args.rounds} rounds, default filters+weighers")
    for label, make_spec in cases.items():
        times = timed(scheduler, args.hosts, args.rounds, make_spec)
        print(
            f"  {label:28s} p50 {percentile(times, 0.5) * 1000:7.2f} ms"
            f"   p95 {percentile(times, 0.95) * 1000:7.2f} ms"
            f"   mean {statistics.fmean(times) * 1000:7.2f} ms"
        )


if __name__ == "__main__":
    main()
