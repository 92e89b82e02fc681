"""Neutron's error body ``{"NeutronError": {"type", "message", "detail"}}`` and its
error types, with Neutron's wording and statuses."""

from __future__ import annotations

from typing import Any

from stackbox import rest

# rest's generic errors map onto Neutron's type names by status.
_DEFAULT_TYPES = {
    400: "BadRequest",
    401: "NotAuthorized",
    403: "PolicyNotAuthorized",
    404: "NotFound",
    405: "HTTPMethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    413: "RequestEntityTooLarge",
    415: "HTTPUnsupportedMediaType",
    500: "HTTPInternalServerError",
    501: "NotImplementedError",
    503: "ServiceUnavailable",
}


def render(error: rest.ApiError) -> tuple[int, Any, dict[str, str]]:
    kind = error.kind or _DEFAULT_TYPES.get(error.status, "NeutronException")
    body = {"NeutronError": {"type": kind, "message": error.message, "detail": ""}}
    return error.status, body, dict(error.headers)


def bad_request(message: str, kind: str = "BadRequest") -> rest.BadRequest:
    return rest.BadRequest(message, kind=kind)


def invalid_input(message: str) -> rest.BadRequest:
    return rest.BadRequest(f"Invalid input for operation: {message}.", kind="InvalidInput")


def not_found(kind: str, message: str) -> rest.NotFound:
    return rest.NotFound(message, kind=kind)


def conflict(kind: str, message: str) -> rest.Conflict:
    return rest.Conflict(message, kind=kind)


def in_use(kind: str, message: str) -> rest.Conflict:
    return rest.Conflict(message, kind=kind)


def forbidden(message: str, kind: str = "PolicyNotAuthorized") -> rest.Forbidden:
    return rest.Forbidden(message, kind=kind)


def over_quota(resources: list[str]) -> rest.Conflict:
    return rest.Conflict(f"Quota exceeded for resources: {sorted(resources)}.", kind="OverQuota")


def resource_not_found(resource: str, ident: str) -> rest.NotFound:
    """Neutron's "<Resource> <id> could not be found." with its type name."""
    names = {
        "network": "NetworkNotFound",
        "subnet": "SubnetNotFound",
        "port": "PortNotFound",
        "router": "RouterNotFound",
        "floatingip": "FloatingIPNotFound",
        "security_group": "SecurityGroupNotFound",
        "security_group_rule": "SecurityGroupRuleNotFound",
        "subnetpool": "SubnetPoolNotFound",
        "address_scope": "AddressScopeNotFound",
        "rbac_policy": "RbacPolicyNotFound",
        "agent": "AgentNotFound",
        "port_forwarding": "PortForwardingNotFound",
        "segment": "SegmentNotFound",
    }
    labels = {
        "floatingip": "Floating IP",
        "security_group": "Security group",
        "security_group_rule": "Security group rule",
        "subnetpool": "Subnet pool",
        "address_scope": "Address scope",
        "rbac_policy": "RBAC policy",
        "port_forwarding": "Port forwarding",
    }
    label = labels.get(resource, resource.capitalize())
    return rest.NotFound(
        f"{label} {ident} could not be found.", kind=names.get(resource, "NotFound")
    )
