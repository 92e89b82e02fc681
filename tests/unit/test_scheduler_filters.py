"""The scheduler's host filters, each passing and failing, and the data they read."""

from __future__ import annotations

from typing import Any

import pytest

from stackbox.compute.scheduler import filters, json_query, request_spec, spec_ops
from stackbox.compute.scheduler.host_state import Aggregate, HostState
from stackbox.compute.scheduler.request_spec import Flavor, InstanceGroup, RequestSpec


def host(name: str = "h1", **fields: Any) -> HostState:
    base: dict[str, Any] = {"vcpus": 8, "memory_mb": 8192, "local_gb": 100}
    base.update(fields)
    return HostState(name, **base)


def spec(vcpus: int = 1, memory_mb: int = 512, root_gb: int = 1, **fields: Any) -> RequestSpec:
    flavor_fields = {
        key: fields.pop(key) for key in ("ephemeral_gb", "swap", "extra_specs") if key in fields
    }
    return RequestSpec(Flavor(vcpus, memory_mb, root_gb, **flavor_fields), **fields)


# --- host state and request spec -----------------------------------------------------------


def test_host_state_reports_nova_names_and_consumes() -> None:
    h = host(vcpus=4, vcpus_used=1, memory_mb=4096, memory_mb_used=1024, local_gb=40)
    assert (h.nodename, h.vcpus_total, h.free_ram_mb, h.free_disk_mb) == ("h1", 4, 3072, 40960)
    h.consume(spec(vcpus=2, memory_mb=1024, root_gb=10, ephemeral_gb=5, swap=1), "srv-1")
    assert (h.vcpus_used, h.memory_mb_used, h.local_gb_used) == (3, 2048, 16)
    assert h.num_instances == 1 and h.instance_ids == {"srv-1"}
    assert h.usable_vcpus == 4 * 4.0 - 3


def test_flavor_disk_rounds_swap_up_to_gigabytes() -> None:
    assert Flavor(1, 64, root_gb=1, ephemeral_gb=2, swap=1).disk_gb == 4
    assert Flavor(1, 64, root_gb=1, swap=2048).disk_gb == 3
    assert Flavor(1, 64).disk_gb == 0


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, (None, None, None)),
        ("nova", ("nova", None, None)),
        ("nova:c1", ("nova", "c1", None)),
        ("nova::node1", ("nova", None, "node1")),
        ("nova:c1:node1", ("nova", "c1", "node1")),
        (":c1", (None, "c1", None)),
    ],
)
def test_parse_availability_zone(value: str | None, parsed: tuple[Any, ...]) -> None:
    assert request_spec.parse_availability_zone(value) == parsed


def test_parse_availability_zone_refuses_three_colons() -> None:
    with pytest.raises(ValueError, match="Unable to parse availability_zone"):
        request_spec.parse_availability_zone("a:b:c:d")


def test_request_spec_splits_forced_host_out_of_the_zone() -> None:
    s = spec(availability_zone="az1:c7")
    assert (s.availability_zone, s.force_hosts, s.forced) == ("az1", ["c7"], True)
    s = spec(availability_zone="az1::n3")
    assert (s.availability_zone, s.force_nodes) == ("az1", ["n3"])
    assert not spec(availability_zone="az1").forced


def test_instance_group_checks_policy_and_rules() -> None:
    assert (
        InstanceGroup("anti-affinity", rules={"max_server_per_host": "3"}).max_server_per_host == 3
    )
    assert InstanceGroup("affinity").max_server_per_host == 1
    with pytest.raises(ValueError):
        InstanceGroup("sideways")
    with pytest.raises(ValueError):
        InstanceGroup("anti-affinity", rules={"max_server_per_host": 0})


def test_hints_unwrap_single_item_lists() -> None:
    s = spec(scheduler_hints={"same_host": ["a"], "different_host": "b", "group": ["g1"]})
    assert s.hint("group") == "g1"
    assert s.hint_values("same_host") == ["a"] and s.hint_values("different_host") == ["b"]
    assert s.hint_values("query") == []


# --- service, zone, resources --------------------------------------------------------------


