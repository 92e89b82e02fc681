"""Which tests a run must contain: gate, full, or a regex; minus exclude.txt.

The wanted set is computed here, from Tempest's own test list, and handed to Tempest as
an exact load list, so afterwards every wanted test can be checked off.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tempestgate import paths
from tempestgate.services import Service

ATTRS = re.compile(r"\[.*\]$")


def bare(test_id: str) -> str:
    """A test id without its [id-...,smoke] attributes."""
    return ATTRS.sub("", test_id)


@dataclass(frozen=True)
class Waiting:
    """An interop test that may be skipped, for one reason, until stackbox has something."""

    skip: str  # what Tempest's skip reason must contain
    waits_for: str


@dataclass
class Selection:
    tests: list[str]  # full ids as Tempest lists them
    must_run: set[str]  # bare ids that must run and not be skipped (interop lines)
    excluded: dict[str, str] = field(default_factory=dict)  # full id -> reason
    empty_patterns: list[str] = field(default_factory=list)  # patterns matching nothing
    # must_run ids that interop-waiting.toml lets be skipped (for the reason it gives)
    waiting: dict[str, Waiting] = field(default_factory=dict)


def interop_lines(service: str) -> list[str]:
    prefix = f"tempest.api.{service}."
    lines = paths.INTEROP.read_text().splitlines()
    return [bare(line.strip()) for line in lines if line.strip().startswith(prefix)]


def waiting_lines() -> dict[str, Waiting]:
    """interop-waiting.toml: bare interop id -> what it waits for."""
    interop = {bare(line.strip()) for line in paths.INTEROP.read_text().splitlines()}
    found: dict[str, Waiting] = {}
    for test_id, spec in tomllib.loads(paths.INTEROP_WAITING.read_text()).items():
        if test_id not in interop:
            raise ValueError(f"{paths.INTEROP_WAITING}: {test_id} is not in interop-target.txt")
        if not spec.get("skip") or not spec.get("waits_for"):
            raise ValueError(f"{paths.INTEROP_WAITING}: {test_id} needs `skip` and `waits_for`")
        found[test_id] = Waiting(skip=str(spec["skip"]), waits_for=str(spec["waits_for"]))
    return found


def _reasoned(path: Path) -> list[tuple[str, str]]:
    """(regex, reason) pairs of a file of `regex  # reason` lines; every regex needs one."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        pattern, _, reason = line.partition("#")
        pattern, reason = pattern.strip(), reason.strip()
        if not pattern:
            continue
        if not reason:
            raise ValueError(f"{path}:{number}: `{pattern}` needs a `# reason`")
        found.append((pattern, reason))
    return found


def exclusions() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(pattern), reason) for pattern, reason in _reasoned(paths.EXCLUDE)]


# interop-waiting.toml entries skipped for this reason run in `scripts/tempest guests`.
GUEST_SKIP = "Instance validation tests are disabled"


def guest_lines() -> list[str]:
    """The interop tests that need a real guest (they wait for one in the gate)."""
    return sorted(k for k, w in waiting_lines().items() if w.skip == GUEST_SKIP)


def guest_extras() -> list[str]:
    """guests.txt: more tests for the guests run, each with its reason."""
    return [pattern for pattern, _ in _reasoned(paths.GUESTS)]


def patterns(name: str, services: list[Service], available: set[str]) -> tuple[list[str], set[str]]:
    """Regexes to run and the interop ids that must run, for gate/full/guests/anything else."""
    if name == "guests":
        ids = guest_lines()
        return [f"^{re.escape(i)}(\\[|$)" for i in ids] + guest_extras(), set(ids)
    if name not in ("gate", "full"):
        return [name], set()
    regexes: list[str] = []
    must_run: set[str] = set()
    for service in services:
        if service.name not in available:
            continue
        for entry in service.gate if name == "gate" else service.full:
            if entry == "interop":
                ids = interop_lines(service.name)
                must_run.update(ids)
                regexes.extend(f"^{re.escape(i)}(\\[|$)" for i in ids)
            else:
                regexes.append(entry)
    return regexes, must_run


def choose(name: str, services: list[Service], available: set[str], listed: list[str]) -> Selection:
    """The selection out of `listed` (every test Tempest knows under this config)."""
    regexes, must_run = patterns(name, services, available)
    compiled = [(p, re.compile(p)) for p in regexes]
    matched_by: dict[str, int] = {p: 0 for p in regexes}
    chosen: list[str] = []
    for test in listed:
        hit = False
        for pattern, regex in compiled:
            if regex.search(test):
                matched_by[pattern] += 1
                hit = True
        if hit:
            chosen.append(test)
    selection = Selection(tests=[], must_run=must_run)
    if name != "guests":  # there they run on real guests: none may be skipped
        selection.waiting = {k: v for k, v in waiting_lines().items() if k in must_run}
    selection.empty_patterns = [p for p, n in matched_by.items() if n == 0]
    rules = exclusions()
    for test in chosen:
        reason = next((r for regex, r in rules if regex.search(test)), None)
        if reason is None:
            selection.tests.append(test)
        elif bare(test) in must_run:
            raise ValueError(
                f"{paths.EXCLUDE}: {test} is in interop-target.txt; it cannot be excluded"
            )
        else:
            selection.excluded[test] = reason
    return selection
