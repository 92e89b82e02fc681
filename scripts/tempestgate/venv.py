"""Tempest's own virtualenv, built once under .tempest/venv and reused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tempestgate import paths

# Rebuilt whenever requirements.txt changes: the stamp holds a copy of it.
STAMP = paths.VENV / ".stackbox-requirements"


def tempest_bin(name: str) -> Path:
    return paths.VENV / "bin" / name


def ensure() -> None:
    wanted = paths.REQUIREMENTS.read_text()
    if STAMP.exists() and STAMP.read_text() == wanted and tempest_bin("tempest").exists():
        return
    print(f"tempest: installing Tempest into {paths.VENV}", flush=True)
    if paths.VENV.exists():
        shutil.rmtree(paths.VENV)
    python = shutil.which("python3") or sys.executable
    subprocess.run([python, "-m", "venv", str(paths.VENV)], check=True)
    # Plain pip: the machine's pip config supplies the package index and constraints.
    subprocess.run(
        [str(tempest_bin("python")), "-m", "pip", "install", "-qq", "-r", str(paths.REQUIREMENTS)],
        check=True,
    )
    STAMP.write_text(wanted)
