"""Domain-specific configuration: per-domain ``identity`` and ``ldap`` options, as Keystone.

Only options a domain-specific identity driver reads may be stored, each named
explicitly (a new LDAP option is not configurable per domain until listed here).
Sensitive options (the LDAP password) are stored but never read back. Errors in a
configuration are 403 ``Invalid domain specific configuration``, as in Keystone.
The ``security_compliance`` group is read-only: it shows the password rules this
cloud enforces, so clients can tell users what a password must look like.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.identity import models, resources, runtime

ALLOWED: dict[str, tuple[str, ...]] = {
    "identity": ("driver", "list_limit"),
    "ldap": (
        "url",
        "user",
        "suffix",
        "query_scope",
        "page_size",
        "alias_dereferencing",
        "debug_level",
        "chase_referrals",
        "user_tree_dn",
        "user_filter",
        "user_objectclass",
        "user_id_attribute",
        "user_name_attribute",
        "user_mail_attribute",
        "user_description_attribute",
        "user_pass_attribute",
        "user_enabled_attribute",
        "user_enabled_invert",
        "user_enabled_mask",
        "user_enabled_default",
        "user_attribute_ignore",
        "user_default_project_id_attribute",
        "user_enabled_emulation",
        "user_enabled_emulation_dn",
        "user_enabled_emulation_use_group_config",
        "user_additional_attribute_mapping",
        "group_tree_dn",
        "group_filter",
        "group_objectclass",
        "group_id_attribute",
        "group_name_attribute",
        "group_members_are_ids",
        "group_member_attribute",
        "group_desc_attribute",
        "group_attribute_ignore",
        "group_additional_attribute_mapping",
        "tls_cacertfile",
        "tls_cacertdir",
        "use_tls",
        "tls_req_cert",
        "use_pool",
        "pool_size",
        "pool_retry_max",
        "pool_retry_delay",
        "pool_connection_timeout",
        "pool_connection_lifetime",
        "use_auth_pool",
        "auth_pool_size",
        "auth_pool_connection_lifetime",
    ),
}
SENSITIVE: dict[str, tuple[str, ...]] = {"identity": (), "ldap": ("password",)}

# Keystone's defaults for the LDAP options (unset ones are None).
_LDAP_DEFAULTS: dict[str, Any] = {
    "url": "ldap://localhost",
    "suffix": "cn=example,cn=com",
    "query_scope": "one",
    "page_size": 0,
    "alias_dereferencing": "default",
    "user_objectclass": "inetOrgPerson",
    "user_id_attribute": "cn",
    "user_name_attribute": "sn",
    "user_mail_attribute": "mail",
    "user_description_attribute": "description",
    "user_pass_attribute": "userPassword",
    "user_enabled_attribute": "enabled",
    "user_enabled_invert": False,
    "user_enabled_mask": 0,
    "user_enabled_default": "True",
    "user_attribute_ignore": ["default_project_id"],
    "user_enabled_emulation": False,
    "user_enabled_emulation_use_group_config": False,
    "user_additional_attribute_mapping": [],
    "group_objectclass": "groupOfNames",
    "group_id_attribute": "cn",
    "group_name_attribute": "ou",
    "group_members_are_ids": False,
    "group_member_attribute": "member",
    "group_desc_attribute": "description",
    "group_attribute_ignore": [],
    "group_additional_attribute_mapping": [],
    "use_tls": False,
    "tls_req_cert": "demand",
    "use_pool": True,
    "pool_size": 10,
    "pool_retry_max": 3,
    "pool_retry_delay": 0.1,
    "pool_connection_timeout": -1,
    "pool_connection_lifetime": 600,
    "use_auth_pool": True,
    "auth_pool_size": 100,
    "auth_pool_connection_lifetime": 60,
}
COMPLIANCE_GROUP = "security_compliance"
COMPLIANCE_READABLE = ("password_regex", "password_regex_description")
DEFAULT_DOMAIN_ID = "default"


def invalid(reason: str) -> rest.Forbidden:
    return rest.Forbidden(f"Invalid domain specific configuration: {reason}.")


def not_found(domain_id: str, what: str) -> rest.NotFound:
    return rest.NotFound(f"Could not find {what} in domain configuration for domain {domain_id}.")


def _what(group: str | None, option: str | None) -> str:
    if option:
        return f"option {option} in group {group}"
    if group:
        return f"group {group}"
    return "any options"


def defaults(group: str) -> dict[str, Any]:
    """What an option is when a domain does not set it: this cloud's own values."""
    if group == "identity":
        return {"driver": "sql", "list_limit": runtime.get().settings.list_limit or None}
    return {option: _LDAP_DEFAULTS.get(option) for option in ALLOWED[group]}


