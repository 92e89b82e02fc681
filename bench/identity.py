"""Identity benchmark: stackbox against upstream Keystone, in one run, on this machine.

Measures token issue (password, project scope) and token validate throughput
and latency at each concurrency level, the time from launching the server to
its first 200 on /identity/v3, and the server's idle memory before and after
the load. Prints figures and whether the issue's targets are met; it never
fails on a timing.

    .venv/bin/python bench/identity.py                 # stackbox only
    .venv/bin/python bench/identity.py --upstream      # and Keystone 30 under uwsgi
    make bench ARGS="--upstream --duration 10"
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import figures
import procs
import stackbox_server
import upstream_keystone

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VERSION_PATH = "/identity/v3"
TOKENS_PATH = "/identity/v3/auth/tokens"


def auth_body(password: str) -> str:
    return json.dumps(
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"id": "default"},
                            "password": password,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
    )


def issue_token(port: int, password: str) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "POST",
            TOKENS_PATH,
            body=auth_body(password),
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        body = response.read()
        token = response.getheader("X-Subject-Token")
    finally:
        conn.close()
    if response.status != 201 or not token:
        raise procs.BenchError(f"token issue answered {response.status}: {body[:300]!r}")
    return token


def load_specs(port: int, password: str) -> dict[str, dict[str, Any]]:
    """What each operation sends; validate checks a second token with the first."""
    admin_token, subject_token = issue_token(port, password), issue_token(port, password)
    return {
        "issue": {
            "method": "POST",
            "path": TOKENS_PATH,
            "headers": {"Content-Type": "application/json", "Accept": "application/json"},
            "body": auth_body(password),
            "expect": 201,
        },
        "validate": {
            "method": "GET",
            "path": TOKENS_PATH,
            "headers": {
                "X-Auth-Token": admin_token,
                "X-Subject-Token": subject_token,
                "Accept": "application/json",
            },
            "expect": 200,
        },
    }


def run_load(
    args: argparse.Namespace, server: procs.Server, op: dict[str, Any], concurrency: int
) -> dict[str, Any]:
    spec = {
        **op,
        "host": "127.0.0.1",
        "port": server.port,
        "concurrency": concurrency,
        "duration": None if args.requests else args.duration,
        "requests": args.requests,
        "warmup": args.warmup,
        "client": args.client,
        "timeout": 120,
        "server_pids": server.pids(),
    }
    limit = 600 + (args.duration or 0)
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "httpload.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=limit,
        check=False,
    )
    if done.returncode != 0:
        raise procs.BenchError(f"load generator failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclasses.dataclass
class Started:
    """A server answering requests, and what the bench knows about it."""

    side: figures.Side
    server: procs.Server
    password: str


def measure(args: argparse.Namespace, servers: list[Started]) -> None:
    """Run every load on each server in turn, so passing noise on the machine hits both alike."""
    ops = [load_specs(s.server.port, s.password) for s in servers]
    for name in ("validate", "issue"):
        for concurrency in args.concurrency:
            for started, op in zip(servers, ops, strict=True):
                side = started.side
                say(f"  {side.name}: token {name} at concurrency {concurrency} ...")
                result = run_load(args, started.server, op[name], concurrency)
                side.loads[(name, concurrency)] = result
                say(f"    {figures.one_line(result)}")
    for started in servers:
        started.side.memory_loaded = procs.settled_memory(started.server)


def timed_starts(
    count: int, start: Callable[[int], procs.Server], keep_last: bool
) -> tuple[list[float], list[float], procs.Server | None]:
    """Launch ``count`` times, timing launch to first 200; keep the last one running if asked.

    Returns the seconds, the CPU other processes took meanwhile (% of a core), the server.
    """
    times: list[float] = []
    others: list[float] = []
    kept = None
    for i in range(count):
        window = procs.CpuWindow()
        server = start(i)
        try:
            times.append(procs.wait_ready(server, VERSION_PATH))
            others.append(window.others_pct(server.pids()))
        except BaseException:
            procs.stop(server)
            raise
        if keep_last and i == count - 1:
            kept = server
        else:
            procs.stop(server)
    return times, others, kept


def start_stackbox(args: argparse.Namespace, root: Path, stack: ExitStack) -> Started:
    side = figures.Side("stackbox")
    password = secrets.token_urlsafe(12)
    workdir = root / "stackbox"
    workdir.mkdir()
    state_dir = workdir / "state"

    def first(i: int) -> procs.Server:
        # The first one leaves the state dir that the warm starts reuse.
        state = state_dir if i == 0 else workdir / f"first-{i}"
        return stackbox_server.launch(
            workdir, state, procs.free_port(), password, args.bcrypt_rounds
        )

    def warm(i: int) -> procs.Server:
        return stackbox_server.launch(
            workdir, state_dir, procs.free_port(), password, args.bcrypt_rounds
        )

    say("stackbox: first starts (empty state dir) ...")
    side.first_start, side.first_others, _ = timed_starts(args.starts, first, keep_last=False)
    say("stackbox: warm starts (existing state dir) ...")
    side.warm_start, side.warm_others, server = timed_starts(args.starts, warm, keep_last=True)
    assert server is not None
    stack.callback(procs.stop, server)
    side.bcrypt = stackbox_server.password_costs(state_dir)
    side.memory_started = procs.settled_memory(server)
    return Started(side, server, password)


def start_upstream(args: argparse.Namespace, root: Path, venv: Path, stack: ExitStack) -> Started:
    side = figures.Side("upstream")
    password = secrets.token_urlsafe(12)
    workdir = root / "keystone"
    workdir.mkdir()

    def start(i: int) -> procs.Server:
        port = procs.free_port()
        return procs.launch(
            "keystone (uwsgi)",
            upstream_keystone.server_command(venv, workdir, port),
            port,
            workdir / "uwsgi.log",
            dict(os.environ),
            workdir,
        )

    say("upstream: keystone-manage db_sync, fernet_setup, credential_setup, bootstrap ...")
    window = procs.CpuWindow()
    # The catalog URL only shapes the token body; the port changes per start.
    side.prepare = upstream_keystone.prepare(
        venv, workdir, "http://127.0.0.1:5000/identity", password, args.bcrypt_rounds
    )
    prepare_others = window.others_pct([])
    say(f"  took {side.prepare:.1f}s")
    say("upstream: starts (prepared database) ...")
    side.warm_start, side.warm_others, server = timed_starts(args.starts, start, keep_last=True)
    assert server is not None
    stack.callback(procs.stop, server)
    # An empty state dir costs keystone-manage's steps before the server starts.
    side.first_start = [side.prepare + side.warm_start[0]]
    side.first_others = [max(prepare_others, side.warm_others[0])]
    side.bcrypt = upstream_keystone.password_costs(workdir)
    side.memory_started = procs.settled_memory(server)
    return Started(side, server, password)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine() -> list[str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"machine: {os.cpu_count()} CPUs ({model or platform.machine()}), "
        f"Linux {platform.release()}, Python {platform.python_version()}",
    ]


def levels(text: str) -> list[int]:
    found = sorted({int(part) for part in text.split(",") if part.strip()})
    if not found or found[0] < 1:
        raise argparse.ArgumentTypeError("concurrency levels are positive integers, e.g. 1,8")
    return found


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream", action="store_true", help="also bench Keystone 30 (uwsgi)")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per load measurement (default 5)"
    )
    parser.add_argument(
        "--requests", type=int, help="send this many requests per measurement instead"
    )
    parser.add_argument(
        "--concurrency", type=levels, default=[1, 8], help="levels, comma separated (default 1,8)"
    )
    parser.add_argument(
        "--starts", type=int, default=3, help="timed starts per kind, median shown (default 3)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed requests per connection (default 1)"
    )
    parser.add_argument("--client", choices=["http.client", "httpx"], default="http.client")
    parser.add_argument(
        "--bcrypt-rounds",
        type=int,
        default=12,
        help="password hash cost on both sides (default 12, the targets' cost)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=REPO / ".bench",
        help="where the upstream venv is kept between runs (default .bench/)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    args = parser.parse_args(argv)
    if args.starts < 1 or args.warmup < 0 or (args.requests is not None and args.requests < 1):
        parser.error("--starts and --requests must be at least 1, --warmup at least 0")
    if not 4 <= args.bcrypt_rounds <= 31:
        parser.error("--bcrypt-rounds must be between 4 and 31 (bcrypt's own limits)")
    return args


def _terminated(signum: int, frame: object) -> None:
    # Unwind like Ctrl-C so the servers are stopped and the temp dir handled.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _terminated)
    began = time.monotonic()
    header = machine()
    header.append(
        f"load average when the bench began: {procs.load_average():.2f} "
        "(other work on the machine disturbs every figure; see the others columns)"
    )
    workload = (
        f"{args.requests} requests" if args.requests else f"{args.duration:g}s"
    ) + f" per measurement, concurrency {','.join(map(str, args.concurrency))}"
    header.append(f"load: {workload}, client {args.client} (one process per measurement)")
    root = Path(tempfile.mkdtemp(prefix="stackbox-bench-"))
    failed = False
    try:
        venv = None
        if args.upstream:
            say(f"upstream: venv in {upstream_keystone.venv_dir(args.cache_dir)} ...")
            build_log = args.cache_dir / "keystone-venv-build.log"
            venv, built = upstream_keystone.ensure_venv(args.cache_dir, build_log)
            say(f"  built in {built:.0f}s" if built else "  cached")
            found = upstream_keystone.versions(venv)
            header.append("upstream: " + ", ".join(f"{k} {v}" for k, v in found.items()))
            header.append(
                f"upstream server: uwsgi {upstream_keystone.WORKERS} processes x "
                f"{upstream_keystone.THREADS} thread, lazy-apps, HTTP router with keep-alive, "
                "SQLite, Fernet, no cache"
            )
        with ExitStack() as stack:
            servers = [start_stackbox(args, root, stack)]
            if venv is not None:
                servers.append(start_upstream(args, root, venv, stack))
            measure(args, servers)
        sides = [started.side for started in servers]
    except procs.BenchError as exc:
        failed = True
        say(f"bench: {exc}")
        return 1
    except KeyboardInterrupt:
        say("bench: interrupted")
        return 130
    finally:
        # The servers are stopped by now; their logs explain a failure.
        if args.keep or failed:
            say(f"bench: logs and databases kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    header.append(f"bench took {time.monotonic() - began:.0f}s")
    print(figures.report(header, args.concurrency, args.bcrypt_rounds, sides))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
