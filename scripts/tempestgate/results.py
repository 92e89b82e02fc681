"""Judge a run: what passed, failed, was skipped (and why), and what never ran."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tempestgate.conf import Off
from tempestgate.selection import Selection, bare

# Class-level fixtures report under names like "setUpClass (tempest.api.x.TestClass)".
FIXTURE = re.compile(r"^(\w+) \(([\w.]+)\)$")
FRAME = re.compile(r'^\s+File "')
PASSED = {"success", "xfail"}
FAILED = {"fail", "uxsuccess", "exists", "inprogress"}
MESSAGE_LIMIT = 800


@dataclass
class Verdict:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # id -> error message
    skipped: dict[str, str] = field(default_factory=dict)  # id -> reason
    not_run: dict[str, str] = field(default_factory=dict)  # bare id -> why
    # Interop tests skipped as interop-waiting.toml allows: bare id -> what they wait for
    waiting: dict[str, str] = field(default_factory=dict)
    # Interop tests listed as waiting that ran all the same (their entry can go)
    no_longer_waiting: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run


def error_message(traceback: str) -> str:
    """The exception part of a traceback (after the last frame), shortened."""
    lines = traceback.rstrip().splitlines()
    frames = [i for i, line in enumerate(lines) if FRAME.match(line)]
    message = "\n".join(lines[frames[-1] + 2 :] if frames else lines).strip()
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + " ..."
    return message or "(no traceback)"


def judge(results: list[dict[str, Any]], selection: Selection) -> Verdict:
    verdict = Verdict()
    seen: dict[str, str] = {}  # bare id -> status
    reasons: dict[str, str] = {}  # bare id -> skip reason
    broken_classes: dict[str, str] = {}  # class path -> fixture that failed
    skipped_classes: dict[str, str] = {}  # class path -> why its whole class was skipped
    for result in results:
        test_id, status = result["id"], result["status"]
        fixture = FIXTURE.match(test_id)
        if fixture and status in FAILED:
            broken_classes[fixture.group(2)] = fixture.group(1)
        if fixture and status == "skip":
            # A class skipped in setUpClass reports once, for all of its tests: they are
            # counted below, test by test, with the class's reason.
            skipped_classes[fixture.group(2)] = result.get("reason") or "(no reason given)"
            continue
        if status in PASSED:
            verdict.passed.append(test_id)
        elif status == "skip":
            verdict.skipped[test_id] = result.get("reason") or "(no reason given)"
            reasons[bare(test_id)] = verdict.skipped[test_id]
        elif status in FAILED:
            verdict.failed[test_id] = error_message(result.get("traceback", ""))
        if not fixture:
            seen[bare(test_id)] = status
    for test in selection.tests:
        name = bare(test)
        cls = name.rpartition(".")[0]
        if name not in seen and cls in skipped_classes:
            seen[name] = "skip"
            verdict.skipped[test] = f"(whole class) {skipped_classes[cls]}"
            reasons[name] = skipped_classes[cls]
        if name not in seen:
            why = f"its class failed in {broken_classes[cls]}" if cls in broken_classes else ""
            verdict.not_run[name] = why or "absent from the results"
        elif name in selection.must_run and seen[name] == "skip":
            waits = selection.waiting.get(name)
            if waits is not None and waits.skip in reasons.get(name, ""):
                verdict.waiting[name] = waits.waits_for
            else:
                verdict.not_run[name] = "skipped, but interop-target.txt requires it"
        elif name in selection.waiting and seen[name] in PASSED:
            verdict.no_longer_waiting.append(name)
    for pattern in selection.empty_patterns:
        verdict.not_run[pattern] = "the selection lists it but no Tempest test matches"
    return verdict


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def report(
    name: str, verdict: Verdict, selection: Selection, off: list[Off], seconds: float
) -> str:
    out = []
    if verdict.failed:
        out.append(f"\nFailed ({len(verdict.failed)}):")
        for test_id, message in sorted(verdict.failed.items()):
            out.append(f"  {test_id}\n{_indent(message)}")
    if verdict.skipped:
        out.append(f"\nSkipped ({len(verdict.skipped)}):")
        for test_id, reason in sorted(verdict.skipped.items()):
            out.append(f"  {test_id}\n      skip: {reason.strip()}")
    if verdict.not_run:
        out.append(f"\nListed in the selection but not run ({len(verdict.not_run)}):")
        for test_id, why in sorted(verdict.not_run.items()):
            out.append(f"  {test_id}: {why}")
    if verdict.waiting:
        out.append(f"\nInterop tests waiting (interop-waiting.toml) ({len(verdict.waiting)}):")
        for test_id, waits_for in sorted(verdict.waiting.items()):
            out.append(f"  {test_id}\n      waits for: {waits_for}")
    if verdict.no_longer_waiting:
        out.append("\nListed in interop-waiting.toml but ran (remove their entries):")
        out.extend(f"  {test_id}" for test_id in sorted(verdict.no_longer_waiting))
    if selection.excluded:
        out.append(f"\nExcluded by tests/tempest/exclude.txt ({len(selection.excluded)}):")
        for test_id, reason in sorted(selection.excluded.items()):
            out.append(f"  {test_id}: {reason}")
    if off:
        out.append("\nTurned off in tempest.conf:")
        for item in off:
            out.append(f"  [{item.section}] {item.option} = {item.value}: {item.reason}")
    waiting = f" ({len(verdict.waiting)} interop waiting)" if verdict.waiting else ""
    out.append(
        f"\n== tempest {name}: {len(verdict.passed)} passed, {len(verdict.failed)} failed, "
        f"{len(verdict.skipped)} skipped{waiting}, {len(verdict.not_run)} not run "
        f"(of {len(selection.tests)} selected) in {seconds:.0f}s -> "
        f"{'OK' if verdict.ok else 'FAILED'} =="
    )
    return "\n".join(out)
