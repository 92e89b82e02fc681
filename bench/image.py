"""Image data throughput: upload and download of a 1 GiB image, against ``cp``.

Starts ``stackbox up`` with a fresh state dir, writes a file of random bytes on
the same disk, times ``cp`` of that file (the disk's own limit here), then times
an upload (``PUT /v2/images/{id}/file``) and a download of it with curl, while
sampling the server's resident memory. Prints figures and the targets; asserts
nothing.

    .venv/bin/python bench/image.py [--size-mib 1024] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

import stackbox_server

PASSWORD = "bench-image-secret"
RSS_GROWTH_TARGET_MB = 64.0
THROUGHPUT_TARGET_X = 0.5
MIB = 1 << 20
ROUNDS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples a process's VmRSS every few milliseconds; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.005) -> None:
        self.pid = pid
        self.every = every
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def server(work: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = dict(os.environ, HOME=str(work), STACKBOX_IDENTITY_BCRYPT_ROUNDS="4")
    log = open(work / "stackbox.log", "wb")  # noqa: SIM115
    command = [sys.executable, "-m", "stackbox", "up", "--state-dir", str(work / "state")]
    command += ["--port", str(port), "--admin-password", PASSWORD, "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"stackbox up exited:\n{(work / 'stackbox.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/identity/v3", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("stackbox up did not answer within 60 s")
            time.sleep(0.1)
        yield process, base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def token(base: str) -> str:
    body = stackbox_server.admin_auth(PASSWORD)
    response = httpx.post(f"{base}/identity/v3/auth/tokens", json=body, timeout=30)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def make_source(path: Path, size: int) -> str:
    """Random bytes (nothing compresses or dedups them); returns their sha512."""
    digest = hashlib.sha512()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(16 * MIB, left))
            digest.update(block)
            handle.write(block)
            left -= len(block)
    return digest.hexdigest()


def drop_copy(path: Path) -> None:
    path.unlink(missing_ok=True)


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed: {done.stderr or done.stdout}")
    return elapsed, done.stdout.strip()


@dataclasses.dataclass
class Round:
    upload_s: float
    download_s: float
    download_null_s: float
    rss_before_kb: int
    upload_peak_kb: int
    download_peak_kb: int
    image: dict[str, Any]
    intact: bool


def curl(*args: str) -> tuple[float, str]:
    return timed(["curl", "-sS", "-w", "%{http_code}", *args])


def transfer_once(work: Path, pid: int, base: str, auth: str, source: Path) -> Round:
    """Upload ``source`` into a new image, download it back, then delete the image."""
    with httpx.Client(base_url=f"{base}/image", headers={"X-Auth-Token": auth}) as client:
        made = client.post(
            "/v2/images", json={"name": "bench", "disk_format": "raw", "container_format": "bare"}
        )
        made.raise_for_status()
        image_id = made.json()["id"]
        url = f"{base}/image/v2/images/{image_id}/file"
        time.sleep(0.5)
        rss_before = status_kb(pid, "VmRSS")
        with RssSampler(pid) as up_rss:
            up_s, code = curl(
                "-o", "/dev/null", "-T", str(source), "-H", "Expect:",
                "-H", "Content-Type: application/octet-stream", "-H", f"X-Auth-Token: {auth}", url,
            )  # fmt: skip
        if code != "204":
            raise SystemExit(f"upload answered {code}")
        image = client.get(f"/v2/images/{image_id}", timeout=30).json()
        downloaded = work / "downloaded.bin"
        with RssSampler(pid) as down_rss:
            down_s, code = curl("-o", str(downloaded), "-H", f"X-Auth-Token: {auth}", url)
        if code != "200":
            raise SystemExit(f"download answered {code}")
        intact = downloaded.stat().st_size == source.stat().st_size
        drop_copy(downloaded)
        null_s, code = curl("-o", "/dev/null", "-H", f"X-Auth-Token: {auth}", url)
        if code != "200":
            raise SystemExit(f"download answered {code}")
        client.delete(f"/v2/images/{image_id}", timeout=30).raise_for_status()
    return Round(up_s, down_s, null_s, rss_before, up_rss.peak_kb, down_rss.peak_kb, image, intact)


def hash_floor(source: Path) -> float:
    """Seconds to hash the file with md5 and sha512 at once (Glance's two digests)."""
    data = source.read_bytes()
    start = time.perf_counter()
    threads = [
        threading.Thread(target=hashlib.new(name).update, args=(data,))
        for name in ("md5", "sha512")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def rate(size: int, seconds: float, rounds: int = ROUNDS) -> str:
    best = f", best of {rounds}" if rounds > 1 else ""
    return f"{size / MIB / seconds:8.1f} MiB/s ({seconds:.2f} s{best})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", type=Path, help="work directory (default: a temp dir in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("bench/image.py needs curl")
    size = args.size_mib * MIB
    work = args.dir or Path(tempfile.mkdtemp(prefix="stackbox-bench-image-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        # A VM's guest pays a fault for each page it touches the first time: touch (and
        # free) enough memory first, so no step below pays for another's fresh pages.
        warm = work / "warm.bin"
        with open(warm, "wb") as handle:
            block = bytes(16 * MIB)
            for _ in range(5 * size // len(block) + 1):
                handle.write(block)
        drop_copy(warm)
        source = work / "source.bin"
        expected = make_source(source, size)
        os.sync()
        copy = work / "copy.bin"
        cp_times, cp_sync_times = [], []
        for _ in range(2):
            cp_times.append(timed(["cp", str(source), str(copy)])[0])
            drop_copy(copy)
            cp_sync_times.append(timed(["sh", "-c", f"cp '{source}' '{copy}' && sync"])[0])
            drop_copy(copy)
        cp_best, cp_sync_best = min(cp_times), min(cp_sync_times)
        floor_s = hash_floor(source)

        with server(work) as (process, base):
            auth = token(base)
            runs = [transfer_once(work, process.pid, base, auth, source) for _ in range(ROUNDS)]
            hwm = status_kb(process.pid, "VmHWM")
        up_s = min(r.upload_s for r in runs)
        down_s = min(r.download_s for r in runs)
        null_s = min(r.download_null_s for r in runs)
        shown = runs[-1].image
        intact = all(r.intact for r in runs)
        rss_before = min(r.rss_before_kb for r in runs)
        up_peak = max(r.upload_peak_kb for r in runs)
        down_peak = max(r.download_peak_kb for r in runs)

        print(
            f"image data bench: {args.size_mib} MiB of random bytes, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        print(f"  cp                 {rate(size, cp_best)}")
        print(f"  cp + sync          {rate(size, cp_sync_best)}")
        print(f"  upload (PUT file)  {rate(size, up_s)}  = {cp_best / up_s:.2f}x cp")
        print(f"  download to a file {rate(size, down_s)}  = {cp_best / down_s:.2f}x cp")
        print(f"  download, dropped  {rate(size, null_s)}  = {cp_best / null_s:.2f}x cp")
        print(
            f"  md5 + sha512 of the bytes, one thread each (the upload's floor): "
            f"{rate(size, floor_s, 1).strip()}"
        )
        print(
            f"  image: status {shown['status']}, size {shown['size']}, sha512 "
            f"{'matches' if shown['os_hash_value'] == expected else 'DIFFERS'}, "
            f"download {'complete' if intact else 'INCOMPLETE'}"
        )
        up_growth = (up_peak - rss_before) / 1024
        down_growth = (down_peak - rss_before) / 1024
        print(
            f"  server RSS: {rss_before / 1024:.1f} MB before; peak +{up_growth:.1f} MB "
            f"during upload, +{down_growth:.1f} MB during download (VmHWM {hwm / 1024:.1f} MB)"
        )
        print(
            f"targets: peak RSS growth < {RSS_GROWTH_TARGET_MB:.0f} MB while moving the image; "
            f"throughput >= {THROUGHPUT_TARGET_X}x cp"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