def test_compute_filter() -> None:
    f = filters.ComputeFilter()
    assert f.host_passes(host(), spec())
    assert not f.host_passes(host(service_up=False), spec())
    assert not f.host_passes(host(service_disabled=True, service_disabled_reason="maint"), spec())


def test_availability_zone_filter() -> None:
    f = filters.AvailabilityZoneFilter()
    assert f.host_passes(host(availability_zone="az2"), spec())
    assert f.host_passes(host(availability_zone="az2"), spec(availability_zone="az2"))
    assert not f.host_passes(host(), spec(availability_zone="az2"))
    in_az3 = host(aggregates=[Aggregate("rack3", {"availability_zone": "az3"})])
    assert f.host_passes(in_az3, spec(availability_zone="az3"))
    assert not f.host_passes(in_az3, spec(availability_zone="nova"))


def test_ram_filter_honours_the_allocation_ratio() -> None:
    f = filters.RamFilter()
    assert f.host_passes(host(memory_mb=2048, memory_mb_used=1024), spec(memory_mb=1024))
    assert not f.host_passes(host(memory_mb=2048, memory_mb_used=1536), spec(memory_mb=1024))
    overcommit = host(memory_mb=2048, memory_mb_used=1536, ram_allocation_ratio=1.5)
    assert f.host_passes(overcommit, spec(memory_mb=1024))
    # Never more than the host has physically, whatever the ratio.
    assert not f.host_passes(host(memory_mb=1024, ram_allocation_ratio=4.0), spec(memory_mb=2048))


def test_core_filter_honours_the_allocation_ratio() -> None:
    f = filters.CoreFilter()
    assert f.host_passes(host(vcpus=2, vcpus_used=7), spec(vcpus=1))
    assert not f.host_passes(host(vcpus=2, vcpus_used=8), spec(vcpus=1))
    assert not f.host_passes(host(vcpus=2, vcpus_used=7, cpu_allocation_ratio=1.0), spec(vcpus=1))
    assert not f.host_passes(host(vcpus=2), spec(vcpus=4))
    assert not f.host_passes(host(vcpus=0), spec(vcpus=1))


def test_disk_filter_counts_root_ephemeral_and_swap() -> None:
    f = filters.DiskFilter()
    assert f.host_passes(
        host(local_gb=10, local_gb_used=6), spec(root_gb=2, ephemeral_gb=1, swap=512)
    )
    assert not f.host_passes(
        host(local_gb=10, local_gb_used=7), spec(root_gb=2, ephemeral_gb=1, swap=512)
    )
    assert f.host_passes(host(local_gb=10, local_gb_used=10, disk_allocation_ratio=2.0), spec())


def test_num_instances_filter() -> None:
    f = filters.NumInstancesFilter(max_instances_per_host=2)
    assert f.host_passes(host(num_instances=1), spec())
    assert not f.host_passes(host(num_instances=2), spec())


# --- server groups and hints ---------------------------------------------------------------


def test_affinity_filter() -> None:
    f = filters.ServerGroupAffinityFilter()
    empty = InstanceGroup("affinity")
    assert f.host_passes(host("h1"), spec(instance_group=empty))
    group = InstanceGroup("affinity", hosts={"h2": 1})
    assert f.host_passes(host("h2"), spec(instance_group=group))
    assert not f.host_passes(host("h1"), spec(instance_group=group))
    anti = InstanceGroup("anti-affinity", hosts={"h2": 1})
    assert f.host_passes(host("h1"), spec(instance_group=anti))


def test_anti_affinity_filter_honours_max_server_per_host() -> None:
    f = filters.ServerGroupAntiAffinityFilter()
    group = InstanceGroup("anti-affinity", hosts={"h1": 1})
    assert not f.host_passes(host("h1"), spec(instance_group=group))
    assert f.host_passes(host("h2"), spec(instance_group=group))
    two = InstanceGroup("anti-affinity", rules={"max_server_per_host": 2}, hosts={"h1": 1, "h2": 2})
    assert f.host_passes(host("h1"), spec(instance_group=two))
    assert not f.host_passes(host("h2"), spec(instance_group=two))
    soft = InstanceGroup("soft-anti-affinity", hosts={"h1": 5})
    assert f.host_passes(host("h1"), spec(instance_group=soft))


