"""The bench's figures: what one server measured, and the printed comparison.

Every ratio is printed as a gain, above 1x when stackbox is better: stackbox's
req/s over upstream's, and upstream's time or memory over stackbox's.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from collections.abc import Callable
from typing import Any

import procs

Load = dict[str, Any]
VALIDATE_TARGET_X = 20.0
ISSUE_TARGET_X = 1.0
TARGET_ROUNDS = 12
WARM_START_TARGET_S = 2.0
RSS_TARGET_MB = 150.0


@dataclasses.dataclass
class Side:
    """Everything measured on one server."""

    name: str
    first_start: list[float] = dataclasses.field(default_factory=list)
    warm_start: list[float] = dataclasses.field(default_factory=list)
    # CPU other processes took during each start, % of one core.
    first_others: list[float] = dataclasses.field(default_factory=list)
    warm_others: list[float] = dataclasses.field(default_factory=list)
    # Upstream only: keystone-manage's share of a first start.
    prepare: float | None = None
    memory_started: procs.Memory | None = None
    memory_loaded: procs.Memory | None = None
    loads: dict[tuple[str, int], Load] = dataclasses.field(default_factory=dict)
    bcrypt: str = "?"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def one_line(result: Load) -> str:
    if not result.get("ok"):
        return f"FAILED: {result.get('first_error', 'no request succeeded')}"
    text = (
        f"{result['rps']:.1f} req/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms ({result['ok']} ok"
    )
    if result["errors"]:
        text += f", {result['errors']} errors, first: {result['first_error']}"
    return text + ")"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _gain(ours: float | None, theirs: float | None, higher_is_better: bool) -> float | None:
    if ours is None or theirs is None or math.isnan(ours) or math.isnan(theirs):
        return None
    if higher_is_better:
        return ours / theirs if theirs > 0 else None
    return theirs / ours if ours > 0 else None


def _gain_text(gain: float | None) -> str:
    return "-" if gain is None else f"{gain:,.2f}x"


class Table:
    def __init__(self, stackbox: Side, upstream: Side | None) -> None:
        self.stackbox, self.upstream = stackbox, upstream
        self.rows: list[tuple[str, str, str, str]] = []

    def add(
        self,
        label: str,
        pick: Callable[[Side], float | None],
        digits: int = 1,
        higher_is_better: bool = False,
    ) -> None:
        ours = pick(self.stackbox)
        theirs = pick(self.upstream) if self.upstream else None
        gain = _gain(ours, theirs, higher_is_better)
        self.rows.append((label, _num(ours, digits), _num(theirs, digits), _gain_text(gain)))

    def render(self) -> list[str]:
        head = ("figure", "stackbox", "upstream", "gain")
        rows = [head, *self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = []
        for n, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
            lines.append("  ".join(cells))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return lines


def _load(side: Side, op: str, concurrency: int, key: str) -> float | None:
    found = side.loads.get((op, concurrency))
    if not found or not found.get("ok"):
        return None
    return float(found[key])


def _mem(side: Side, when: str, key: str) -> float | None:
    memory = side.memory_started if when == "start" else side.memory_loaded
    return None if memory is None else float(getattr(memory, key))


def _load_figure(op: str, concurrency: int, key: str) -> Callable[[Side], float | None]:
    return lambda side: _load(side, op, concurrency, key)


def _mem_figure(when: str, key: str) -> Callable[[Side], float | None]:
    return lambda side: _mem(side, when, key)


def comparison(stackbox: Side, upstream: Side | None, concurrency: list[int]) -> list[str]:
    table = Table(stackbox, upstream)
    for op in ("validate", "issue"):
        for c in concurrency:
            table.add(f"token {op} c={c}  req/s", _load_figure(op, c, "rps"), higher_is_better=True)
            for key, name in (
                ("p50_ms", "p50 ms"),
                ("p99_ms", "p99 ms"),
                ("server_cpu_ms_per_req", "server CPU ms/req"),
            ):
                digits = 2 if op == "validate" else 1
                table.add(f"token {op} c={c}  {name}", _load_figure(op, c, key), digits)
    table.add("first start, empty state: s to 200 (median)", lambda s: median(s.first_start), 2)
    table.add("warm start, existing state: s to 200 (median)", lambda s: median(s.warm_start), 2)
    for when in ("start", "load"):
        for key, name in (("rss_mb", "RSS"), ("pss_mb", "PSS")):
            table.add(f"idle {name} MB after {when}", _mem_figure(when, key))
    return table.render()


def details(sides: list[Side]) -> list[str]:
    head = (
        "server",
        "op",
        "c",
        "ok",
        "err",
        "secs",
        "client CPU",
        "us/req",
        "server CPU",
        "others",
        "reconn",
    )
    rows: list[tuple[str, ...]] = [head]
    for side in sides:
        for (op, c), r in side.loads.items():
            if not r.get("ok"):
                rows.append((side.name, op, str(c), "0", str(r.get("errors", "?")), *["-"] * 6))
                continue
            rows.append(
                (
                    side.name,
                    op,
                    str(c),
                    str(r["ok"]),
                    str(r["errors"]),
                    f"{r['elapsed']:.1f}",
                    f"{r['client_cpu_pct']:.0f}%",
                    f"{r['client_cpu_us_per_req']:.0f}",
                    f"{r['server_cpu_pct']:.0f}%",
                    f"{r['others_cpu_pct']:.0f}%",
                    str(r["reconnects"]),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines += [
        f"CPU columns are shares of one core (this machine has {os.cpu_count()}).",
        "us/req: the client's CPU per answered request.",
        "others: CPU used meanwhile by every other process on the machine; above a few % the",
        "  figures are disturbed by work that is not the bench's.",
        "reconn: connections the client had to open again (0 = keep-alive held).",
    ]
    return lines


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def targets(
    stackbox: Side, upstream: Side | None, concurrency: list[int], rounds: int
) -> list[str]:
    rows: list[tuple[str, str, str]] = []
    top = 8
    gain = None
    if upstream and top in concurrency:
        gain = _gain(
            _load(stackbox, "validate", top, "rps"), _load(upstream, "validate", top, "rps"), True
        )
    no_upstream = "" if upstream else " (needs --upstream)"
    why = " (concurrency 8 not measured)" if top not in concurrency else no_upstream
    rows.append(
        (
            f"token validate c=8 >= {VALIDATE_TARGET_X:g}x upstream req/s{why}",
            _gain_text(gain),
            _verdict(None if gain is None else gain >= VALIDATE_TARGET_X),
        )
    )
    for c in concurrency:
        gain = None
        if upstream:
            gain = _gain(
                _load(stackbox, "issue", c, "rps"), _load(upstream, "issue", c, "rps"), True
            )
        note = no_upstream
        if rounds != TARGET_ROUNDS:
            note, gain = f" (ran at bcrypt cost {rounds}, target is at {TARGET_ROUNDS})", None
        rows.append(
            (
                f"token issue c={c} >= {ISSUE_TARGET_X:g}x upstream req/s, bcrypt cost "
                f"{TARGET_ROUNDS}{note}",
                _gain_text(gain),
                _verdict(None if gain is None else gain >= ISSUE_TARGET_X),
            )
        )
    warm = median(stackbox.warm_start)
    rows.append(
        (
            f"warm `stackbox up` answers /identity/v3 in <= {WARM_START_TARGET_S:g} s",
            f"{_num(warm, 2)} s",
            _verdict(None if math.isnan(warm) else warm <= WARM_START_TARGET_S),
        )
    )
    for when in ("start", "load"):
        rss = _mem(stackbox, when, "rss_mb")
        rows.append(
            (
                f"idle RSS after {when} <= {RSS_TARGET_MB:g} MB",
                f"{_num(rss, 0)} MB",
                _verdict(None if rss is None else rss <= RSS_TARGET_MB),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{a.ljust(widths[0])}  {b.rjust(widths[1])}  {c}" for a, b, c in rows]


def report(header: list[str], concurrency: list[int], rounds: int, sides: list[Side]) -> str:
    stackbox = sides[0]
    upstream = sides[1] if len(sides) > 1 else None
    lines = ["", "== identity bench: stackbox vs upstream Keystone ==", *header]
    costs = f"stackbox {stackbox.bcrypt}"
    if upstream:
        costs += f", upstream {upstream.bcrypt}"
    lines.append(f"bcrypt cost of the stored password hashes: {costs} (asked for {rounds})")
    if upstream and upstream.prepare is not None:
        lines.append(
            f"upstream first start = keystone-manage steps ({upstream.prepare:.2f} s) "
            "+ uwsgi launch to first 200"
        )
    lines += ["", *comparison(stackbox, upstream, concurrency)]
    lines.append(
        "gain: stackbox / upstream for req/s, upstream / stackbox for times and memory; "
        "above 1x stackbox is better."
    )
    lines += ["", "load details:", *details(sides)]
    lines += ["", "start samples, seconds (others' CPU meanwhile, % of a core):"]
    for side in sides:
        for kind, times, others in (
            ("first", side.first_start, side.first_others),
            ("warm", side.warm_start, side.warm_others),
        ):
            samples = " ".join(f"{t:.2f} ({o:.0f}%)" for t, o in zip(times, others, strict=True))
            lines.append(f"  {side.name} {kind}: {samples}")
    lines += ["", "memory (every process of the server):"]
    for side in sides:
        for when, memory in (("start", side.memory_started), ("load", side.memory_loaded)):
            if memory is not None:
                lines.append(
                    f"  {side.name} memory after {when}: {memory.processes} processes, "
                    f"RSS {memory.rss_mb:.1f} MB, PSS {memory.pss_mb:.1f} MB"
                )
    lines += ["", "targets (from the issue; figures, not assertions):"]
    lines += [f"  {line}" for line in targets(stackbox, upstream, concurrency, rounds)]
    return "\n".join(lines)
