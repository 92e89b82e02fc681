"""How the bench starts stackbox: ``stackbox up`` as a user would, in a private state dir.

HOME points into the bench's temp dir because ``up`` merges its clouds into
``~/.config/openstack/clouds.yaml``; the bench must leave the user's file alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import procs


def command(state_dir: Path, port: int, password: str) -> list[str]:
    script = Path(sys.executable).parent / "stackbox"
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "stackbox"]
    return [
        *launcher,
        "up",
        "--state-dir",
        str(state_dir),
        "--port",
        str(port),
        "--admin-password",
        password,
    ]


def environment(home: Path, bcrypt_rounds: int) -> dict[str, str]:
    # Settings from the caller's environment would make runs differ from machine to machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKBOX_")}
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    env["STACKBOX_IDENTITY_BCRYPT_ROUNDS"] = str(bcrypt_rounds)
    return env


def launch(
    workdir: Path,
    state_dir: Path,
    port: int,
    password: str,
    bcrypt_rounds: int,
    settings: dict[str, str] | None = None,
) -> procs.Server:
    """``settings`` are extra ``STACKBOX_*`` environment settings for this bench."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = environment(home, bcrypt_rounds)
    env.update(settings or {})
    return procs.launch(
        "stackbox",
        command(state_dir, port, password),
        port,
        workdir / "stackbox.log",
        env,
        workdir,
    )


def admin_auth(password: str) -> dict[str, Any]:
    """The body of a password token request for the admin, scoped to the admin project."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }


def password_costs(state_dir: Path) -> str:
    return procs.bcrypt_costs(state_dir / "stackbox.db", "SELECT hash FROM identity_password")
