"""Choosing hosts: weighing, spreading a request, server groups, forced hosts, the
``chance`` driver and NoValidHost's reasons."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stackbox import config
from stackbox.compute.scheduler import select, weighers
from stackbox.compute.scheduler.host_state import Aggregate, HostState
from stackbox.compute.scheduler.request_spec import Flavor, InstanceGroup, RequestSpec


def host(name: str, **fields: Any) -> HostState:
    base: dict[str, Any] = {"vcpus": 8, "memory_mb": 8192, "local_gb": 100}
    base.update(fields)
    return HostState(name, **base)


def spec(vcpus: int = 1, memory_mb: int = 1024, root_gb: int = 1, **fields: Any) -> RequestSpec:
    return RequestSpec(Flavor(vcpus, memory_mb, root_gb), **fields)


def names(hosts: list[HostState]) -> list[str]:
    return [h.host for h in hosts]


# --- weighing ------------------------------------------------------------------------------


def test_normalize_as_nova() -> None:
    assert weighers.normalize([]) == []
    assert weighers.normalize([5, 5, 5]) == [0.0, 0.0, 0.0]
    assert weighers.normalize([2, 4, 6]) == [0.0, 0.5, 1.0]
    assert weighers.normalize([2, 4, 6], minval=0) == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_ram_weigher_spreads_and_a_negative_multiplier_stacks() -> None:
    hosts = [host("small", memory_mb_used=6144), host("big"), host("mid", memory_mb_used=2048)]
    ram_only = select.FilterScheduler(weigher_classes=["RAMWeigher"])
    assert names(ram_only.passing_hosts(hosts, spec())) == ["big", "mid", "small"]
    stacking = select.FilterScheduler(
        weigher_classes=["RAMWeigher"], multipliers={"ram_weight_multiplier": -1.0}
    )
    assert names(stacking.select(hosts, spec())) == ["small"]


def test_cpu_and_disk_weighers() -> None:
    hosts = [host("busy", vcpus_used=20, local_gb_used=10), host("idle", local_gb_used=90)]
    cpu = select.FilterScheduler(weigher_classes="CPUWeigher")
    disk = select.FilterScheduler(weigher_classes="DiskWeigher")
    assert names(cpu.passing_hosts(hosts, spec())) == ["idle", "busy"]
    assert names(disk.passing_hosts(hosts, spec())) == ["busy", "idle"]


def test_multipliers_decide_between_weighers() -> None:
    # "ram" has more RAM, "cpu" more vCPUs: the heavier multiplier wins.
    hosts = [host("ram", memory_mb=16384, vcpus_used=16), host("cpu", memory_mb=8192)]
    prefer_ram = select.FilterScheduler(
        weigher_classes="RAMWeigher,CPUWeigher", multipliers={"RAMWeigher": 2.0}
    )
    prefer_cpu = select.FilterScheduler(
        weigher_classes="RAMWeigher,CPUWeigher", multipliers={"cpu_weight_multiplier": 2.0}
    )
    assert names(prefer_ram.select(hosts, spec())) == ["ram"]
    assert names(prefer_cpu.select(hosts, spec())) == ["cpu"]


def test_aggregate_metadata_overrides_a_multiplier() -> None:
    stacked = Aggregate("pack", {"ram_weight_multiplier": "-1.0"})
    hosts = [host("big"), host("small", memory_mb_used=4096, aggregates=[stacked])]
    weighed = weighers.weigh_hosts([weighers.RAMWeigher()], hosts, spec())
    # "small" is normalized to 0.5 and multiplied by -1; "big" gets 1 * 1.0.
    assert [(round(w, 2), h.host) for w, h in weighed] == [(1.0, "big"), (-0.5, "small")]


def test_soft_affinity_weighers_prefer_and_avoid_the_group() -> None:
    hosts = [host("h1"), host("h2"), host("h3")]
    scheduler = select.FilterScheduler()
    together = InstanceGroup("soft-affinity", hosts={"h2": 2})
    apart = InstanceGroup("soft-anti-affinity", hosts={"h1": 1, "h2": 1})
    assert names(scheduler.select(hosts, spec(instance_group=together))) == ["h2"]
    assert names(scheduler.select(hosts, spec(instance_group=apart))) == ["h3"]


# --- several servers in one request ---------------------------------------------------------


def test_multi_create_spreads_over_equal_hosts() -> None:
    hosts = [host(f"h{i}") for i in range(3)]
    chosen = select.FilterScheduler().select(
        hosts, spec(num_instances=6), [f"s{i}" for i in range(6)]
    )
    assert sorted(names(chosen)) == ["h0", "h0", "h1", "h1", "h2", "h2"]
    assert all(h.num_instances == 2 and h.memory_mb_used == 2048 for h in hosts)
    assert set().union(*(h.instance_ids for h in hosts)) == {f"s{i}" for i in range(6)}


def test_multi_create_stops_at_capacity_and_says_so() -> None:
    hosts = [host("h1", memory_mb=2048), host("h2", memory_mb=2048)]
    with pytest.raises(select.NoValidHost) as caught:
        select.FilterScheduler().select(hosts, spec(memory_mb=1024, num_instances=5))
    error = caught.value
    assert (error.placed, error.requested) == (4, 5)
    assert str(error).startswith("No valid host was found. There are not enough hosts available")
    assert "for server 5 of 5" in str(error)
    assert "RamFilter eliminated 2 of 2 hosts" in str(error)


def test_no_valid_host_names_the_filter_and_counts() -> None:
    hosts = [host("h1", memory_mb=512), host("h2", memory_mb=512), host("h3", service_up=False)]
    with pytest.raises(select.NoValidHost) as caught:
        select.FilterScheduler().select(hosts, spec(memory_mb=1024))
    message = str(caught.value)
    assert "3 hosts considered" in message
    assert "ComputeFilter eliminated 1 of 3 hosts; RamFilter eliminated 2 of 2 hosts" in message
    assert [r.name for r in caught.value.filter_results][:3] == [
        "ComputeFilter",
        "AvailabilityZoneFilter",
        "RamFilter",
    ]


def test_no_hosts_at_all() -> None:
    with pytest.raises(select.NoValidHost, match="no compute host is registered"):
        select.FilterScheduler().select([], spec())


# --- server groups --------------------------------------------------------------------------


def test_anti_affinity_spreads_and_the_n_plus_first_server_fails() -> None:
    hosts = [host(f"h{i}") for i in range(3)]
    group = InstanceGroup("anti-affinity", id="g1")
    scheduler = select.FilterScheduler()
    chosen = scheduler.select(hosts, spec(num_instances=3, instance_group=group))
    assert sorted(names(chosen)) == ["h0", "h1", "h2"]
    assert group.hosts == {"h0": 1, "h1": 1, "h2": 1}
    with pytest.raises(select.NoValidHost) as caught:
        scheduler.select(hosts, spec(instance_group=group))
    assert "ServerGroupAntiAffinityFilter eliminated 3 of 3 hosts" in str(caught.value)


def test_anti_affinity_in_one_request_beyond_the_hosts_fails() -> None:
    hosts = [host(f"h{i}") for i in range(3)]
    group = InstanceGroup("anti-affinity")
    with pytest.raises(select.NoValidHost) as caught:
        select.FilterScheduler().select(hosts, spec(num_instances=4, instance_group=group))
    assert caught.value.placed == 3
    assert "for server 4 of 4: 3 hosts considered" in str(caught.value)
    assert "ServerGroupAntiAffinityFilter eliminated 3 of 3 hosts" in str(caught.value)


def test_max_server_per_host_allows_that_many_per_host() -> None:
    hosts = [host("h1"), host("h2")]
    group = InstanceGroup("anti-affinity", rules={"max_server_per_host": 2})
    chosen = select.FilterScheduler().select(hosts, spec(num_instances=4, instance_group=group))
    assert sorted(names(chosen)) == ["h1", "h1", "h2", "h2"]
    with pytest.raises(select.NoValidHost, match="ServerGroupAntiAffinityFilter eliminated 2 of 2"):
        select.FilterScheduler().select(hosts, spec(instance_group=group))


def test_affinity_packs_one_request_onto_one_host() -> None:
    hosts = [host(f"h{i}") for i in range(4)]
    group = InstanceGroup("affinity")
    chosen = select.FilterScheduler().select(hosts, spec(num_instances=3, instance_group=group))
    assert len(set(names(chosen))) == 1
    # Later servers of the group follow.
    again = select.FilterScheduler().select(hosts, spec(instance_group=group))
    assert names(again) == names(chosen)[:1]


# --- forced, ignored and requested hosts ----------------------------------------------------


def test_zone_host_forces_the_host_past_policy_filters() -> None:
    hosts = [host("big", memory_mb=65536), host("small", availability_zone="other")]
    scheduler = select.FilterScheduler()
    forced = spec(availability_zone="nova:small")
    assert forced.availability_zone == "nova"
    # The zone filter would refuse "small"; a forced host skips it, as in Nova.
    assert names(scheduler.select(hosts, forced)) == ["small"]
    assert names(scheduler.select(hosts, spec(availability_zone="nova::big"))) == ["big"]


def test_a_forced_host_still_needs_room_and_a_live_service() -> None:
    hosts = [
        host("big", memory_mb=65536),
        host("tiny", memory_mb=512),
        host("off", service_disabled=True),
    ]
    scheduler = select.FilterScheduler()
    with pytest.raises(select.NoValidHost, match="RamFilter eliminated 1 of 1 host"):
        scheduler.select(hosts, spec(availability_zone="nova:tiny"))
    with pytest.raises(select.NoValidHost, match="ComputeFilter eliminated 1 of 1 host"):
        scheduler.select(hosts, spec(availability_zone="nova:off"))
    with pytest.raises(select.NoValidHost, match="forced host 'ghost'"):
        scheduler.select(hosts, spec(availability_zone="nova:ghost"))


def test_ignored_and_requested_hosts() -> None:
    hosts = [host("big", memory_mb=65536), host("small"), host("other", memory_mb=4096)]
    scheduler = select.FilterScheduler()
    assert names(scheduler.select(hosts, spec(ignore_hosts=["BIG"]))) == ["small"]
    assert names(scheduler.select(hosts, spec(requested_host="other"))) == ["other"]
    # A requested host (2.74) still goes through the filters.
    with pytest.raises(select.NoValidHost, match="RamFilter"):
        scheduler.select(hosts, spec(requested_host="other", memory_mb=8192))
    with pytest.raises(select.NoValidHost, match="requested destination 'nowhere'"):
        scheduler.select(hosts, spec(requested_host="nowhere"))


def test_zone_filter_chooses_within_the_zone() -> None:
    zone2 = Aggregate("az2-hosts", {"availability_zone": "az2"})
    hosts = [host("big", memory_mb=65536), host("z2", aggregates=[zone2])]
    assert names(select.FilterScheduler().select(hosts, spec(availability_zone="az2"))) == ["z2"]


def test_hints_steer_a_second_request() -> None:
    hosts = [host("h1"), host("h2", memory_mb=16384)]
    scheduler = select.FilterScheduler()
    first = scheduler.select(hosts, spec(), ["srv-a"])
    assert names(first) == ["h2"]
    near = spec(scheduler_hints={"same_host": ["srv-a"]}, memory_mb=8192)
    away = spec(scheduler_hints={"different_host": "srv-a"})
    assert names(scheduler.select(hosts, near)) == ["h2"]
    assert names(scheduler.select(hosts, away)) == ["h1"]


def test_json_query_hint_selects() -> None:
    hosts = [host("h1", hypervisor_type="qemu"), host("h2", memory_mb=16384)]
    query = spec(scheduler_hints={"query": '["=", "$hypervisor_type", "qemu"]'})
    assert names(select.FilterScheduler().select(hosts, query)) == ["h1"]


# --- drivers and settings -------------------------------------------------------------------


def test_chance_driver_picks_randomly_among_live_hosts_with_room() -> None:
    def cloud() -> list[HostState]:
        live = [host(f"h{i}") for i in range(4)]
        return [*live, host("down", service_up=False), host("full", memory_mb=512)]

    scheduler = select.FilterScheduler(driver="chance", rng=random.Random(7))
    picked = {scheduler.select(cloud(), spec())[0].host for _ in range(60)}
    assert picked == {"h0", "h1", "h2", "h3"}
    assert [f.name for f in scheduler.filters] == [
        "ComputeFilter",
        "AvailabilityZoneFilter",
        "RamFilter",
        "CoreFilter",
        "DiskFilter",
    ]


def test_host_subset_size_chooses_among_the_best() -> None:
    def cloud() -> list[HostState]:
        return [host(f"h{i}", memory_mb=8192 + i * 1024) for i in range(6)]

    scheduler = select.FilterScheduler(host_subset_size=3, rng=random.Random(1))
    picked = {scheduler.select(cloud(), spec())[0].host for _ in range(60)}
    assert picked == {"h5", "h4", "h3"}


def test_from_settings_and_bad_driver() -> None:
    settings = config.ComputeSettings()
    scheduler = select.FilterScheduler.from_settings(settings)
    assert [f.name for f in scheduler.filters] == [
        n.strip() for n in settings.enabled_filters.split(",")
    ]
    assert [w.name for w in scheduler.weighers] == settings.weighers.split(",")
    settings.ram_weight_multiplier = -2.0
    ram = next(
        w for w in select.FilterScheduler.from_settings(settings).weighers if w.name == "RAMWeigher"
    )
    assert ram.multiplier == -2.0
    with pytest.raises(ValueError, match="unknown scheduler driver 'round-robin'"):
        select.FilterScheduler(driver="round-robin")


# --- a large cloud --------------------------------------------------------------------------


def test_a_decision_over_a_thousand_hosts() -> None:
    rng = random.Random(42)
    hosts = [
        host(
            f"c{i:04d}",
            vcpus=64,
            vcpus_used=rng.randrange(0, 200),
            memory_mb=262144,
            memory_mb_used=rng.randrange(0, 250000),
            local_gb=2000,
            local_gb_used=rng.randrange(0, 1900),
            service_up=i % 50 != 0,
            aggregates=[Aggregate(f"az{i % 3}", {"availability_zone": f"az{i % 3}"})],
        )
        for i in range(1000)
    ]
    wanted = spec(vcpus=4, memory_mb=8192, root_gb=40, availability_zone="az1", num_instances=10)
    scheduler = select.FilterScheduler()
    expected_first = scheduler.passing_hosts(hosts, wanted)[0]
    before = {h.host: h.memory_mb_used for h in hosts}
    chosen = scheduler.select(hosts, wanted)
    assert chosen[0] is expected_first
    assert len(chosen) == 10
    assert all(h.service_up and h.availability_zones() == {"az1"} for h in chosen)
    # Every pick was charged to its host, so the next one saw it.
    for picked in set(chosen):
        assert picked.memory_mb_used - before[picked.host] == 8192 * chosen.count(picked)
