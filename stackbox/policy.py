"""Policy enforcement with oslo.policy.

Each service keeps its default rules in its own ``policies.py``; the app registers
them here at start, one enforcer per service. An operator's
``<state-dir>/policy/<service>.yaml`` overrides any rule of that service (read at
start: restart to apply a changed file).
oslo.policy always enforces ``scope_types``, so a rule limited to system and
project scope refuses a domain-scoped token before its check string runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from stackbox import context


class PolicyNotAuthorized(Exception):
    """The caller's token does not allow the action."""

    def __init__(self, action: str) -> None:
        super().__init__(f"You are not authorized to perform the requested action: {action}.")
        self.action = action


# One enforcer per service: services name their rules independently (Glance's and
# Neutron's rule names carry no prefix, and both define e.g. "default").
_enforcers: dict[str, oslo_policy.Enforcer] = {}


def init(
    service: str, rules: Iterable[oslo_policy.RuleDefault], policy_file: Path | None = None
) -> None:
    """Create ``service``'s enforcer with these defaults and an optional override file."""
    conf = cfg.ConfigOpts()
    conf([], project="stackbox", default_config_files=[], default_config_dirs=[])
    # use_conf=True is what makes load_rules() apply the registered defaults; a
    # missing policy file is fine (only the defaults apply).
    enforcer = oslo_policy.Enforcer(
        conf,
        policy_file=str(policy_file) if policy_file else "/nonexistent/policy.yaml",
        use_conf=True,
    )
    enforcer.register_defaults(list(rules))
    enforcer.load_rules()
    # Rules are read once, at start: otherwise every check stats the policy file and
    # its directories (a quarter of a millisecond each, on every request's hot path).
    enforcer.use_conf = False
    _enforcers[service] = enforcer


def enforce(
    ctx: context.RequestContext, action: str, target: dict[str, Any], *, service: str
) -> None:
    """Raise PolicyNotAuthorized unless ``ctx`` may perform ``action`` on ``target``."""
    enforcer = _enforcers.get(service)
    if enforcer is None:
        raise RuntimeError(f"policy.init() was not called for {service}")
    creds = ctx.policy_credentials()
    try:
        allowed = enforcer.enforce(action, target, creds, do_raise=False)
    except oslo_policy.InvalidScope:
        allowed = False
    if not allowed:
        raise PolicyNotAuthorized(action)


def has_rule(service: str, action: str) -> bool:
    enforcer = _enforcers.get(service)
    return enforcer is not None and action in enforcer.rules


def allowed(
    ctx: context.RequestContext, action: str, target: dict[str, Any], *, service: str
) -> bool:
    try:
        enforce(ctx, action, target, service=service)
    except PolicyNotAuthorized:
        return False
    return True


def dump(rules: Iterable[oslo_policy.RuleDefault]) -> str:
    """The defaults as a commented YAML policy file, for operators to copy and edit."""
    lines = []
    for rule in rules:
        description = getattr(rule, "description", "") or ""
        for text in description.splitlines():
            lines.append(f"# {text}")
        ops = getattr(rule, "operations", None) or []
        for op in ops:
            lines.append(f"# {op['method']}  {op['path']}")
        if rule.scope_types:
            lines.append(f"# Intended scope(s): {', '.join(rule.scope_types)}")
        lines.append(f'#"{rule.name}": "{rule.check_str}"')
        lines.append("")
    return "\n".join(lines)
