"""QEMU virtual machines, one directory each: the command line it runs with, its
pid file, its serial console log and its QMP socket.

Machines run daemonized (they outlive a restarting agent) under software emulation
unless the caller asks for KVM (dataplane-notes: /dev/kvm on this kind of host
cannot run unmodified guest kernels). Only the process our pid file names is
signalled, and only while its command line still holds this directory's path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from stackbox.linux import run

BINARY = "qemu-system-x86_64"
STOP_WAIT = 10.0


SHORT_SOCKETS = Path("/run/stackbox/qmp")


def qmp_socket(directory: Path) -> Path:
    """The machine's QMP socket: in its directory, unless that path is too long for a
    UNIX socket (108 bytes); then under /run, named by a digest of the directory."""
    path = directory / "qmp.sock"
    if len(str(path)) < 100:
        return path
    SHORT_SOCKETS.mkdir(parents=True, exist_ok=True)
    return SHORT_SOCKETS / (hashlib.sha1(str(directory).encode()).hexdigest()[:20] + ".sock")


def pid_of(directory: Path) -> int | None:
    """The pid of the machine this directory's pid file names, if it still runs."""
    try:
        pid = int((directory / "pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if str(directory) in cmdline else None


def ensure_running(directory: Path, argv: list[str]) -> int:
    """Start the machine unless it runs; ``argv`` is QEMU's arguments without the
    pid file, QMP socket, console and daemonizing, which this adds."""
    pid = pid_of(directory)
    if pid is not None:
        return pid
    (directory / "pid").unlink(missing_ok=True)
    qmp_socket(directory).unlink(missing_ok=True)
    command = [
        BINARY,
        *argv,
        "-pidfile", str(directory / "pid"),
        "-qmp", f"unix:{qmp_socket(directory)},server=on,wait=off",
        "-serial", f"file:{directory / 'console.log'}",
        "-display", "none",
        "-monitor", "none",
        "-daemonize",
    ]  # fmt: skip
    (directory / "command.json").write_text(json.dumps(command))
    run.run(command)
    found = pid_of(directory)
    if found is None:
        raise run.LinuxError(command, -1, "QEMU started but wrote no pid file")
    return found


def remove(directory: Path) -> None:
    """Stop the machine (quit over QMP, then SIGTERM, then SIGKILL)."""
    pid = pid_of(directory)
    if pid is None:
        qmp_socket(directory).unlink(missing_ok=True)
        return
    with contextlib.suppress(OSError, run.LinuxError):
        qmp(directory, "quit", timeout=2.0)
    deadline = time.monotonic() + STOP_WAIT
    sent_term = False
    while pid_of(directory) == pid:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        if not sent_term and time.monotonic() > deadline - STOP_WAIT / 2:
            os.kill(pid, signal.SIGTERM)
            sent_term = True
        time.sleep(0.02)
    qmp_socket(directory).unlink(missing_ok=True)


def qmp(directory: Path, command: str, arguments: dict[str, Any] | None = None,
        *, timeout: float = 10.0) -> Any:  # fmt: skip
    """One QMP command's ``return`` value."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(qmp_socket(directory)))
        reader = sock.makefile("r")
        json.loads(reader.readline())  # the greeting
        for execute, args in (("qmp_capabilities", None), (command, arguments)):
            message: dict[str, Any] = {"execute": execute}
            if args:
                message["arguments"] = args
            sock.sendall(json.dumps(message).encode() + b"\n")
            while True:
                reply = json.loads(reader.readline() or "null")
                if reply is None:
                    if execute == "quit":
                        return None
                    raise run.LinuxError([command], -1, "QEMU closed its QMP socket")
                if "event" in reply:
                    continue
                if "error" in reply:
                    raise run.LinuxError([command], -1, str(reply["error"].get("desc")))
                break
        return reply.get("return")


def status(directory: Path) -> str | None:
    """QEMU's run state ("running", "paused", "shutdown"...), None if not running."""
    if pid_of(directory) is None:
        return None
    try:
        return str(qmp(directory, "query-status", timeout=2.0).get("status"))
    except (OSError, run.LinuxError, ValueError):
        return "running"
