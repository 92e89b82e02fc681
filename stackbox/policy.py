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

# Decisions already made. Rules are fixed after init() and checks are pure functions
# of (rule, target, credentials), so an answer can be reused; oslo.policy spends
# ~0.1 ms per check (it inspects each check's signature every time), and a port
# create or a server listing asks the same few questions again and again.
_decisions: dict[tuple[Any, ...], bool] = {}
_DECISIONS_MAX = 8192


class _Unhashable(Exception):
    pass


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a target's value (dicts and lists are frozen deeply)."""
    if isinstance(value, bool):
        return ("bool", value)  # True == 1 as keys, but "%(x)s" renders them differently
    if isinstance(value, str | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return tuple(sorted(((k, _frozen(v)) for k, v in value.items()), key=lambda kv: str(kv[0])))
    if isinstance(value, list | tuple | set | frozenset):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    raise _Unhashable


def _decision_key(
    service: str, action: str, target: dict[str, Any], ctx: context.RequestContext
) -> tuple[Any, ...] | None:
    try:
        frozen_target = _frozen(target)
    except _Unhashable:
        return None
    who = (
        ctx.user_id,
        ctx.user_domain_id,
        ctx.project_id,
        ctx.project_name,
        ctx.project_domain_id,
        ctx.domain_id,
        ctx.domain_name,
        ctx.system_scope,
        ctx.roles,
        ctx.trust_id,
        ctx.trustor_user_id,
        ctx.trustee_user_id,
        ctx.is_admin_project,
    )
    return (service, action, frozen_target, who)


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
    _decisions.clear()


def enforce(
    ctx: context.RequestContext, action: str, target: dict[str, Any], *, service: str
) -> None:
    """Raise PolicyNotAuthorized unless ``ctx`` may perform ``action`` on ``target``."""
    enforcer = _enforcers.get(service)
    if enforcer is None:
        raise RuntimeError(f"policy.init() was not called for {service}")
    key = _decision_key(service, action, target, ctx)
    allowed = _decisions.get(key) if key is not None else None
    if allowed is None:
        try:
            allowed = bool(
                enforcer.enforce(action, target, ctx.policy_credentials(), do_raise=False)
            )
        except oslo_policy.InvalidScope:
            allowed = False
        if key is not None:
            if len(_decisions) >= _DECISIONS_MAX:
                _decisions.clear()
            _decisions[key] = allowed
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
