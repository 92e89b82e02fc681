"""``scripts/tempest <gate|full|REGEX>``: run Tempest against a fresh stackbox."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from tempestgate import cloud, conf, fileserver, paths, results, selection, services, venv

CONCURRENCY = 2
USAGE = """\
scripts/tempest gate    the interop-target lines and tempest.api.<service> of every service
                        the cloud's catalog offers (what `make test` runs)
scripts/tempest full    all of tempest.api for those services
scripts/tempest REGEX   the tests whose id matches REGEX
Logs, results and the generated tempest.conf stay under .tempest/workspace.
"""


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Unwind through the finally blocks so the cloud is stopped and its temp dir removed.
    raise SystemExit(128 + signum)


def _lock() -> Any:
    paths.WORK.mkdir(exist_ok=True)
    handle = open(paths.LOCK, "w")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("tempest: another scripts/tempest runs in this checkout; waiting", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _tempest(*args: str) -> list[str]:
    return [str(venv.tempest_bin("tempest")), "run", "--config-file", str(paths.CONF_FILE), *args]


def _ensure_workspace() -> None:
    """A Tempest workspace: `tempest run` writes .stestr.conf, listing needs the repository."""
    paths.WORKSPACE.mkdir(parents=True, exist_ok=True)
    if not (paths.WORKSPACE / ".stestr").exists():
        subprocess.run(
            [str(venv.tempest_bin("stestr")), "init"],
            cwd=paths.WORKSPACE,
            check=True,
            stdout=subprocess.DEVNULL,
        )


def list_tests() -> list[str]:
    done = subprocess.run(
        _tempest("--list-tests"), cwd=paths.WORKSPACE, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"tempest cannot list its tests:\n{done.stdout}\n{done.stderr}")
    return [line.strip() for line in done.stdout.splitlines() if line.startswith("tempest.")]


def _next_stream() -> int:
    """The number stestr gives the next run (0 in a new workspace)."""
    path = paths.WORKSPACE / ".stestr" / "next-stream"
    return int(path.read_text().strip()) if path.exists() else 0


def run_tests(load_list: Path) -> Path:
    """Run Tempest, echoing and logging its output; return this run's subunit file."""
    number = _next_stream()
    command = _tempest("--load-list", str(load_list), "--concurrency", str(CONCURRENCY))
    with open(paths.LOGS / "run.log", "w") as log:
        # Its own process group, so an aborted run stops the stestr workers too.
        proc = subprocess.Popen(
            command,
            cwd=paths.WORKSPACE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(line)
            proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
    stream = paths.WORKSPACE / ".stestr" / str(number)
    if not stream.exists():
        raise RuntimeError(f"tempest run left no results ({stream}); see {paths.LOGS}/run.log")
    return stream


def read_results(stream: Path) -> list[dict[str, Any]]:
    script = Path(__file__).with_name("subunit_json.py")
    with open(stream, "rb") as data:
        done = subprocess.run(
            [str(venv.tempest_bin("python")), str(script)], stdin=data, capture_output=True
        )
    if done.returncode != 0:
        raise RuntimeError(f"cannot read {stream}: {done.stderr.decode(errors='replace')}")
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def run(name: str) -> int:
    started = time.monotonic()
    known = services.load()
    venv.ensure()
    _ensure_workspace()
    paths.LOGS.mkdir(parents=True, exist_ok=True)
    (paths.LOGS / "tempest.log").unlink(missing_ok=True)
    with (
        fileserver.serving() as files,
        cloud.running(paths.LOGS / "stackbox.log", fetch_port=files.port) as box,
    ):
        available = services.present(known, set(box.catalog))
        offered = ", ".join(sorted(available)) or "nothing"
        print(f"tempest: the catalog offers {offered}", flush=True)
        off = conf.write(box, known, available, files)
        chosen = selection.choose(name, known, available, list_tests())
        if not chosen.tests:
            print(f"tempest: `{name}` selects no tests", file=sys.stderr)
            return 1
        load_list = paths.WORKSPACE / "selection.txt"
        load_list.write_text("\n".join(chosen.tests) + "\n")
        print(f"tempest: running {len(chosen.tests)} tests ({name})", flush=True)
        found = read_results(run_tests(load_list))
    verdict = results.judge(found, chosen)
    (paths.LOGS / "results.json").write_text(json.dumps(found, indent=1))
    print(results.report(name, verdict, chosen, off, time.monotonic() - started))
    print(
        f"logs: {paths.LOGS} (tempest.log, stackbox.log, run.log, results.json); "
        f"stestr: cd {paths.WORKSPACE} && {venv.tempest_bin('stestr')} last"
    )
    return 0 if verdict.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/tempest",
        description=__doc__,
        epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("selection", nargs="?", default="gate", help="gate, full, or a regex")
    parser.add_argument(
        "--features",
        action="store_true",
        help="print what tempest.conf turns off, and why (markdown, for the README)",
    )
    args = parser.parse_args(argv)
    if args.features:
        print(conf.features_markdown(services.load()))
        return 0
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    handle = _lock()
    try:
        return run(args.selection)
    except (cloud.CloudError, RuntimeError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"tempest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tempest: interrupted", file=sys.stderr)
        return 130
    finally:
        handle.close()
