"""Settings: defaults < config file < environment < command-line flags.

The config file is TOML (``<state-dir>/stackbox.toml`` unless ``--config`` names
another), one table per section. Environment variables are
``STACKBOX_<SECTION>_<KEY>`` (for example ``STACKBOX_IDENTITY_BCRYPT_ROUNDS=4``);
keys of the top-level section drop the section (``STACKBOX_PORT``).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from pathlib import Path
from typing import Any, get_type_hints


class ConfigError(Exception):
    """A setting that cannot be used; the message names it."""


@dataclasses.dataclass
class IdentitySettings:
    token_expiration: int = 3600
    # How long after expiry a token still validates with ?allow_expired=1.
    allow_expired_window: int = 172800
    bcrypt_rounds: int = 12
    max_active_keys: int = 3
    # Rotate the Fernet keys every N seconds while running; 0 = only on command.
    key_rotation_interval: int = 0
    list_limit: int = 0
    # Security compliance, named as Keystone's [security_compliance] options.
    lockout_failure_attempts: int = 0
    lockout_duration: int = 1800
    unique_last_password_count: int = 0
    minimum_password_age: int = 0
    password_expires_days: int = 0
    password_regex: str = ""
    password_regex_description: str = ""
    change_password_upon_first_use: bool = False
    disable_user_account_days_inactive: int = 0


@dataclasses.dataclass
class ImageSettings:
    # Filesystem stores, "name" or "name:/path" separated by commas; the first is the
    # default. A store without a path lives in <state-dir>/images/<name>.
    stores: str = "file"
    # Per-project quotas (0 = unlimited): images, and total bytes of their data.
    quota_image_count: int = 0
    quota_image_size_total: int = 0
    quota_image_stage_total: int = 0
    # Largest image accepted, in bytes (Glance's image_size_cap: 1 TiB).
    image_size_cap: int = 1099511627776
    # Import methods offered by /v2/info/import. web-download (the server fetches a URL a
    # user names) is off unless an operator turns it on; glance-download reads images of
    # this cloud (or of an endpoint in the caller's catalog) with the caller's rights.
    import_methods: str = "glance-direct,copy-image,glance-download"
    # What the server may fetch from (web-download, remote glance-download, http store):
    # schemes, hosts and ports, comma-separated, as Glance's import filtering. No hosts:
    # any host except this machine's and its link's (loopback, link-local, ...); no ports: any.
    import_allowed_schemes: str = "http,https"
    import_allowed_hosts: str = ""
    import_allowed_ports: str = "80,443"
    # Property name prefixes glance-download copies from the source image (Glance's
    # [glance_download_properties] extra_properties).
    glance_download_properties: str = "hw_,trait:,os_distro,os_secure_boot,os_type"
    # Refuse uploads whose data is not the declared disk_format (Glance's option).
    require_image_format_match: bool = True
    # How often (seconds) files no image refers to are removed from the stores; 0 = at start only.
    store_sweep_interval: int = 3600
    # The node image cache: where, how big, and how often queued images are fetched.
    cache_max_size: int = 10 * 1024**3
    cache_prefetch_interval: int = 300
    # Show image locations (store paths, URLs) in image bodies and let owners change them
    # through PATCH (Glance's show_multiple_locations); off because they reveal where data is.
    show_multiple_locations: bool = False
    # Show the first location as direct_url (Glance's show_image_direct_url).
    show_image_direct_url: bool = False
    # A read-only store of image data left at http(s) URLs (Glance's http store), and its
    # store id. The URLs it reads must pass the import_allowed_* allow-list.
    http_store: bool = False
    http_store_id: str = "web"
    # Hash the data of a location added by POST /v2/images/{id}/locations (Glance's option).
    do_secure_hash: bool = True


@dataclasses.dataclass
class NetworkSettings:
    # ML2: the type project networks get, and what each type driver may hand out.
    tenant_network_types: str = "vxlan"
    vni_ranges: str = "1:65535"
    # "physnet:first:last,..." for VLANs, "first:last,..." for GRE keys.
    network_vlan_ranges: str = ""
    gre_ranges: str = "1:1000"
    # Physical networks flat networks may use ("*" for any).
    flat_networks: str = "public"
    global_physnet_mtu: int = 1500
    # Generated MACs: these three octets, then three random ones (Neutron's base_mac).
    base_mac: str = "fa:16:3e"
    dns_domain: str = "openstacklocal."
    # An agent that has not reported for this long is shown dead (Neutron's agent_down_time).
    agent_down_time: int = 75
    # The network agent this node runs next to the API in one process: "fake" (state
    # only: ports go ACTIVE, nothing is plugged), "linux" (bridges, taps and dnsmasq
    # DHCP in qdhcp- namespaces on this host; needs root) or "none".
    agent: str = "fake"
    # Where the Linux agent keeps dnsmasq's files (world-readable: dnsmasq re-reads them
    # as nobody). Empty: /run/stackbox/<a digest of the state dir>.
    run_dir: str = ""
    # How often agents heartbeat (Neutron's report_interval) and re-read everything
    # they host (the repair for a lost nudge: the bus is level-triggered).
    agent_report_interval: float = 30.0
    agent_resync_interval: float = 60.0
    # The availability zone of this node's DHCP and L3 agents.
    availability_zone: str = "nova"
    # How many DHCP agents serve each network; whether networks leave DHCP agents dead
    # for twice agent_down_time (Neutron's allow_automatic_dhcp_failover).
    dhcp_agents_per_network: int = 1
    allow_automatic_dhcp_failover: bool = True
    # How many L3 agents host an HA router.
    max_l3_agents_per_router: int = 3
    # Per-project quotas (Neutron's defaults); -1 is unlimited.
    quota_network: int = 100
    quota_subnet: int = 100
    quota_subnetpool: int = -1
    quota_port: int = 500
    quota_router: int = 10
    quota_floatingip: int = 50
    quota_security_group: int = 10
    quota_security_group_rule: int = 100
    quota_rbac_policy: int = 10
    # On first start: network "public" (172.24.4.0/24), demo's "private" and "router1".
    create_defaults: bool = True
    public_cidr: str = "172.24.4.0/24"
    public_gateway: str = "172.24.4.1"
    private_cidr: str = "10.0.0.0/26"


@dataclasses.dataclass
class ComputeSettings:
    # The compute driver of this node's agent: "fake" (state only), "qemu" (real
    # machines booted from kernel + ramdisk images; needs root, network.agent = linux)
    # or "none" (API only, no compute agent in this process).
    driver: str = "fake"
    # The qemu driver's accelerator ("tcg": software emulation; "kvm" where the host's
    # KVM runs stock kernels) and machine type ("pc" or "microvm").
    qemu_accel: str = "tcg"
    qemu_machine: str = "pc"
    # More fake compute hosts in this process (fake driver only): <hostname>-2, -3, ...
    fake_extra_hosts: int = 0
    # What the fake driver's host reports it has.
    fake_vcpus: int = 32
    fake_memory_mb: int = 65536
    fake_local_gb: int = 1024
    # Overcommit, as Nova's cpu/ram/disk_allocation_ratio.
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    # The zone compute hosts are in unless an aggregate puts them elsewhere.
    default_availability_zone: str = "nova"
    # The zone servers get when they ask for none ("" = any zone).
    default_schedule_zone: str = ""
    # The scheduler: "filter" or "chance", the filters and weighers (names of built-ins
    # or dotted paths, comma separated), and the weighers' multipliers.
    scheduler_driver: str = "filter"
    enabled_filters: str = (
        "ComputeFilter,AvailabilityZoneFilter,RamFilter,CoreFilter,DiskFilter,"
        "ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,"
        "SameHostFilter,DifferentHostFilter,JsonFilter"
    )
    weighers: str = (
        "RAMWeigher,CPUWeigher,DiskWeigher,ServerGroupSoftAffinityWeigher,"
        "ServerGroupSoftAntiAffinityWeigher"
    )
    ram_weight_multiplier: float = 1.0
    cpu_weight_multiplier: float = 1.0
    disk_weight_multiplier: float = 1.0
    soft_affinity_weight_multiplier: float = 1.0
    soft_anti_affinity_weight_multiplier: float = 1.0
    host_subset_size: int = 1
    # A compute service that has not reported for this long is down (Nova's service_down_time).
    service_down_time: int = 60
    agent_report_interval: float = 10.0
    agent_resync_interval: float = 60.0
    # A server still building after this long goes to ERROR (a lost agent, a lost nudge
    # that no resync repaired): Nova's instance_build_timeout (0 = never).
    build_timeout: int = 600
    # Seconds a shelved server keeps its place on its host before it is offloaded (Nova's
    # shelved_offload_time): 0 offloads at once, -1 never.
    shelved_offload_time: int = 0
    # Per-project quotas (Nova's defaults); -1 is unlimited.
    quota_instances: int = 10
    quota_cores: int = 20
    quota_ram: int = 51200
    quota_metadata_items: int = 128
    quota_injected_files: int = 5
    quota_injected_file_content_bytes: int = 10240
    quota_injected_file_path_length: int = 255
    quota_key_pairs: int = 100
    quota_server_groups: int = 10
    quota_server_group_members: int = 10
    # On first start: DevStack's flavors and a small default image.
    create_defaults: bool = True


class _DatabaseUrl:
    """The ``database_url`` setting: the URL given, else SQLite in the state dir.

    A descriptor, so that the default follows ``state_dir`` whenever that is set
    (the config file, environment and flags may set it after construction).
    """

    slot = "_database_url"

    def __get__(self, obj: Any, objtype: type | None = None) -> str:
        if obj is None:
            return ""  # read on the class: nothing set
        given: str = getattr(obj, self.slot, "")
        return given or f"sqlite:///{obj.state_dir / 'stackbox.db'}"

    def __set__(self, obj: Any, value: str) -> None:
        # dataclasses pass the descriptor itself as the default value.
        setattr(obj, self.slot, value if isinstance(value, str) else "")


@dataclasses.dataclass
class Settings:
    state_dir: Path = dataclasses.field(default_factory=lambda: default_state_dir())
    # SQLAlchemy URL of the database: SQLite in the state dir unless set, for example
    # "postgresql+psycopg://stackbox:secret@db.example/stackbox" (STACKBOX_DATABASE_URL).
    # Not in repr: the URL may hold a password.
    database_url: _DatabaseUrl = dataclasses.field(default=_DatabaseUrl(), repr=False)
    # The bus between the controller and agents on other hosts: "" (in-process, the
    # all-in-one) or "amqp://user:password@broker:5672/" (STACKBOX_BUS_URL; for
    # `stackbox controller` and `stackbox agent`). Not in repr: it may hold a password.
    bus_url: str = dataclasses.field(default="", repr=False)
    host: str = "127.0.0.1"
    # This node's name (Neutron's and Nova's `host`): its agents' host and the
    # binding:host_id of ports bound here. `host` above is the address to listen on.
    hostname: str = dataclasses.field(default_factory=socket.gethostname)
    port: int = 8080
    # The URL clients use; derived from host and port when empty.
    public_url: str = ""
    region: str = "RegionOne"
    admin_password: str = ""
    log_level: str = "info"
    identity: IdentitySettings = dataclasses.field(default_factory=IdentitySettings)
    image: ImageSettings = dataclasses.field(default_factory=ImageSettings)
    network: NetworkSettings = dataclasses.field(default_factory=NetworkSettings)
    compute: ComputeSettings = dataclasses.field(default_factory=ComputeSettings)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/stackbox")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "stackbox"


def _coerce(kind: Any, value: Any, name: str) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is Path:
            return Path(value).expanduser()
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}: {value!r} is not a valid {kind.__name__}") from None


def _apply(target: Any, values: dict[str, Any], prefix: str) -> None:
    hints = get_type_hints(type(target))
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(f"unknown setting {name}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise ConfigError(f"setting {name} must be a table")
            _apply(getattr(target, key), value, f"{name}.")
        else:
            setattr(target, key, _coerce(kind, value, name))


def _from_env(target: Any, prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, kind in get_type_hints(type(target)).items():
        if dataclasses.is_dataclass(kind):
            nested = _from_env(getattr(target, key), f"{prefix}{key.upper()}_")
            if nested:
                found[key] = nested
        else:
            env = f"{prefix}{key.upper()}"
            if env in os.environ:
                found[key] = os.environ[env]
    return found


def load(flags: dict[str, Any] | None = None, config_file: Path | None = None) -> Settings:
    """Build the settings from every source, in order of precedence."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    settings = Settings()
    env = _from_env(settings, "STACKBOX_")
    # The state dir decides where the default config file is, so settle it first.
    if "state_dir" in env:
        _apply(settings, {"state_dir": env["state_dir"]}, "")
    if "state_dir" in flags:
        _apply(settings, {"state_dir": flags["state_dir"]}, "")
    path = config_file or settings.state_dir / "stackbox.toml"
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        _apply(settings, data, "")
    elif config_file is not None:
        raise ConfigError(f"config file {config_file} does not exist")
    _apply(settings, env, "")
    _apply(settings, flags, "")
    check(settings)
    return settings


