"""tempest.conf for one running cloud, and the reasons for every feature turned off.

Three sources, in order: tempest.conf.example (the shared defaults), features.toml (our
choices, each "off" with a reason), then facts of the running cloud (URLs, region, admin
credentials, which services the catalog offers, its public network and networking
extensions, its compute images, flavors and microversions) and cloud.toml's
security-compliance values and scheduler filters.
"""

from __future__ import annotations

import configparser
import io
import tomllib
from dataclasses import dataclass
from typing import Any

from tempestgate import compute, network, paths, selection
from tempestgate.cloud import Cloud
from tempestgate.fileserver import Files
from tempestgate.services import Service

# stackbox's [identity] settings (cloud.toml) -> tempest.conf [identity] options.
SECURITY_COMPLIANCE = {
    "lockout_failure_attempts": "user_lockout_failure_attempts",
    "lockout_duration": "user_lockout_duration",
    "unique_last_password_count": "user_unique_last_password_count",
    "minimum_password_age": "user_minimum_password_age",
}


@dataclass(frozen=True)
class Off:
    """A tempest.conf option that turns something off, and why."""

    section: str
    option: str
    value: str
    reason: str


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _features() -> dict[str, Any]:
    return tomllib.loads(paths.FEATURES.read_text())


def chosen_options() -> tuple[dict[tuple[str, str], str], list[Off]]:
    """features.toml as option values, plus its list of things turned off.

    Every false needs a reason; any other value that carries one (a number that makes
    Tempest skip tests, say) is listed with it too.
    """
    values: dict[tuple[str, str], str] = {}
    off: list[Off] = []
    for section, options in _features().items():
        for option, spec in options.items():
            if option.startswith("omitted_"):
                target = option.removeprefix("omitted_")
                for name, reason in spec.items():
                    off.append(Off(section, target, f"without {name}", reason))
                continue
            if not isinstance(spec, dict) or "value" not in spec:
                raise ValueError(f"{paths.FEATURES}: [{section}] {option} needs a value")
            value = spec["value"]
            reason = spec.get("reason", "")
            if value is False and not reason:
                raise ValueError(f"{paths.FEATURES}: [{section}] {option} = false needs a reason")
            if reason:
                off.append(Off(section, option, _render(value), reason))
            values[(section, option)] = _render(value)
    return values, off


def cloud_options(
    cloud: Cloud, services: list[Service], available: set[str], files: Files
) -> tuple[dict[tuple[str, str], str], list[Off]]:
    """Options that follow from the running cloud."""
    values = {
        ("identity", "uri_v3"): cloud.identity_v3,
        ("identity", "region"): cloud.region(),
        ("auth", "admin_username"): "admin",
        ("auth", "admin_password"): cloud.admin_password,
        ("auth", "admin_project_name"): "admin",
        ("auth", "admin_domain_name"): "Default",
        ("DEFAULT", "log_dir"): str(paths.LOGS),
        ("DEFAULT", "log_file"): "tempest.log",
        # Request and response bodies in tempest.log: what a failure report needs.
        ("DEFAULT", "debug"): "true",
        ("oslo_concurrency", "lock_path"): str(paths.WORKSPACE / "tempest_lock"),
    }
    off: list[Off] = []
    identity = tomllib.loads(paths.CLOUD_CONFIG.read_text()).get("identity", {})
    for ours, theirs in SECURITY_COMPLIANCE.items():
        if ours not in identity:
            raise ValueError(f"{paths.CLOUD_CONFIG}: [identity] {ours} must be set")
        values[("identity", theirs)] = _render(identity[ours])
    for service in services:
        if not service.service_available:
            continue
        present = service.name in available
        values[("service_available", service.service_available)] = _render(present)
        if not present:
            reason = service.absent_reason or (
                f"stackbox's catalog has no {' or '.join(service.catalog_types)} service"
            )
            off.append(Off("service_available", service.service_available, "false", reason))
    neutron = "network" in available
    values[("auth", "create_isolated_networks")] = _render(neutron)
    if neutron:
        # The public network's id and the served extensions (network.py; may create it).
        values.update(network.options(cloud))
    if not neutron:
        reason = "no networking service: Tempest must not ask for per-project networks"
        off.append(Off("auth", "create_isolated_networks", "false", reason))
    if "compute" in available:
        # Images, flavors, microversions and scheduler filters (compute.py; may create some).
        values.update(compute.options(cloud, files))
    return values, off


def file_options(files: Files) -> tuple[dict[tuple[str, str], str], list[Off]]:
    """The URLs of the images the runner serves (Tempest fetches nothing from elsewhere)."""
    values = {
        ("image", "http_image"): files.http_image,
        ("image", "http_qcow2_image"): files.http_qcow2_image,
    }
    off = []
    if files.qcow2_missing_reason:
        off.append(Off("image", "http_qcow2_image", '""', files.qcow2_missing_reason))
    return values, off


def write(
    cloud: Cloud,
    services: list[Service],
    available: set[str],
    files: Files,
    extra: dict[tuple[str, str], str] | None = None,
) -> list[Off]:
    """Write paths.CONF_FILE for this cloud (``extra`` last: a run's own options); return
    what it turns off, with reasons."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(paths.CONF_EXAMPLE.read_text())
    chosen, off = chosen_options()
    derived, derived_off = cloud_options(cloud, services, available, files)
    served, served_off = file_options(files)
    derived.update(served)
    derived_off += served_off
    for (section, option), value in {**chosen, **derived, **(extra or {})}.items():
        if section != "DEFAULT" and not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, option, value)
    text = io.StringIO()
    text.write("# Written by scripts/tempest for one run; regenerated every run.\n")
    parser.write(text)
    paths.CONF_FILE.parent.mkdir(parents=True, exist_ok=True)
    paths.CONF_FILE.write_text(text.getvalue())
    paths.CONF_FILE.chmod(0o600)
    kept = [o for o in off + derived_off if (o.section, o.option) not in (extra or {})]
    return kept


def features_markdown(services: list[Service]) -> str:
    """What the gate turns off and why, for the README (services as if none were present),
    and the interop tests that may be skipped until stackbox has what they wait for."""
    _, off = chosen_options()
    rows = ["| tempest.conf option | value | why |", "|---|---|---|"]
    for item in off:
        rows.append(f"| `[{item.section}] {item.option}` | {item.value} | {item.reason} |")
    for service in services:
        if service.service_available:
            reason = service.absent_reason or "until stackbox's catalog offers it"
            rows.append(f"| `[service_available] {service.service_available}` | false | {reason} |")
    rows.append(
        "| `[auth] create_isolated_networks` | false | until the catalog offers networking "
        "(Tempest would ask it for a network per test project) |"
    )
    waiting = selection.waiting_lines()
    if waiting:
        rows += ["", "| interop test allowed to be skipped | waits for |", "|---|---|"]
        for test_id, waits in sorted(waiting.items()):
            rows.append(f"| `{test_id.removeprefix('tempest.api.')}` | {waits.waits_for} |")
    return "\n".join(rows)
