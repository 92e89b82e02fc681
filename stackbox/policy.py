"""Policy enforcement with oslo.policy.

Each service keeps its default rules in its own ``policies.py``; the app registers
them here at start. An operator's ``policy.yaml`` in the state dir overrides any
rule. oslo.policy always enforces ``scope_types``, so a rule limited to system and
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


_enforcer: oslo_policy.Enforcer | None = None


def init(rules: Iterable[oslo_policy.RuleDefault], policy_file: Path | None = None) -> None:
    """Create the process-wide enforcer with these defaults and an optional override file."""
    global _enforcer
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
    _enforcer = enforcer


def enforce(ctx: context.RequestContext, action: str, target: dict[str, Any]) -> None:
    """Raise PolicyNotAuthorized unless ``ctx`` may perform ``action`` on ``target``."""
    if _enforcer is None:
        raise RuntimeError("policy.init() was not called")
    creds = ctx.policy_credentials()
    try:
        allowed = _enforcer.enforce(action, target, creds, do_raise=False)
    except oslo_policy.InvalidScope:
        allowed = False
    if not allowed:
        raise PolicyNotAuthorized(action)


def allowed(ctx: context.RequestContext, action: str, target: dict[str, Any]) -> bool:
    try:
        enforce(ctx, action, target)
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
