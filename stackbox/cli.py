"""The ``stackbox`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from stackbox import __version__, config


def _settings(args: argparse.Namespace) -> config.Settings:
    flags = {
        "state_dir": getattr(args, "state_dir", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "admin_password": getattr(args, "admin_password", None),
        "log_level": getattr(args, "log_level", None),
    }
    return config.load(flags, getattr(args, "config", None))


def cmd_up(args: argparse.Namespace) -> int:
    from stackbox import allinone

    settings = _settings(args)
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.log_level != "debug":
        # Alembic reports every step at INFO; `up` says "database migrated" itself.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return allinone.up(settings)
    except allinone.StartupError as exc:
        print(f"stackbox: cannot start: {exc}", file=sys.stderr)
        return 1


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
    up.set_defaults(func=cmd_up)

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
