"""The tiny guest image boots under QEMU (TCG, ``-M microvm``), takes its hostname and
SSH key from an appended instance archive, gets a DHCP lease and lets the key in.

QEMU's user networking with ``restrict=on`` stands in for the cloud's network: it
answers DHCP (10.0.2.15/24, but no router under restrict) and forwards one host port
on 127.0.0.1 to the guest's SSH; the guest can reach nothing beyond QEMU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from stackbox.guest import build

QEMU = "/usr/bin/qemu-system-x86_64"
BOOT_TIMEOUT = 90.0

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (QEMU, apt-get download)")


def _wait_for_qemu() -> None:
    # The host may still be installing qemu-system-x86; give it up to ten minutes.
    deadline = time.monotonic() + 600
    while not os.path.exists(QEMU):
        if time.monotonic() > deadline:
            pytest.skip(f"{QEMU} missing (apt-get install qemu-system-x86)")
        time.sleep(30)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> build.GuestImage:
    for tool in ("apt-get", "dpkg-deb", "busybox", "dropbear", "dropbearkey"):
        if shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
            pytest.skip(f"missing {tool} (apt-get install busybox-static dropbear-bin)")
    _wait_for_qemu()
    root = tmp_path_factory.mktemp("guest")
    return build.build(root / "out", cache_dir=root / "cache")


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An ed25519 key pair in OpenSSH format: (private key file, public key line)."""
    private = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("key") / "id_ed25519"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return path, public + b" test@stackbox\n"


@dataclass
class Guest:
    process: subprocess.Popen[bytes]
    console: Path
    qmp: Path
    ssh_port: int
    started: float


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _boot(image: build.GuestImage, work: Path, files: dict[str, bytes]) -> Guest:
    initrd = work / "initrd"
    initrd.write_bytes(image.initramfs.read_bytes() + build.instance_archive(files))
    console, qmp, port = work / "console.log", work / "qmp.sock", _free_port()
    argv = [
        QEMU,
        "-M", "microvm", "-accel", "tcg",
        "-nodefaults", "-no-user-config", "-no-reboot",
        "-m", "128", "-smp", "2",
        "-kernel", str(image.kernel), "-initrd", str(initrd),
        "-append", build.KERNEL_CMDLINE,
        "-serial", f"file:{console}", "-display", "none", "-monitor", "none",
        "-qmp", f"unix:{qmp},server=on,wait=off",
        # restrict=on: the guest reaches only QEMU's DHCP and the forwarded port.
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-device,netdev=n0",
        # Entropy at once: without it dropbearkey waits ~1 s for the kernel's crng.
        "-device", "virtio-rng-device",
    ]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return Guest(process, console, qmp, port, started)


def _stop(guest: Guest) -> None:
    if guest.process.poll() is None:
        os.kill(guest.process.pid, signal.SIGKILL)
    guest.process.wait(timeout=10)


def _console(guest: Guest) -> str:
    try:
        return guest.console.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _wait_console(guest: Guest, marker: str) -> float:
    """Seconds from QEMU's start until ``marker`` shows on the console."""
    while marker not in _console(guest):
        if guest.process.poll() is not None:
            stderr = guest.process.stderr.read().decode() if guest.process.stderr else ""
            raise AssertionError(f"QEMU exited: {stderr}\n{_console(guest)}")
        if time.monotonic() - guest.started > BOOT_TIMEOUT:
            raise AssertionError(f"no {marker!r} on the console:\n{_console(guest)}")
        time.sleep(0.05)
    return time.monotonic() - guest.started


def _ssh(guest: Guest, key: Path, user: str, command: str) -> str:
    if shutil.which("ssh"):
        argv = [
            "ssh", "-i", str(key), "-p", str(guest.ssh_port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
            f"{user}@127.0.0.1", command,
        ]  # fmt: skip
    elif shutil.which("dbclient") and shutil.which("dropbearconvert"):
        converted = key.with_suffix(".dropbear")
        if not converted.exists():
            subprocess.run(
                ["dropbearconvert", "openssh", "dropbear", str(key), str(converted)],
                capture_output=True,
                check=True,
            )
        argv = ["dbclient", "-y", "-y", "-i", str(converted), "-p", str(guest.ssh_port)]
        argv += [f"{user}@127.0.0.1", command]
    else:
        pytest.skip("no SSH client (apt-get install openssh-client)")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"ssh {user}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def booted(
    image: build.GuestImage, key: tuple[Path, bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Guest, str]]:
    hostname = f"guest-{uuid.uuid4().hex[:8]}"
    files = {
        "hostname": f"{hostname}\n".encode(),
        "authorized_keys": key[1],
        "meta_data.json": json.dumps({"hostname": hostname}).encode(),
    }
    guest = _boot(image, tmp_path_factory.mktemp("boot"), files)
    try:
        yield guest, hostname
    finally:
        _stop(guest)


def test_a_second_build_reuses_the_first(image: build.GuestImage) -> None:
    out = image.kernel.parent
    started = time.monotonic()
    again = build.build(out, cache_dir=out.parent / "cache")
    assert again == image
    assert time.monotonic() - started < 5
    assert image.kernel.is_absolute() and image.initramfs.is_absolute()


def test_the_console_shows_the_hostname_and_the_lease(booted: tuple[Guest, str]) -> None:
    guest, hostname = booted
    lease_at = _wait_console(guest, "stackbox-guest: lease")
    ready_at = _wait_console(guest, "stackbox-guest: sshd ready")
    console = _console(guest)
    assert f"stackbox-guest: hostname {hostname}\n" in console.replace("\r", "")
    lease = re.search(r"stackbox-guest: lease (\S+)/(\d+) router (\S+)", console)
    assert lease is not None
    assert (lease.group(1), lease.group(2)) == ("10.0.2.15", "24")
    print(f"TCG boot: lease after {lease_at:.2f} s, sshd ready after {ready_at:.2f} s")


def test_root_and_cirros_log_in_with_the_key(
    booted: tuple[Guest, str], key: tuple[Path, bytes]
) -> None:
    guest, hostname = booted
    _wait_console(guest, "stackbox-guest: sshd ready")
    out = _ssh(guest, key[0], "root", "hostname; grep -c ^processor /proc/cpuinfo; id -u")
    assert out.split() == [hostname, "2", "0"]
    assert _ssh(guest, key[0], "cirros", "id -un").strip() == "cirros"


def test_the_power_button_powers_the_guest_off(image: build.GuestImage, tmp_path: Path) -> None:
    guest = _boot(image, tmp_path, {"hostname": b"button\n"})
    try:
        _wait_console(guest, "stackbox-guest: sshd ready")
        with socket.socket(socket.AF_UNIX) as qmp:
            qmp.connect(str(guest.qmp))
            stream = qmp.makefile("rw")
            stream.readline()
            for command in ("qmp_capabilities", "system_powerdown"):
                stream.write(json.dumps({"execute": command}) + "\n")
                stream.flush()
                reply = json.loads(stream.readline())
                while "event" in reply:
                    reply = json.loads(stream.readline())
                assert "return" in reply, reply
        assert guest.process.wait(timeout=60) == 0
        assert "Power down" in _console(guest)
    finally:
        _stop(guest)