def test_anti_affinity_filter_lets_a_moved_server_stay() -> None:
    f = filters.ServerGroupAntiAffinityFilter()
    group = InstanceGroup("anti-affinity", members={"srv"}, hosts={"h1": 1})
    moving = spec(instance_group=group, instance_id="srv")
    assert f.host_passes(host("h1", instance_ids={"srv"}), moving)
    assert not f.host_passes(host("h1", instance_ids={"other"}), moving)


def test_same_and_different_host_filters() -> None:
    with_a = host(instance_ids={"a", "b"})
    empty = host("h2")
    same, different = filters.SameHostFilter(), filters.DifferentHostFilter()
    assert same.host_passes(empty, spec())
    assert same.host_passes(with_a, spec(scheduler_hints={"same_host": "a"}))
    assert same.host_passes(with_a, spec(scheduler_hints={"same_host": ["x", "b"]}))
    assert not same.host_passes(empty, spec(scheduler_hints={"same_host": ["a"]}))
    assert different.host_passes(empty, spec(scheduler_hints={"different_host": ["a"]}))
    assert not different.host_passes(with_a, spec(scheduler_hints={"different_host": "a"}))


# --- JsonFilter ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "passes"),
    [
        ('[">=", "$free_ram_mb", 4096]', True),
        ('[">=", "$free_ram_mb", 8192]', False),
        ('["and", [">=", "$free_ram_mb", 1024], ["<", "$vcpus_used", 4]]', True),
        ('["and", [">=", "$free_ram_mb", 1024], [">", "$vcpus_used", 4]]', False),
        ('["or", ["=", "$hypervisor_type", "qemu"], ["=", "$host", "h1"]]', True),
        ('["in", "$hypervisor_type", "qemu", "kvm"]', False),
        ('["in", "$hypervisor_type", "fake", "kvm"]', True),
        ('["not", ["=", "$host", "h1"]]', False),
        ('["and", ["not", ["=", "$host", "h1"]]]', False),
        ('["and", ["not", ["=", "$host", "h9"]], [">", "$total_usable_ram_mb", 0]]', True),
        ('["=", "$stats.rack", "r2"]', True),
        ('["=", "$stats.missing", "r2"]', False),
        ('["<=", "$free_disk_mb", 102400, 204800]', True),
        ('["=", "$no_such_attribute", 1]', False),
        ('[">", "$host", 3]', False),
        ('["=", "$consume", "$consume"]', False),
        ("[]", True),
    ],
)
def test_json_filter_queries(query: str, passes: bool) -> None:
    h = host(memory_mb=8192, memory_mb_used=2048, vcpus_used=2, stats={"rack": "r2"})
    assert filters.JsonFilter().host_passes(h, spec(scheduler_hints={"query": query})) is passes


def test_json_filter_accepts_a_parsed_query_and_no_query() -> None:
    f = filters.JsonFilter()
    assert f.host_passes(host(), spec(scheduler_hints={"query": ["=", "$host", "h1"]}))
    assert not f.host_passes(host(), spec(scheduler_hints={"query": ["=", "$host", "h2"]}))
    assert f.host_passes(host(), spec())


@pytest.mark.parametrize("bad", ["[>=", '{"a": 1}', '["like", "$host", "h"]', '["and", ["~", 1]]'])
def test_malformed_queries_are_refused_and_pass_no_host(bad: str) -> None:
    with pytest.raises(json_query.InvalidQuery):
        json_query.parse(bad)
    assert not filters.JsonFilter().host_passes(host(), spec(scheduler_hints={"query": bad}))


# --- image properties ----------------------------------------------------------------------

QEMU_HOST: dict[str, Any] = {
    "supported_instances": [["x86_64", "qemu", "hvm"], ["i686", "qemu", "hvm"]],
    "hypervisor_type": "qemu",
    "hypervisor_version": 8002000,
}


