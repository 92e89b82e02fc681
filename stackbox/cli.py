"""The ``stackbox`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from stackbox import __version__, config


def _settings(args: argparse.Namespace) -> config.Settings:
    flags = {
        "state_dir": getattr(args, "state_dir", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "admin_password": getattr(args, "admin_password", None),
        "log_level": getattr(args, "log_level", None),
    }
    settings = config.load(flags, getattr(args, "config", None))
    if getattr(args, "no_defaults", False):
        settings.network.create_defaults = False
        settings.compute.create_defaults = False
    return settings


def _logging(settings: config.Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.log_level != "debug":
        # Alembic reports every step at INFO; `up` says "database migrated" itself.
        logging.getLogger("alembic").setLevel(logging.WARNING)


def _serve(settings: config.Settings) -> int:
    from stackbox import allinone

    _logging(settings)
    try:
        return allinone.up(settings)
    except allinone.StartupError as exc:
        print(f"stackbox: cannot start: {exc}", file=sys.stderr)
        return 1


def _has_bus(settings: config.Settings, who: str) -> bool:
    if settings.bus_url.startswith(("amqp://", "amqps://")):
        return True
    print(
        f"stackbox: {who} needs bus_url (amqp://user:password@broker/), the bus between the "
        "controller and the agents of every host (STACKBOX_BUS_URL or bus_url in the config "
        "file)",
        file=sys.stderr,
    )
    return False


def cmd_up(args: argparse.Namespace) -> int:
    return _serve(_settings(args))


def cmd_controller(args: argparse.Namespace) -> int:
    """The API and the controller, with the agents of every host on the AMQP bus."""
    settings = _settings(args)
    if not _has_bus(settings, "the controller"):
        return 2
    # No agents in this process: each host runs `stackbox agent`.
    settings.compute.driver = "none"
    settings.compute.fake_extra_hosts = 0
    settings.network.agent = "none"
    return _serve(settings)


def cmd_agent(args: argparse.Namespace) -> int:
    """This host's agents, reaching the controller over the AMQP bus."""
    import signal

    from stackbox.agent import node
    from stackbox.bus import amqp

    settings = _settings(args)
    if args.hostname:
        settings.hostname = args.hostname
    roles = [r.strip() for r in args.role.split(",") if r.strip()]
    unknown = sorted(set(roles) - set(node.ROLES))
    if unknown or not roles:
        print(f"stackbox: --role takes {', '.join(node.ROLES)}", file=sys.stderr)
        return 2
    if not _has_bus(settings, "the agent"):
        return 2
    _logging(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(
            f"stackbox agent: {settings.hostname} ({', '.join(roles)}) on "
            f"{amqp.redacted(settings.bus_url)}",
            flush=True,
        )
        await node.run(settings, roles, stop)

    try:
        asyncio.run(main())
    except amqp.Unreachable as exc:
        print(f"stackbox: cannot start: {exc}", file=sys.stderr)
        return 1
    print("stackbox agent: stopped", flush=True)
    return 0


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    from stackbox.web import assembly

    settings = _settings(args)
    repo = assembly.token_keys(settings)
    repo.ensure()
    index = repo.rotate()
    print(f"rotated {repo.path}: primary key is now {index}")
    return 0


def cmd_policy_dump(args: argparse.Namespace) -> int:
    from stackbox import policy
    from stackbox.web import assembly

    rules = assembly.policy_rules()
    if args.service not in rules:
        print(f"stackbox: no service {args.service!r}; one of {', '.join(rules)}", file=sys.stderr)
        return 2
    print(policy.dump(rules[args.service]))
    return 0


def _image_cache(args: argparse.Namespace) -> tuple[config.Settings, Any]:
    from stackbox.image import cache

    settings = _settings(args)
    root = settings.state_dir / cache.DIR_NAME
    return settings, cache.ImageCache(root, settings.image.cache_max_size)


def cmd_image_cache_list(args: argparse.Namespace) -> int:
    _, node_cache = _image_cache(args)
    cached = [e.as_glance() for e in node_cache.cached()]
    queued = node_cache.queued()
    if args.json:
        print(json.dumps({"cached_images": cached, "queued_images": queued}, indent=1))
        return 0
    print(f"cached ({len(cached)}, {sum(e['size'] for e in cached)} bytes):")
    for e in cached:
        accessed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["last_accessed"]))
        print(f"  {e['image_id']}  {e['size']:>12} bytes  {e['hits']:>4} hits  {accessed}")
    print(f"queued ({len(queued)}):")
    for image_id in queued:
        print(f"  {image_id}")
    return 0


def cmd_image_cache_queue(args: argparse.Namespace) -> int:
    from stackbox.image import cache

    _, node_cache = _image_cache(args)
    try:
        added = node_cache.queue(args.image_id)
    except cache.CacheError as exc:
        print(f"stackbox: {exc}", file=sys.stderr)
        return 2
    print(f"{args.image_id}: {'queued' if added else 'already cached or queued'}")
    return 0


