"""A floating IP's DNS name and domain (dns-integration): Neutron's format checks."""

from __future__ import annotations

import re
from typing import Any

from stackbox.network import attributes as A

DNS_LABEL = re.compile(r"^([a-z0-9-]{1,63})$")
FQDN_MAX = 255


def _dns_format(value: str) -> None:
    """RFC 1123 labels (Neutron's check of DNS names and domains)."""
    trimmed = value[:-1] if value.endswith(".") else value
    reason = None
    labels = trimmed.split(".")
    if len(trimmed) > FQDN_MAX:
        reason = f"'{trimmed}' exceeds the {FQDN_MAX} character FQDN limit"
    for label in labels:
        if reason:
            break
        if not label:
            reason = "Encountered an empty component"
        elif label.startswith("-") or label.endswith("-"):
            reason = f"Name '{label}' must not start or end with a hyphen"
        elif not DNS_LABEL.match(label):
            reason = (
                f"Name '{label}' must be 1-63 characters long, each of which can only be "
                "alphanumeric or a hyphen"
            )
    if not reason and len(labels) > 1 and labels[-1].isdigit():
        reason = f"TLD '{labels[-1]}' must not be all numeric"
    if reason:
        raise A.Invalid(f"'{value}' not a valid PQDN or FQDN. Reason: {reason}")


def dns_name(value: Any) -> str:
    """A floating IP's DNS name: relative (the domain comes from dns_domain)."""
    if not isinstance(value, str):
        raise A.Invalid(f"'{value}' is not a valid string")
    value = value.lower()
    if value:
        if value.endswith("."):
            raise A.Invalid(f"'{value}' is a FQDN. It should be a relative domain name")
        _dns_format(value)
        if len(value) > FQDN_MAX - 3:
            raise A.Invalid(
                f"'{value}' contains {len(value)} characters. Adding a domain name will cause "
                f"it to exceed the maximum length of a FQDN of '{FQDN_MAX}'"
            )
    return value


def dns_domain(value: Any) -> str:
    if not isinstance(value, str):
        raise A.Invalid(f"'{value}' is not a valid string")
    value = value.lower()
    if value:
        if not value.endswith("."):
            raise A.Invalid(f"'{value}' is not a FQDN")
        _dns_format(value)
        if len(value) > FQDN_MAX - 2:
            raise A.Invalid(
                f"'{value}' contains {len(value)} characters. Adding a sub-domain will cause "
                f"it to exceed the maximum length of a FQDN of '{FQDN_MAX}'"
            )
    return value
