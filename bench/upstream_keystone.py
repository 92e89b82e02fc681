"""Upstream Keystone for comparison: its own cached venv, a throwaway config, uwsgi.

The venv lives in ``<repo>/.bench/`` and is reused while its stamp matches the
pinned release, so only the first run pays for building uwsgi. Everything else
(database, Fernet keys, config, logs) goes in a temp dir of the caller.

The server is uwsgi with 2 worker processes of 1 thread (as in the issue's
measurement), lazy apps and the app mounted at ``/identity`` as DevStack's
``keystone-uwsgi-public.ini`` has them. DevStack puts Apache in front; here
uwsgi's own HTTP router takes that place, with keep-alive, so the client reuses
connections as it does against stackbox. Caching stays off (Keystone's default).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import procs

KEYSTONE_RELEASE = "keystone==30.0.0"
# uwsgi as the issue names it, unpinned; the run prints the version it got.
REQUIREMENTS = [KEYSTONE_RELEASE, "uwsgi"]
WORKERS = 2
THREADS = 1


def venv_dir(cache_root: Path) -> Path:
    return cache_root.resolve() / ("keystone-" + KEYSTONE_RELEASE.split("==")[1])


def ensure_venv(cache_root: Path, log: Path) -> tuple[Path, float]:
    """The venv's directory and the seconds spent building it (0 when cached)."""
    venv = venv_dir(cache_root)
    stamp = venv / ".bench-ready"
    wanted = "\n".join(REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == wanted:
        return venv, 0.0
    started = time.monotonic()
    # A half-built venv from an interrupted run is not worth repairing.
    shutil.rmtree(venv, ignore_errors=True)
    cache_root.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        try:
            _run([sys.executable, "-m", "venv", str(venv)], out)
            _run([str(venv / "bin" / "python"), "-m", "pip", "install", *REQUIREMENTS], out)
        except procs.BenchError as exc:
            raise procs.BenchError(f"{exc}; see {log}") from None
    stamp.write_text(wanted)
    return venv, time.monotonic() - started


def _run(command: list[str], out: IO[str]) -> None:
    result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise procs.BenchError(f"{' '.join(command)} failed (exit {result.returncode})")


def versions(venv: Path) -> dict[str, str]:
    """Versions of the packages that decide the upstream figures."""
    script = (
        "import importlib.metadata as m\n"
        "for n in ('keystone', 'uWSGI', 'bcrypt', 'SQLAlchemy', 'Flask'):\n"
        "    print(n, m.version(n))\n"
    )
    text = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in text.splitlines())


def write_config(workdir: Path, bcrypt_rounds: int) -> Path:
    conf = workdir / "keystone.conf"
    conf.write_text(
        "[DEFAULT]\n"
        "debug = false\n"
        f"log_file = {workdir / 'keystone.log'}\n"
        "[database]\n"
        f"connection = sqlite:///{workdir / 'keystone.db'}\n"
        "[token]\n"
        "provider = fernet\n"
        "[fernet_tokens]\n"
        f"key_repository = {workdir / 'fernet-keys'}\n"
        "[fernet_receipts]\n"
        f"key_repository = {workdir / 'fernet-receipts'}\n"
        "[credential]\n"
        f"key_repository = {workdir / 'credential-keys'}\n"
        "[identity]\n"
        "password_hash_algorithm = bcrypt\n"
        f"password_hash_rounds = {bcrypt_rounds}\n"
    )
    return conf


def prepare(venv: Path, workdir: Path, base_url: str, password: str, rounds: int) -> float:
    """Create the database, keys and admin account; return the seconds it took."""
    conf = write_config(workdir, rounds)
    manage = [str(venv / "bin" / "keystone-manage"), "--config-file", str(conf)]
    # keystone-manage insists on naming the key owner only when run as root.
    owner = ["--keystone-user", "root", "--keystone-group", "root"] if procs.is_root() else []
    steps = [
        ["db_sync"],
        ["fernet_setup", *owner],
        ["credential_setup", *owner],
        [
            "bootstrap",
            "--bootstrap-password",
            password,
            "--bootstrap-admin-url",
            base_url,
            "--bootstrap-public-url",
            base_url,
            "--bootstrap-internal-url",
            base_url,
            "--bootstrap-region-id",
            "RegionOne",
        ],
    ]
    started = time.monotonic()
    with (workdir / "keystone-manage.log").open("a") as out:
        for step in steps:
            _run([*manage, *step], out)
    return time.monotonic() - started


def server_command(venv: Path, workdir: Path, port: int) -> list[str]:
    return [
        str(venv / "bin" / "uwsgi"),
        "--master",
        "--processes",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "--enable-threads",
        "--lazy-apps",
        "--http",
        f"127.0.0.1:{port}",
        "--http-keepalive",
        "--mount",
        "/identity=keystone.wsgi.api:application",
        "--manage-script-name",
        "--need-app",
        "--die-on-term",
        "--disable-logging",
        "--buffer-size",
        "65535",
        "--env",
        f"OS_KEYSTONE_CONFIG_FILES={workdir / 'keystone.conf'}",
        "--chdir",
        str(workdir),
    ]


def password_costs(workdir: Path) -> str:
    return procs.bcrypt_costs(workdir / "keystone.db", "SELECT password_hash FROM password")