def cmd_image_cache_prefetch(args: argparse.Namespace) -> int:
    from stackbox.image import cache, cache_remote

    settings, node_cache = _image_cache(args)
    clouds_yaml = args.clouds_yaml or settings.state_dir / "clouds.yaml"
    try:
        api = cache_remote.connect(clouds_yaml, args.cloud)
    except cache.CacheError as exc:
        print(f"stackbox: {exc}", file=sys.stderr)
        return 1
    fetched = cache.prefetch(node_cache, api)
    for item in fetched:
        print(f"{item.image_id}: {item.outcome}{f' ({item.detail})' if item.detail else ''}")
    return 1 if any(f.outcome in ("failed", "invalid") for f in fetched) else 0


def cmd_image_cache_prune(args: argparse.Namespace) -> int:
    _, node_cache = _image_cache(args)
    removed = node_cache.prune(args.max_size)
    for entry in removed:
        print(f"{entry.image_id}: pruned ({entry.size} bytes)")
    print(f"cache size {node_cache.total_size()} bytes")
    return 0


def cmd_image_cache_clean(args: argparse.Namespace) -> int:
    _, node_cache = _image_cache(args)
    for name, reason in node_cache.clean(args.grace):
        print(f"{name}: removed ({reason})")
    return 0


def _image_parsers(sub: Any) -> None:
    image = sub.add_parser("image", help="image administration")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    cache_parser = image_sub.add_parser("cache", help="this node's image cache")
    csub = cache_parser.add_subparsers(dest="cache_command", required=True)
    listing = csub.add_parser("list", help="cached and queued images")
    listing.add_argument("--json", action="store_true", help="print JSON (Glance's shape)")
    listing.set_defaults(func=cmd_image_cache_list)
    queue = csub.add_parser("queue", help="queue an image for the next prefetch")
    queue.add_argument("image_id")
    queue.set_defaults(func=cmd_image_cache_queue)
    prefetch = csub.add_parser("prefetch", help="fetch queued images through the Image API")
    prefetch.add_argument("--cloud", default="stackbox-admin", help="clouds.yaml entry to use")
    prefetch.add_argument(
        "--clouds-yaml", type=Path, help="credentials file (default: <state-dir>/clouds.yaml)"
    )
    prefetch.set_defaults(func=cmd_image_cache_prefetch)
    prune = csub.add_parser("prune", help="drop least recently used images down to a size")
    prune.add_argument(
        "--max-size", type=int, help="bytes to keep at most (default: image.cache_max_size)"
    )
    prune.set_defaults(func=cmd_image_cache_prune)
    clean = csub.add_parser("clean", help="remove invalid entries and stalled downloads")
    clean.add_argument(
        "--grace",
        type=float,
        default=3600.0,
        help="seconds after which an unfinished download counts as stalled (default 3600)",
    )
    clean.set_defaults(func=cmd_image_cache_clean)
    for command in (listing, queue, prefetch, prune, clean):
        _state_args(command)


def _state_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, help="where the database, keys and configs live")
    parser.add_argument(
        "--config", type=Path, help="TOML config file (default: <state-dir>/stackbox.toml)"
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="stackbox", description=__doc__)
    top.add_argument("--version", action="version", version=f"stackbox {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the all-in-one cloud")
    _state_args(up)
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="port to listen on (default 8080)")
    up.add_argument("--admin-password", help="password of the admin user (default: generated)")
    up.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    up.add_argument(
        "--no-defaults",
        action="store_true",
        help="skip the first-start networks (public, private, router1)",
    )
    up.set_defaults(func=cmd_up)

    controller = sub.add_parser(
        "controller", help="the API and the controller; agents run on hosts (needs bus_url)"
    )
    _state_args(controller)
    controller.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    controller.add_argument("--port", type=int, help="port to listen on (default 8080)")
    controller.add_argument("--admin-password", help="password of the admin user")
    controller.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    controller.add_argument(
        "--no-defaults", action="store_true", help="skip the first-start networks and flavors"
    )
    controller.set_defaults(func=cmd_controller)

    agent = sub.add_parser("agent", help="this host's agents (needs the controller's bus_url)")
    _state_args(agent)
    agent.add_argument("--hostname", help="this host's name (default: the system's)")
    agent.add_argument(
        "--role", default="compute,network", help="compute, network or both (default both)"
    )
    agent.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    agent.set_defaults(func=cmd_agent)

    identity = sub.add_parser("identity", help="identity administration")
    isub = identity.add_subparsers(dest="identity_command", required=True)
    rotate = isub.add_parser("rotate-keys", help="rotate the Fernet token keys")
    _state_args(rotate)
    rotate.set_defaults(func=cmd_rotate_keys)

    pol = sub.add_parser("policy", help="policy defaults")
    psub = pol.add_subparsers(dest="policy_command", required=True)
    dump = psub.add_parser("dump", help="print a service's default rules as a policy file")
    dump.add_argument(
        "service",
        nargs="?",
        default="identity",
        help="identity (default) or image; the file goes to <state-dir>/policy/<service>.yaml",
    )
    dump.set_defaults(func=cmd_policy_dump)
    _image_parsers(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except config.ConfigError as exc:
        print(f"stackbox: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
