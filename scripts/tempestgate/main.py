"""``scripts/tempest <gate|full|REGEX>``: run Tempest against a fresh stackbox."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from tempestgate import (
    cloud,
    compute,
    conf,
    fileserver,
    guestnet,
    network,
    paths,
    results,
    selection,
    services,
    venv,
)

CONCURRENCY = 2
USAGE = """\
scripts/tempest gate    the interop-target lines and tempest.api.<service> of every service
                        the cloud's catalog offers (what `make test` runs)
scripts/tempest full    all of tempest.api for those services
scripts/tempest guests  the interop tests that log in to a real guest, against a cloud with
                        the Linux data plane and the qemu driver, Tempest in a namespace
                        of its own (root only; what `make test` runs after the gate)
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


def run_tests(load_list: Path, wrap: Callable[[list[str]], list[str]] | None = None) -> Path:
    """Run Tempest, echoing and logging its output; return this run's subunit file.
    ``wrap``: what the command runs inside (a network namespace)."""
    number = _next_stream()
    command = _tempest("--load-list", str(load_list), "--concurrency", str(CONCURRENCY))
    if wrap is not None:
        command = wrap(command)
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


# The guests' cloud: cloud.toml with the Linux data plane and real machines, one host.
GUEST_SETTINGS = {
    "STACKBOX_NETWORK_AGENT": "linux",
    "STACKBOX_COMPUTE_DRIVER": "qemu",
    "STACKBOX_COMPUTE_FAKE_EXTRA_HOSTS": "0",
}


def guest_options() -> dict[tuple[str, str], str]:
    """tempest.conf for logging in to guests: keys, floating IPs, the guest's user."""
    return {
        ("validation", "run_validation"): "true",
        ("validation", "connect_method"): "floating",
        ("validation", "auth_method"): "keypair",
        ("validation", "image_ssh_user"): "cirros",
        ("validation", "ip_version_for_ssh"): "4",
        ("validation", "ssh_timeout"): "180",
        # Tempest retries until ssh_timeout; a first try sent before the router has the
        # floating IP's NAT would otherwise hang for the default 60 s.
        ("validation", "connect_timeout"): "10",
        ("validation", "ping_timeout"): "120",
        ("network", "floating_network_name"): network.PUBLIC_NAME,
        # m1.micro (256 MB): the guest's kernel wants more room than m1.nano's 64 MB; resizes
        # go to ds512M (DevStack's id d1, made on first start).
        ("compute", "flavor_ref"): compute.ALT_FLAVOR.id,
        ("compute", "flavor_ref_alt"): "d1",
        # The qemu driver cannot set a running guest's password (no guest agent): Tempest
        # would log in with the new one.
        ("compute-feature-enabled", "change_password"): "false",
        ("compute", "min_compute_nodes"): "1",
    }


def run(name: str) -> int:
    started = time.monotonic()
    known = services.load()
    venv.ensure()
    _ensure_workspace()
    paths.LOGS.mkdir(parents=True, exist_ok=True)
    (paths.LOGS / "tempest.log").unlink(missing_ok=True)
    guests = name == "guests"
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(guestnet.namespace()) if guests else None
        files = stack.enter_context(fileserver.serving())
        box = stack.enter_context(
            cloud.running(
                paths.LOGS / "stackbox.log",
                fetch_port=files.port,
                host=guestnet.API_HOST if guests else "127.0.0.1",
                settings=GUEST_SETTINGS if guests else None,
            )
        )
        available = services.present(known, set(box.catalog))
        offered = ", ".join(sorted(available)) or "nothing"
        print(f"tempest: the catalog offers {offered}", flush=True)
        off = conf.write(box, known, available, files, extra=guest_options() if guests else None)
        chosen = selection.choose(name, known, available, list_tests())
        if not chosen.tests:
            print(f"tempest: `{name}` selects no tests", file=sys.stderr)
            return 1
        load_list = paths.WORKSPACE / "selection.txt"
        load_list.write_text("\n".join(chosen.tests) + "\n")
        print(f"tempest: running {len(chosen.tests)} tests ({name})", flush=True)
        if ns is not None:
            public_id = network.options(box)[("network", "public_network_id")]
            gateway = f"{network.PUBLIC_GATEWAY}/{network.PUBLIC_CIDR.split('/')[1]}"
            stack.enter_context(guestnet.outside(ns, public_id, gateway))
        found = read_results(run_tests(load_list, ns.command if ns is not None else None))
    verdict = results.judge(found, chosen)
    result_file = "results-guests.json" if guests else "results.json"
    (paths.LOGS / result_file).write_text(json.dumps(found, indent=1))
    print(results.report(name, verdict, chosen, off, time.monotonic() - started))
    print(
        f"logs: {paths.LOGS} (tempest.log, stackbox.log, run.log, {result_file}); "
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
