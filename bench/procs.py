"""Server processes for the bench: start, time the first answer, measure, stop.

Memory and CPU are read from /proc for the whole process tree, so a server made
of several processes (uwsgi's master, router and workers) counts in full.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something the bench needs did not work; the message says what."""


def is_root() -> bool:
    return os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Server:
    """A started server process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    launched_at: float

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return tree(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def launch(
    name: str, command: Sequence[str], port: int, log: Path, env: dict[str, str], cwd: Path
) -> Server:
    """Start a server in its own session so a Ctrl-C reaches only the bench."""
    out = log.open("ab")
    launched_at = time.monotonic()
    try:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        out.close()
    return Server(name, process, port, log, launched_at)


def wait_ready(server: Server, path: str, timeout: float = 120.0) -> float:
    """Seconds from launch to the first 200 on ``path``."""
    deadline = server.launched_at + timeout
    while True:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited with {server.process.returncode} before answering:\n"
                + server.log_tail()
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"{server.name} did not answer {path} in {timeout:.0f}s")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=remaining)
        try:
            conn.request("GET", path)
            status = conn.getresponse().status
        except (ConnectionError, OSError, http.client.HTTPException):
            # Not listening yet, or a worker was not up to answer: try again soon.
            status = 0
        finally:
            conn.close()
        if status == 200:
            return time.monotonic() - server.launched_at
        time.sleep(0.01)


def stop(server: Server, grace: float = 20.0) -> None:
    """SIGTERM the server by its PID; SIGKILL it and any children left after ``grace``."""
    children = {pid: _started(pid) for pid in server.pids() if pid != server.pid}
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    # Children were ours too; none may outlive the bench. The start time tells a
    # leftover child from an unrelated process that got its PID since.
    for pid, started in children.items():
        if _alive(pid) and _started(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name, or [] if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def _started(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if fields else ""


def tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else []
        if fields:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if _alive(pid):
            found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _status_kb(pid: int, path: str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclasses.dataclass(frozen=True)
class Memory:
    """Summed over the processes: RSS counts shared pages once per process, PSS splits them."""

    rss_mb: float
    pss_mb: float
    processes: int


def memory(pids: Sequence[int]) -> Memory:
    rss = sum(_status_kb(pid, "status", "VmRSS") for pid in pids)
    pss = sum(_status_kb(pid, "smaps_rollup", "Pss") for pid in pids)
    return Memory(rss / 1024, pss / 1024, len(pids))


def settled_memory(server: Server, least: float = 1.0, most: float = 15.0) -> Memory:
    """Memory once it stops growing: lazy workers may still be loading after the first 200."""
    time.sleep(least)
    previous = memory(server.pids())
    waited = least
    while waited < most:
        time.sleep(0.5)
        waited += 0.5
        current = memory(server.pids())
        if abs(current.rss_mb - previous.rss_mb) <= 0.01 * previous.rss_mb:
            return current
        previous = current
    return previous


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time of the processes (their reaped children not included)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent not idle since boot, counted like ``cpu_seconds``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guests are in user.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / CLOCK_TICKS


def _own_cpu() -> float:
    """CPU of this process and of the children it has already waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class CpuWindow:
    """Measures what the rest of the machine took while the bench timed something."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.busy = machine_busy_seconds()
        self.mine = _own_cpu()

    def others_pct(self, live_pids: Sequence[int]) -> float:
        """CPU of processes that are neither the bench's nor ``live_pids``, % of one core."""
        elapsed = time.monotonic() - self.began
        spent = machine_busy_seconds() - self.busy
        others = spent - (_own_cpu() - self.mine) - cpu_seconds(live_pids)
        return 100 * max(0.0, others) / elapsed if elapsed > 0 else 0.0


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def bcrypt_costs(database: Path, query: str) -> str:
    """The bcrypt cost factors of the stored password hashes, e.g. "12"."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            hashes = [row[0] for row in db.execute(query) if row[0]]
    except sqlite3.Error as exc:
        return f"? ({exc})"
    costs = sorted({m.group(1) for h in hashes if (m := re.match(r"\$2[aby]?\$(\d+)\$", h))})
    return ",".join(costs) or "?"