@pytest.mark.parametrize(
    ("props", "passes"),
    [
        ({}, True),
        ({"hw_architecture": "x86_64"}, True),
        ({"architecture": "amd64"}, True),
        ({"hw_architecture": "i386", "img_hv_type": "QEMU"}, True),
        ({"hw_architecture": "aarch64"}, False),
        ({"img_hv_type": "kvm"}, False),
        ({"hypervisor_type": "kvm"}, False),
        ({"hw_vm_mode": "hvm"}, True),
        ({"vm_mode": "xen"}, False),
        ({"img_hv_type": "qemu", "img_hv_requested_version": ">=8.0,<9"}, True),
        ({"img_hv_type": "qemu", "img_hv_requested_version": ">=9.0"}, False),
        ({"img_hv_type": "qemu", "img_hv_requested_version": "not a predicate"}, False),
        # A version alone, with no arch/type/mode, is not checked (as in Nova).
        ({"img_hv_requested_version": ">=9.0"}, True),
    ],
)
def test_image_properties_filter(props: dict[str, str], passes: bool) -> None:
    h = host(**QEMU_HOST)
    assert filters.ImagePropertiesFilter().host_passes(h, spec(image_properties=props)) is passes


def test_image_properties_filter_needs_advertised_instances_and_default_arch() -> None:
    assert not filters.ImagePropertiesFilter().host_passes(
        host(), spec(image_properties={"hw_architecture": "x86_64"})
    )
    arm_default = filters.ImagePropertiesFilter(default_architecture="aarch64")
    assert not arm_default.host_passes(host(**QEMU_HOST), spec())
    assert filters.ImagePropertiesFilter(default_architecture="x86_64").host_passes(
        host(**QEMU_HOST), spec()
    )


# --- aggregates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "requirement", "matches"),
    [
        ("ssd", "ssd", True),
        ("ssd", "hdd", False),
        ("4", "= 2", True),
        ("1", "= 2", False),
        ("2", "== 2.0", True),
        ("3", "!= 2", True),
        ("2", ">= 2", True),
        ("3", "<= 2", False),
        ("abc", "s== abc", True),
        ("abc", "s!= abc", False),
        ("abc", "s< abd", True),
        ("abc", "s>= abd", False),
        ("gpu,fpga", "<in> fpga", True),
        ("gpu", "<in> fpga", False),
        ("avx avx2 sse", "<all-in> avx2 sse", True),
        ("avx sse", "<all-in> avx2 sse", False),
        ("b", "<or> a <or> b <or> c", True),
        ("d", "<or> a <or> b <or> c", False),
        ("fast", ">= 2", False),
        ("x", "s==", False),
        (None, "s== x", False),
    ],
)
def test_extra_spec_operators(value: str | None, requirement: str, matches: bool) -> None:
    assert spec_ops.match(value, requirement) is matches


def test_aggregate_instance_extra_specs_filter() -> None:
    f = filters.AggregateInstanceExtraSpecsFilter()
    fast = host(aggregates=[Aggregate("fast", {"disk": "ssd, nvme", "cores": "32"})])
    plain = host("h2", aggregates=[Aggregate("plain", {"disk": "hdd"})])
    assert f.host_passes(plain, spec())
    scoped = spec(extra_specs={"aggregate_instance_extra_specs:disk": "nvme"})
    assert f.host_passes(fast, scoped) and not f.host_passes(plain, scoped)
    unscoped = spec(extra_specs={"cores": ">= 16"})
    assert f.host_passes(fast, unscoped) and not f.host_passes(plain, unscoped)
    other_scope = spec(extra_specs={"hw:cpu_policy": "dedicated", "quota:cpu_shares": "10"})
    assert f.host_passes(plain, other_scope)
    assert not f.host_passes(host("h3"), spec(extra_specs={"disk": "ssd"}))
    either = spec(extra_specs={"aggregate_instance_extra_specs:disk": "<or> hdd <or> tape"})
    assert f.host_passes(plain, either) and not f.host_passes(fast, either)


def test_aggregate_multi_tenancy_isolation() -> None:
    f = filters.AggregateMultiTenancyIsolation()
    private = host(aggregates=[Aggregate("p", {"filter_tenant_id": "p1,p2", "x": "y"})])
    assert f.host_passes(private, spec(project_id="p2"))
    assert not f.host_passes(private, spec(project_id="p3"))
    assert f.host_passes(host(aggregates=[Aggregate("open", {"x": "y"})]), spec(project_id="p3"))
    assert f.host_passes(host(), spec(project_id="p3"))