def check(settings: Settings) -> None:
    """Refuse values the services cannot run with, naming the setting."""
    identity = settings.identity
    if not 4 <= identity.bcrypt_rounds <= 31:
        raise ConfigError(
            f"setting identity.bcrypt_rounds: {identity.bcrypt_rounds} is not "
            "between 4 and 31 (bcrypt's range)"
        )
    if identity.max_active_keys < 2:
        raise ConfigError(
            "setting identity.max_active_keys: must be at least 2 (a staged and a primary key)"
        )
    if identity.token_expiration < 1:
        raise ConfigError("setting identity.token_expiration: must be at least 1 second")
    network = settings.network
    if network.agent not in ("fake", "linux", "none"):
        raise ConfigError(
            f"setting network.agent: {network.agent!r} is not one of fake, linux, none"
        )
    if network.agent_report_interval <= 0 or network.agent_resync_interval <= 0:
        raise ConfigError("setting network.agent_*_interval: must be more than 0 seconds")
    compute = settings.compute
    if compute.driver not in ("fake", "qemu", "none"):
        raise ConfigError(
            f"setting compute.driver: {compute.driver!r} is not one of fake, qemu, none"
        )
    if compute.driver == "qemu" and settings.network.agent != "linux":
        raise ConfigError(
            "setting compute.driver: qemu needs network.agent = linux (its taps must be wired)"
        )
    if compute.fake_extra_hosts < 0 or (compute.fake_extra_hosts and compute.driver != "fake"):
        raise ConfigError("setting compute.fake_extra_hosts: needs driver = fake and >= 0")
    if compute.scheduler_driver not in ("filter", "chance"):
        raise ConfigError(
            f"setting compute.scheduler_driver: {compute.scheduler_driver!r} is not one of "
            "filter, chance"
        )
    if compute.agent_report_interval <= 0 or compute.agent_resync_interval <= 0:
        raise ConfigError("setting compute.agent_*_interval: must be more than 0 seconds")
    if not settings.hostname:
        raise ConfigError("setting hostname: must not be empty")
    if not 0 < settings.port < 65536:
        raise ConfigError(f"setting port: {settings.port} is not a TCP port")
    image = settings.image
    file_stores = [item.split(":")[0].strip() for item in image.stores.split(",")]
    if image.http_store and image.http_store_id in file_stores:
        raise ConfigError(
            f"setting image.http_store_id: {image.http_store_id!r} is also a filesystem store"
        )
    for port in image.import_allowed_ports.split(","):
        if port.strip() and not port.strip().isdigit():
            raise ConfigError(f"setting image.import_allowed_ports: {port.strip()!r} is not a port")
