"""Which tests a run must contain: gate, full, or a regex; minus exclude.txt.

The wanted set is computed here, from Tempest's own test list, and handed to Tempest as
an exact load list, so afterwards every wanted test can be checked off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tempestgate import paths
from tempestgate.services import Service

ATTRS = re.compile(r"\[.*\]$")


def bare(test_id: str) -> str:
    """A test id without its [id-...,smoke] attributes."""
    return ATTRS.sub("", test_id)


@dataclass
class Selection:
    tests: list[str]  # full ids as Tempest lists them
    must_run: set[str]  # bare ids that must run and not be skipped (interop lines)
    excluded: dict[str, str] = field(default_factory=dict)  # full id -> reason
    empty_patterns: list[str] = field(default_factory=list)  # patterns matching nothing


def interop_lines(service: str) -> list[str]:
    prefix = f"tempest.api.{service}."
    lines = paths.INTEROP.read_text().splitlines()
    return [bare(line.strip()) for line in lines if line.strip().startswith(prefix)]


def exclusions() -> list[tuple[re.Pattern[str], str]]:
    found = []
    for number, line in enumerate(paths.EXCLUDE.read_text().splitlines(), 1):
        pattern, _, reason = line.partition("#")
        pattern, reason = pattern.strip(), reason.strip()
        if not pattern:
            continue
        if not reason:
            raise ValueError(f"{paths.EXCLUDE}:{number}: `{pattern}` needs a `# reason`")
        found.append((re.compile(pattern), reason))
    return found


def patterns(name: str, services: list[Service], available: set[str]) -> tuple[list[str], set[str]]:
    """Regexes to run and the interop ids that must run, for gate/full/anything else."""
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
