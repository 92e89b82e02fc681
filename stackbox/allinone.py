"""``stackbox up``: the all-in-one cloud in one process.

Order matters for clear failures: take the state-dir lock and bind the port
before doing any work, so a second ``up`` fails at once with a message that
says why; then migrate, bootstrap, write the client config, and serve.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import yaml

from stackbox import config
from stackbox.compute import defaults as compute_defaults
from stackbox.db import migrate
from stackbox.db import session as db_session
from stackbox.identity import bootstrap, passwords
from stackbox.image import metadefs_resource_types
from stackbox.network import defaults as network_defaults
from stackbox.web import assembly

LOG = logging.getLogger(__name__)

# Every catalog entry this build serves.
SERVICES = [
    bootstrap.ServiceEntry("identity", "keystone", "/identity", "Identity Service"),
    bootstrap.ServiceEntry("image", "glance", "/image", "Image Service"),
    bootstrap.ServiceEntry("network", "neutron", "/networking", "Neutron Service"),
    bootstrap.ServiceEntry("compute", "nova", "/compute/v2.1", "Nova Compute Service"),
]

ACCOUNTS = (
    ("admin", "admin", "admin"),
    ("demo", "demo", "member"),
    ("alt_demo", "alt_demo", "member"),
)


class StartupError(Exception):
    """A reason ``up`` cannot start, worded for the person who ran it."""


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "stackbox.lock"
    handle = open(path, "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StartupError(
            f"the state dir {state_dir} is in use by another stackbox (pid {holder}); "
            "stop it first or pass --state-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
        handle.close()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use; stop whatever listens there or "
                "pass --port"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600: a crash leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_passwords(settings: config.Settings) -> tuple[dict[str, str], set[str]]:
    """The bootstrap users' passwords (generated once, kept in the state dir) and which changed."""
    path = settings.state_dir / "passwords.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed: set[str] = set()
    for user, _, _ in ACCOUNTS:
        if user not in stored:
            stored[user] = secrets.token_urlsafe(12)
            changed.add(user)
    if settings.admin_password and stored.get("admin") != settings.admin_password:
        stored["admin"] = settings.admin_password
        changed.add("admin")
    if changed:
        _write_private(path, json.dumps(stored, indent=1, sort_keys=True))
    return stored, changed


def clouds(settings: config.Settings, pw: dict[str, str]) -> dict[str, Any]:
    auth_url = f"{settings.base_url}/identity"
    common = {"region_name": settings.region, "interface": "public", "identity_api_version": 3}

    def project_cloud(user: str, project: str) -> dict[str, Any]:
        return {
            "auth": {
                "auth_url": auth_url,
                "username": user,
                "password": pw[user],
                "project_name": project,
                "user_domain_id": "default",
                "project_domain_id": "default",
            },
            **common,
        }

    return {
        "stackbox": project_cloud("demo", "demo"),
        "stackbox-alt": project_cloud("alt_demo", "alt_demo"),
        "stackbox-admin": project_cloud("admin", "admin"),
        "stackbox-system-admin": {
            "auth": {
                "auth_url": auth_url,
                "username": "admin",
                "password": pw["admin"],
                "user_domain_id": "default",
                "system_scope": "all",
            },
            **common,
        },
    }


def write_client_config(settings: config.Settings, pw: dict[str, str]) -> Path:
    entries = clouds(settings, pw)
    state_file = settings.state_dir / "clouds.yaml"
    _write_private(state_file, yaml.safe_dump({"clouds": entries}, sort_keys=False))
    user_dir = Path.home() / ".config" / "openstack"
    user_file = user_dir / "clouds.yaml"
    try:
        user_dir.mkdir(parents=True, exist_ok=True)
        existing: dict[str, Any] = {}
        if user_file.exists():
            existing = yaml.safe_load(user_file.read_text()) or {}
        merged = dict(existing.get("clouds") or {})
        merged.update(entries)
        existing["clouds"] = merged
        _write_private(user_file, yaml.safe_dump(existing, sort_keys=False))
    except (OSError, yaml.YAMLError) as exc:
        LOG.warning("could not merge %s: %s", user_file, exc)
    auth_url = f"{settings.base_url}/identity"
    openrc = [
        "# Source me: . openrc [demo|alt_demo|admin]   (or: export OS_CLOUD=stackbox)",
        'case "${1:-demo}" in',
    ]
    for user, project, _ in ACCOUNTS:
        openrc.append(
            f"  {user}) OS_USERNAME={user}; OS_PROJECT_NAME={project}; OS_PASSWORD='{pw[user]}' ;;"
        )
    openrc += [
        '  *) echo "unknown user $1" >&2; return 1 ;;',
        "esac",
        "export OS_USERNAME OS_PROJECT_NAME OS_PASSWORD",
        f"export OS_AUTH_URL={auth_url}",
        "export OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default",
        f"export OS_REGION_NAME={settings.region} OS_IDENTITY_API_VERSION=3 OS_INTERFACE=public",
        "",
    ]
    _write_private(settings.state_dir / "openrc", "\n".join(openrc))
    return state_file