def check_group_option(group: str | None, option: str | None) -> None:
    if group is None:
        return
    if group not in ALLOWED and group not in SENSITIVE:
        raise invalid(f"Group {group} is not supported for domain specific configurations")
    if option is not None and option not in ALLOWED.get(group, ()) + SENSITIVE.get(group, ()):
        raise invalid(
            f"Option {option} in group {group} is not supported for domain specific configurations"
        )


def check_config(config: dict[str, Any]) -> None:
    if not config:
        raise invalid("No options specified")
    for group, options in config.items():
        if not options or not isinstance(options, dict):
            raise invalid(
                f"The value of group {group} specified in the config should be a dictionary "
                "of options"
            )
        for option in options:
            check_group_option(group, option)


def _config_of(request: rest.ApiRequest) -> dict[str, Any]:
    body = request.body if request.body is not None else {}
    if not isinstance(body, dict):
        raise rest.BadRequest("Invalid input: the request body must be an object")
    config = body.get("config", {})
    if not isinstance(config, dict):
        raise rest.BadRequest("Invalid input for field 'config': it must be an object")
    return config


def _rows(
    session: Session,
    domain_id: str,
    group: str | None = None,
    option: str | None = None,
    sensitive: bool | None = False,
) -> list[models.DomainConfig]:
    """Stored options; ``sensitive=None`` includes both kinds."""
    query = select(models.DomainConfig).where(models.DomainConfig.domain_id == domain_id)
    if group is not None:
        query = query.where(models.DomainConfig.group == group)
    if option is not None:
        query = query.where(models.DomainConfig.option == option)
    if sensitive is not None:
        query = query.where(models.DomainConfig.sensitive.is_(sensitive))
    return list(session.scalars(query.order_by(models.DomainConfig.group)))


