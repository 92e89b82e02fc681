"""Where the runner reads its data and keeps its work."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "tempest"
WORK = REPO / ".tempest"
VENV = WORK / "venv"
# A Tempest workspace: etc/tempest.conf, logs/, and the stestr repository of every run.
WORKSPACE = WORK / "workspace"
CONF_FILE = WORKSPACE / "etc" / "tempest.conf"
LOGS = WORKSPACE / "logs"
LOCK = WORK / "lock"

STACKBOX = REPO / ".venv" / "bin" / "stackbox"
INTEROP = DATA / "interop-target.txt"
INTEROP_WAITING = DATA / "interop-waiting.toml"
CONF_EXAMPLE = DATA / "tempest.conf.example"
CLOUD_CONFIG = DATA / "cloud.toml"
FEATURES = DATA / "features.toml"
SERVICES = DATA / "services.toml"
EXCLUDE = DATA / "exclude.txt"
GUESTS = DATA / "guests.txt"
REQUIREMENTS = DATA / "requirements.txt"