def prepare(settings: config.Settings, out: TextIO) -> db_session.Database:
    """Migrate and bootstrap the state dir; return the open database."""
    database = db_session.Database(settings.database_url)
    if migrate.upgrade(database.engine):
        _say(out, f"  database migrated to {migrate.head()} ({settings.state_dir / 'stackbox.db'})")
    assembly.init_identity(settings)
    pw, changed = load_passwords(settings)
    accounts = [bootstrap.Account(u, p, r, pw[u]) for u, p, r in ACCOUNTS]
    missing = database.run(lambda s: bootstrap.needs_hashes(s, accounts), write=False)
    to_hash = set(missing) | changed
    if to_hash:
        _say(out, f"  creating users: {', '.join(sorted(to_hash))}")
    hashes = {user: passwords.hash_password(pw[user]) for user in to_hash}
    project_ids = database.run(
        lambda s: bootstrap.run(
            s,
            region=settings.region,
            base_url=settings.base_url,
            services=SERVICES,
            accounts=accounts,
            hashes=hashes,
            reset_passwords=changed,
        ),
        write=True,
    )
    database.run(metadefs_resource_types.seed_standard, write=True)
    if settings.network.create_defaults and not network_defaults.done(settings.state_dir):
        # The defaults go through the API's handlers, which need the policy and settings.
        assembly.init_network(settings)
        assembly.init_policy(settings)
        made = database.run(
            lambda s: network_defaults.create(
                s, settings.network, project_ids["admin"], project_ids["demo"]
            ),
            write=True,
        )
        network_defaults.mark_done(settings.state_dir)
        for line in made:
            _say(out, f"  created {line}")
    if settings.compute.create_defaults and not compute_defaults.done(settings.state_dir):
        # Flavors and the default image go through the compute and image API handlers.
        assembly.init_image(settings)
        assembly.init_compute(settings)
        assembly.init_policy(settings)
        qemu = settings.compute.driver == "qemu"
        guest_dir = settings.state_dir / "guest" if qemu else None
        for line in compute_defaults.create(database, project_ids["admin"], guest_dir):
            _say(out, f"  created {line}")
        compute_defaults.mark_done(settings.state_dir)
    write_client_config(settings, pw)
    return database


def up(settings: config.Settings, out: TextIO = sys.stdout) -> int:
    import uvicorn

    started = time.monotonic()
    _say(out, f"stackbox: starting (state dir {settings.state_dir})")
    with state_lock(settings.state_dir):
        sock = bind(settings.host, settings.port)
        database = prepare(settings, out)
        app = assembly.build(settings, database)

        async def announce() -> None:
            _ready(settings, out, time.monotonic() - started)

        app.on_startup.append(announce)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                # `up` prints its own progress; uvicorn's start/stop chatter only at debug.
                log_level=settings.log_level if settings.log_level != "info" else "warning",
                access_log=settings.log_level == "debug",
                lifespan="on",
                timeout_graceful_shutdown=10,
            )
        )
        # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to
        # whatever handler was there before; a no-op one lets `up` finish and exit 0.
        previous = {sig: signal.signal(sig, _stopping) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run(sockets=[sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        _say(out, "stackbox: stopped")
    return 0


def _stopping(signum: int, frame: object) -> None:
    """Nothing to do: uvicorn has already shut down when this runs."""


def _ready(settings: config.Settings, out: TextIO, elapsed: float) -> None:
    base = settings.base_url
    _say(out, f"stackbox: ready in {elapsed:.1f}s at {base}")
    _say(out, f"  identity  {base}/identity/v3")
    _say(out, f"  image     {base}/image/v2")
    _say(out, f"  network   {base}/networking/v2.0")
    _say(out, f"  compute   {base}/compute/v2.1")
    _say(
        out,
        f"  clouds.yaml: {settings.state_dir / 'clouds.yaml'} (merged into "
        "~/.config/openstack/clouds.yaml)",
    )
    _say(out, "  try:  export OS_CLOUD=stackbox && openstack token issue")
    if settings.compute.create_defaults and settings.network.create_defaults:
        # A real guest's kernel does not fit m1.nano's 64 MB (it boots from 96 MB).
        flavor = "m1.micro" if settings.compute.driver == "qemu" else "m1.nano"
        _say(
            out,
            f"        openstack server create --wait --image stackbox-tiny --flavor {flavor} "
            "--network private vm1",
        )
    _say(
        out,
        "        clouds: stackbox (demo), stackbox-alt (alt_demo), stackbox-admin,"
        " stackbox-system-admin",
    )