def _as_config(rows: list[models.DomainConfig]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for row in rows:
        config.setdefault(row.group, {})[row.option] = row.value
    return config


def _write(session: Session, domain_id: str, config: dict[str, Any]) -> None:
    for group, options in config.items():
        for option, value in options.items():
            row = session.get(models.DomainConfig, (domain_id, group, option))
            if row is None:
                row = models.DomainConfig(domain_id=domain_id, group=group, option=option)
                session.add(row)
            row.value = value
            row.sensitive = option in SENSITIVE.get(group, ())
    session.flush()


# Handlers -------------------------------------------------------------------


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    """PUT replaces the whole configuration: 201 when there was none, else 200."""
    resources.enforce(request, "identity:create_domain_config")
    domain_id = request.path_params["domain_id"]
    resources.get_domain(session, domain_id)
    config = _config_of(request)
    check_config(config)
    existing = _rows(session, domain_id, sensitive=None)
    for row in existing:
        session.delete(row)
    session.flush()
    _write(session, domain_id, config)
    runtime.changed(session)
    body = {"config": _as_config(_rows(session, domain_id))}
    return rest.ApiResponse(200 if existing else 201, body)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    domain_id = request.path_params["domain_id"]
    group = request.path_params.get("group")
    option = request.path_params.get("option")
    if group == COMPLIANCE_GROUP:
        config = _compliance(request, domain_id, option)
        resources.get_domain(session, domain_id)
        return {"config": config}
    resources.enforce(request, "identity:get_domain_config")
    resources.get_domain(session, domain_id)
    check_group_option(group, option)
    rows = _rows(session, domain_id, group, option)
    if not rows:
        raise not_found(domain_id, _what(group, option))
    if option is not None:
        return {"config": {option: rows[0].value}}
    return {"config": _as_config(rows)}


def _compliance(request: rest.ApiRequest, domain_id: str, option: str | None) -> dict[str, Any]:
    resources.enforce(request, "identity:get_security_compliance_domain_config")
    if domain_id != DEFAULT_DOMAIN_ID:
        raise invalid(
            "Reading security compliance information for any domain other than the default "
            "domain is not allowed or supported"
        )
    if option is not None and option not in COMPLIANCE_READABLE:
        raise invalid(
            "Reading security compliance values other than password_regex and "
            "password_regex_description is not allowed"
        )
    settings = runtime.get().settings
    values = {
        "password_regex": settings.password_regex or None,
        "password_regex_description": settings.password_regex_description or None,
    }
    if option is not None:
        return {option: values[option]}
    return {COMPLIANCE_GROUP: values}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    """PATCH merges options in; a group or option in the path must already be set."""
    resources.enforce(request, "identity:update_domain_config")
    domain_id = request.path_params["domain_id"]
    group = request.path_params.get("group")
    option = request.path_params.get("option")
    resources.get_domain(session, domain_id)
    config = _config_of(request)
    if group is not None and option is not None:
        config = {group: config}
    check_config(config)
    check_group_option(group, option)
    if group is not None:
        _check_targeted_update(session, domain_id, config, group, option)
    _write(session, domain_id, config)
    runtime.changed(session)
    return {"config": _as_config(_rows(session, domain_id))}


def _check_targeted_update(
    session: Session, domain_id: str, config: dict[str, Any], group: str, option: str | None
) -> None:
    if len(config) != 1 or (option is not None and len(config.get(group) or {}) != 1):
        if option is not None:
            raise invalid(
                f"Trying to update option {option} in group {group}, so that, and only that, "
                "option must be specified  in the config"
            )
        raise invalid(
            f"Trying to update group {group}, so that, and only that, group must be "
            "specified in the config"
        )
    if group not in config:
        raise invalid(
            f"request to update group {group}, but config provided contains group "
            f"{next(iter(config))} instead"
        )
    if option is not None and option not in config[group]:
        raise invalid(
            f"Trying to update option {option} in group {group}, but config provided "
            f"contains option {next(iter(config[group]))} instead"
        )
    if not _rows(session, domain_id, group, option, sensitive=None):
        raise not_found(domain_id, _what(group, option))


def remove(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:delete_domain_config")
    domain_id = request.path_params["domain_id"]
    group = request.path_params.get("group")
    option = request.path_params.get("option")
    resources.get_domain(session, domain_id)
    check_group_option(group, option)
    if group is not None and not _rows(session, domain_id, group, option, sensitive=None):
        # A partial delete names something that must exist.
        raise not_found(domain_id, _what(group, option))
    for row in _rows(session, domain_id, group, option, sensitive=None):
        session.delete(row)
    runtime.changed(session)


def show_default(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_domain_config_default")
    group = request.path_params.get("group")
    option = request.path_params.get("option")
    check_group_option(group, option)
    if group is None:
        return {"config": {name: defaults(name) for name in ALLOWED}}
    if option is None:
        return {"config": {group: defaults(group)}}
    if option not in ALLOWED[group]:
        raise invalid(f"Reading the default for option {option} in group {group} is not supported")
    return {"config": {option: defaults(group)[option]}}


_DOMAIN = "/v3/domains/{domain_id}/config"
_DEFAULT = "/v3/domains/config"

ROUTES = [
    # The defaults first: their literal segments must win over a domain id.
    rest.Route("GET", _DEFAULT + "/default", show_default),
    rest.Route("GET", _DEFAULT + "/{group}/default", show_default),
    rest.Route("GET", _DEFAULT + "/{group}/{option}/default", show_default),
    rest.Route("PUT", _DOMAIN, create),
    rest.Route("GET", _DOMAIN, show),
    rest.Route("PATCH", _DOMAIN, update),
    rest.Route("DELETE", _DOMAIN, remove),
    rest.Route("GET", _DOMAIN + "/{group}", show),
    rest.Route("PATCH", _DOMAIN + "/{group}", update),
    rest.Route("DELETE", _DOMAIN + "/{group}", remove),
    rest.Route("GET", _DOMAIN + "/{group}/{option}", show),
    rest.Route("PATCH", _DOMAIN + "/{group}/{option}", update),
    rest.Route("DELETE", _DOMAIN + "/{group}/{option}", remove),
]
