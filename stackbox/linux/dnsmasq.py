"""dnsmasq as a network's DHCP server, one process per ``qdhcp-`` namespace.

Each network has a directory of its own with the hosts file (static leases), the
options file, the pid file, the log and the command line it was started with.
dnsmasq drops to ``nobody`` after start, so the directory and files are
world-readable. Changed hosts or options restart it rather than SIGHUP it:
dnsmasq 2.90 (Debian 12) segfaulted here on SIGHUP reloads once it had handed out
a lease (dmesg shows it), and restarting a static-lease server costs ~20 ms and
loses nothing. Only the process named by our own pid file is ever signalled, and
only while its command line still holds that pid file's path.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import time
from pathlib import Path

from stackbox.linux import run

START_WAIT = 5.0


@dataclasses.dataclass(frozen=True)
class Served:
    namespace: str
    interface: str
    directory: Path
    # dnsmasq --dhcp-range values, e.g. "set:subnet-X,10.0.0.0,static,255.255.255.0,86400s"
    ranges: tuple[str, ...]
    hosts: str
    opts: str


def _command(served: Served) -> list[str]:
    d = served.directory
    return [
        "dnsmasq",
        "--conf-file=/dev/null",
        "--no-hosts",
        "--no-resolv",
        "--port=0",  # DHCP only: no DNS yet
        "--bind-interfaces",
        f"--interface={served.interface}",
        "--except-interface=lo",
        f"--pid-file={d / 'pid'}",
        f"--dhcp-hostsfile={d / 'host'}",
        f"--dhcp-optsfile={d / 'opts'}",
        "--leasefile-ro",
        "--dhcp-authoritative",
        # Starts, reloads and errors; not every lease (the file lives in /run).
        f"--log-facility={d / 'log'}",
        "--quiet-dhcp",
        *(f"--dhcp-range={r}" for r in served.ranges),
    ]


def _write(path: Path, content: str) -> bool:
    """Write if different; True if it changed."""
    if path.exists() and path.read_text() == content:
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(content)
    tmp.chmod(0o644)
    tmp.replace(path)
    return True


def running_pid(directory: Path) -> int | None:
    """The pid of the dnsmasq this directory's pid file names, if it still runs."""
    try:
        pid = int((directory / "pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if str(directory / "pid") in cmdline else None


def _stop(directory: Path) -> None:
    pid = running_pid(directory)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + START_WAIT
    while running_pid(directory) == pid and time.monotonic() < deadline:
        time.sleep(0.01)
    if running_pid(directory) == pid:
        os.kill(pid, signal.SIGKILL)


def ensure_dnsmasq(served: Served) -> None:
    """dnsmasq serving exactly ``served`` in its namespace."""
    d = served.directory
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o755)
    files_changed = _write(d / "host", served.hosts)
    files_changed |= _write(d / "opts", served.opts)
    command = _command(served)
    wanted = "\0".join(command)
    pid = running_pid(d)
    previous = (d / "cmdline").read_text() if (d / "cmdline").exists() else None
    if pid is not None and previous == wanted and not files_changed:
        return
    _stop(d)
    (d / "pid").unlink(missing_ok=True)
    (d / "cmdline").write_text(wanted)
    # dnsmasq daemonizes once it is listening: a failed start is an error (with what
    # dnsmasq said) here, not later.
    run.run(["ip", "netns", "exec", served.namespace, *command])
    deadline = time.monotonic() + START_WAIT
    while running_pid(d) is None:
        if time.monotonic() > deadline:
            raise run.LinuxError(command, -1, "dnsmasq did not write its pid file")
        time.sleep(0.01)


def remove_dnsmasq(directory: Path) -> None:
    _stop(directory)
    shutil.rmtree(directory, ignore_errors=True)
