"""Loading filters and weighers by built-in name, dotted path and entry point."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stackbox.compute.scheduler import filters, loader, select, weighers
from stackbox.compute.scheduler.host_state import HostState
from stackbox.compute.scheduler.request_spec import Flavor, RequestSpec

EXAMPLE = "tests.unit.scheduler_example_filter"


def hosts() -> list[HostState]:
    # "alpha1" has the most RAM, so the default weighers pick it.
    return [
        HostState("alpha1", vcpus=8, memory_mb=32768, local_gb=100),
        HostState("beta2", vcpus=8, memory_mb=8192, local_gb=100),
        HostState("beta4", vcpus=8, memory_mb=16384, local_gb=100),
    ]


def spec(**fields: Any) -> RequestSpec:
    return RequestSpec(Flavor(1, 512, 1), **fields)


def test_builtins_load_by_name_and_from_a_setting_string() -> None:
    loaded = loader.load_filters(" ComputeFilter, RamFilter,,JsonFilter ")
    assert [type(f) for f in loaded] == [
        filters.ComputeFilter,
        filters.RamFilter,
        filters.JsonFilter,
    ]
    assert isinstance(loader.load_weigher("CPUWeigher"), weighers.CPUWeigher)


def test_nova_dotted_paths_name_the_builtins() -> None:
    loaded = loader.load_filter("nova.scheduler.filters.compute_filter.ComputeFilter")
    assert isinstance(loaded, filters.ComputeFilter)


def test_a_custom_filter_from_a_dotted_path_changes_placement() -> None:
    plain = select.FilterScheduler()
    assert [
        h.host for h in plain.select(hosts(), spec(scheduler_hints={"host_prefix": "beta"}))
    ] == ["alpha1"]
    custom = select.FilterScheduler(
        enabled_filters=[*filters.DEFAULT_FILTERS, f"{EXAMPLE}.HostPrefixFilter"]
    )
    assert custom.filters[-1].name == "HostPrefixFilter"
    chosen = custom.select(hosts(), spec(scheduler_hints={"host_prefix": "beta"}))
    assert [h.host for h in chosen] == ["beta4"]
    with pytest.raises(select.NoValidHost, match="HostPrefixFilter eliminated 3 of 3 hosts"):
        custom.select(hosts(), spec(scheduler_hints={"host_prefix": "gamma"}))


def test_plain_classes_work_as_filter_and_weigher() -> None:
    scheduler = select.FilterScheduler(
        enabled_filters=f"ComputeFilter,{EXAMPLE}.EvenHostsFilter",
        weigher_classes=[f"{EXAMPLE}.LowestNameWeigher"],
        multipliers={"LowestNameWeigher": 3.0},
    )
    assert scheduler.weighers[0].multiplier == 3.0
    assert [h.host for h in scheduler.passing_hosts(hosts(), spec())] == ["beta2", "beta4"]
    with pytest.raises(select.NoValidHost, match="EvenHostsFilter eliminated 1 of 1 host"):
        scheduler.select(hosts()[:1], spec())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("NoSuchFilter", "unknown scheduler filter 'NoSuchFilter': not a built-in"),
        ("nosuchmodule.Filter", "cannot import 'nosuchmodule'"),
        (f"{EXAMPLE}.Missing", "has no 'Missing'"),
        (f"{EXAMPLE}.NOT_A_FILTER", "is not a class with a host_passes() method"),
        (f"{EXAMPLE}.LowestNameWeigher", "is not a class with a host_passes() method"),
        (f"{EXAMPLE}.NeedsArgumentFilter", "cannot be made without arguments"),
    ],
)
def test_unknown_or_unusable_filters_are_clear_errors(name: str, message: str) -> None:
    with pytest.raises(loader.LoadError) as caught:
        loader.load_filter(name)
    assert message in str(caught.value)


def test_an_unknown_weigher_is_a_clear_error() -> None:
    with pytest.raises(loader.LoadError, match="unknown scheduler weigher 'Heavy'"):
        select.FilterScheduler(weigher_classes="RAMWeigher,Heavy")


def test_entry_points_name_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real (if tiny) installed distribution, found on sys.path like any other.
    dist = tmp_path / "mysite_filters-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mysite-filters\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [stackbox.scheduler.filters]
            PrefixFilter = {EXAMPLE}:HostPrefixFilter
            [stackbox.scheduler.weighers]
            LowestName = {EXAMPLE}:LowestNameWeigher
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert str(tmp_path) in sys.path
    loaded = loader.load_filter("PrefixFilter")
    assert loaded.name == "HostPrefixFilter"
    weigher = loader.load_weigher("LowestName", {"LowestNameWeigher": 2.0})
    assert weigher.multiplier == 2.0
    scheduler = select.FilterScheduler(
        enabled_filters="ComputeFilter,PrefixFilter", weigher_classes="LowestName"
    )
    assert [
        h.host for h in scheduler.select(hosts(), spec(scheduler_hints={"host_prefix": "b"}))
    ] == ["beta2"]
