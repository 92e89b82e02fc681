"""Compute quotas: limits, usage and the checks that creates make.

A limit is the first of: the project's (or, for a user, the user's, then the
project's) row in ``compute_quota``, the ``default`` quota class row, the
ComputeSettings ``quota_*`` value (-1 is unlimited). Usage is counted from the
tables each time, as Nova does since Pike: instances, cores and ram from the
project's live servers' flavor copies, key pairs per user, server groups per
project (or user), members per group.

Every check that may take the last slot first writes the project's
``compute_quota_lock`` row (an upsert of its counter), so concurrent creates of one
project queue on that row: PostgreSQL holds the row lock to the end of the
transaction, SQLite lets one writer in at a time anyway. Then counting and
inserting happen in the same transaction, and two creates never both take the last
slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import errors, models, runtime

UNLIMITED = -1
DEFAULT_CLASS = "default"
# Nova's resources and the setting each one defaults to (None: unlimited).
SETTINGS: dict[str, str | None] = {
    "instances": "quota_instances",
    "cores": "quota_cores",
    "ram": "quota_ram",
    "metadata_items": "quota_metadata_items",
    "injected_files": "quota_injected_files",
    "injected_file_content_bytes": "quota_injected_file_content_bytes",
    "injected_file_path_bytes": "quota_injected_file_path_length",
    "key_pairs": "quota_key_pairs",
    "server_groups": "quota_server_groups",
    "server_group_members": "quota_server_group_members",
    # nova-network's quotas, kept in the API (and ignored) as Nova does.
    "fixed_ips": None,
    "floating_ips": None,
    "security_groups": None,
    "security_group_rules": None,
}
RESOURCES = tuple(sorted(SETTINGS))
# Resources counted from the database (the others are plain limits).
COUNTED = ("instances", "cores", "ram", "key_pairs", "server_groups", "server_group_members")
_LOCKED = "stackbox.compute.quota_locks"


# --- limits ---------------------------------------------------------------------------------


def setting_defaults() -> dict[str, int]:
    settings = runtime.get().settings
    return {
        name: int(getattr(settings, attr)) if attr else UNLIMITED for name, attr in SETTINGS.items()
    }


def class_limits(session: Session, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    """A quota class's limits: its rows over the settings."""
    found = setting_defaults()
    rows = session.scalars(
        select(models.QuotaClass).where(models.QuotaClass.class_name == class_name)
    )
    for row in rows:
        if row.resource in found:
            found[row.resource] = row.hard_limit
    return found


def defaults(session: Session) -> dict[str, int]:
    return class_limits(session, DEFAULT_CLASS)


def _rows(session: Session, project_id: str, user_id: str) -> dict[str, int]:
    rows = session.scalars(
        select(models.Quota).where(
            models.Quota.project_id == project_id, models.Quota.user_id == user_id
        )
    )
    return {row.resource: row.hard_limit for row in rows if row.resource in SETTINGS}


def project_overrides(session: Session, project_id: str) -> dict[str, int]:
    return _rows(session, project_id, "")


def user_overrides(session: Session, project_id: str, user_id: str) -> dict[str, int]:
    return _rows(session, project_id, user_id) if user_id else {}


def limits(session: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """Every resource's limit for the project, or for one of its users."""
    found = defaults(session)
    found.update(project_overrides(session, project_id))
    if user_id:
        found.update(user_overrides(session, project_id, user_id))
    return found


# --- usage ----------------------------------------------------------------------------------


def _flavor_size(server_flavor: Mapping[str, Any] | None) -> tuple[int, int]:
    flavor = server_flavor or {}
    return int(flavor.get("vcpus", 0) or 0), int(flavor.get("memory_mb", 0) or 0)


def server_usage(session: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """instances, cores and ram of the project's (or user's) live servers. A server in
    the middle of a resize counts the larger of its two flavors, so that the resize's
    claim stays reserved until it is confirmed or reverted."""
    query = select(models.Server.flavor, models.Server.new_flavor).where(
        models.Server.project_id == project_id,
        models.Server.deleted.is_(False),
        models.Server.vm_state != "soft-delete",
    )
    if user_id:
        query = query.where(models.Server.user_id == user_id)
    instances = cores = ram = 0
    for flavor, new_flavor in session.execute(query):
        vcpus, memory = _flavor_size(flavor)
        if new_flavor:
            new_vcpus, new_memory = _flavor_size(new_flavor)
            vcpus, memory = max(vcpus, new_vcpus), max(memory, new_memory)
        instances += 1
        cores += vcpus
        ram += memory
    return {"instances": instances, "cores": cores, "ram": ram}


def key_pair_count(session: Session, user_id: str) -> int:
    query = select(func.count()).select_from(models.KeyPair)
    return int(session.scalar(query.where(models.KeyPair.user_id == user_id)) or 0)


def server_group_count(session: Session, project_id: str, user_id: str | None = None) -> int:
    query = select(func.count()).select_from(models.ServerGroup)
    query = query.where(models.ServerGroup.project_id == project_id)
    if user_id:
        query = query.where(models.ServerGroup.user_id == user_id)
    return int(session.scalar(query) or 0)


def group_member_count(session: Session, group_id: str) -> int:
    query = select(func.count()).select_from(models.ServerGroupMember)
    return int(session.scalar(query.where(models.ServerGroupMember.group_id == group_id)) or 0)


def usage(session: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """In-use counts as os-quota-sets/detail and /limits show them: like Nova, key pairs
    and server group members (per-user and per-group things) show 0 there."""
    found = dict.fromkeys(RESOURCES, 0)
    found.update(server_usage(session, project_id, user_id))
    found["server_groups"] = server_group_count(session, project_id, user_id)
    return found


def settable(
    session: Session, project_id: str, user_id: str | None = None
) -> dict[str, tuple[int, int]]:
    """(minimum, maximum) a new limit may take without ``force``, as Nova computes them:
    not below what is in use; a user's not above what the project has left to share."""
    in_use = usage(session, project_id, user_id)
    project = limits(session, project_id)
    # What the project has handed out to its users' own limits.
    handed_out = dict.fromkeys(RESOURCES, 0)
    given = session.scalars(
        select(models.Quota).where(
            models.Quota.project_id == project_id, models.Quota.user_id != ""
        )
    )
    for row in given:
        if row.resource in handed_out:
            handed_out[row.resource] += row.hard_limit
    result: dict[str, tuple[int, int]] = {}
    if not user_id:
        for name in RESOURCES:
            floor = in_use[name] if project[name] < 0 else max(in_use[name], handed_out[name])
            result[name] = (floor, UNLIMITED)
        return result
    own = user_overrides(session, project_id, user_id)
    for name in RESOURCES:
        left = project[name] - handed_out[name] if project[name] >= 0 else UNLIMITED
        mine = own.get(name, 0)
        maximum = UNLIMITED if left < 0 or mine < 0 else left + mine
        result[name] = (in_use[name], maximum)
    return result


# --- writing limits -------------------------------------------------------------------------


def set_limit(
    session: Session, project_id: str, resource: str, value: int, user_id: str | None = None
) -> None:
    row = session.get(models.Quota, (project_id, user_id or "", resource))
    if row is None:
        session.add(
            models.Quota(
                project_id=project_id, user_id=user_id or "", resource=resource, hard_limit=value
            )
        )
    else:
        row.hard_limit = value


def clear_limits(session: Session, project_id: str, user_id: str | None = None) -> None:
    """Back to the defaults: a project's own (and its users') limits, or one user's."""
    query = select(models.Quota).where(models.Quota.project_id == project_id)
    if user_id:
        query = query.where(models.Quota.user_id == user_id)
    for row in session.scalars(query):
        session.delete(row)


def set_class_limit(session: Session, class_name: str, resource: str, value: int) -> None:
    row = session.get(models.QuotaClass, (class_name, resource))
    if row is None:
        session.add(models.QuotaClass(class_name=class_name, resource=resource, hard_limit=value))
    else:
        row.hard_limit = value


# --- checks ---------------------------------------------------------------------------------


def lock(session: Session, project_id: str) -> None:
    """Serialize the quota checks of one project until this transaction ends: upsert its
    ``compute_quota_lock`` row (the write takes the row lock, or SQLite's write lock)."""
    held: set[str] = session.info.setdefault(_LOCKED, set())
    if project_id in held:
        return
    table = models.QuotaLock
    dialect = session.get_bind().dialect.name
    bump = {"counter": models.QuotaLock.counter + 1}
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).values(project_id=project_id, counter=1)
        stmt = stmt.on_conflict_do_update(index_elements=["project_id"], set_=bump)
    elif dialect in ("mysql", "mariadb"):
        stmt = mysql.insert(table).values(project_id=project_id, counter=1)
        stmt = stmt.on_duplicate_key_update(**bump)
    else:
        stmt = sqlite.insert(table).values(project_id=project_id, counter=1)
        stmt = stmt.on_conflict_do_update(index_elements=["project_id"], set_=bump)
    session.execute(stmt)
    held.add(project_id)


def _over(limit: int, value: int) -> bool:
    return limit >= 0 and value > limit


def _headroom(limit: int, used: int) -> float:
    return float("inf") if limit < 0 else limit - used


def _server_scopes(
    session: Session, project_id: str, user_id: str
) -> list[tuple[dict[str, int], dict[str, int]]]:
    """(limits, usage) to check servers against: the project's, and the user's where the
    user has instance/core/ram limits of its own (else counting per user is wasted)."""
    scopes = [(limits(session, project_id), server_usage(session, project_id))]
    own = user_overrides(session, project_id, user_id)
    if any(name in own for name in ("instances", "cores", "ram")):
        scopes.append(
            (limits(session, project_id, user_id), server_usage(session, project_id, user_id))
        )
    return scopes


def check_instances(
    session: Session,
    project_id: str,
    user_id: str,
    count: int,
    cores: int,
    ram: int,
    *,
    min_count: int | None = None,
) -> int:
    """Check that ``count`` servers of ``cores`` vCPUs and ``ram`` MB each fit the
    project's (and, where the user has limits of its own, the user's) quotas; returns
    how many may be made: ``count``, or fewer but at least ``min_count`` when given.
    403 with Nova's TooManyInstances message otherwise."""
    lock(session, project_id)
    min_count = count if min_count is None else min_count
    scopes = _server_scopes(session, project_id, user_id)
    wanted = {"instances": count, "cores": count * cores, "ram": count * ram}
    for quota, used in scopes:
        overs = sorted(k for k in wanted if _over(quota[k], used[k] + wanted[k]))
        if not overs:
            continue
        room = {k: _headroom(quota[k], used[k]) for k in wanted}
        allowed = room["instances"]
        if cores:
            allowed = min(allowed, room["cores"] // cores)
        if ram:
            allowed = min(allowed, room["ram"] // ram)
        if allowed > 0 and min_count <= allowed < count:
            return check_instances(session, project_id, user_id, int(allowed), cores, ram)
        asked: dict[str, Any] = dict(wanted)
        if min_count != count:
            asked["instances"] = f"{min_count}-{count}"
        raise too_many(overs, asked, quota, used)
    return count


def too_many(
    overs: list[str], asked: Mapping[str, Any], quota: Mapping[str, int], used: Mapping[str, int]
) -> rest.Forbidden:
    def joined(values: Any) -> str:
        return ", ".join(str(v) for v in values)

    names = joined(overs)
    return errors.forbidden(
        f"Quota exceeded for {names}: Requested {joined(asked[k] for k in overs)}, but already "
        f"used {joined(used[k] for k in overs)} of {joined(quota[k] for k in overs)} {names}"
    )


def check_resize(
    session: Session,
    project_id: str,
    user_id: str,
    old_flavor: Mapping[str, Any],
    new_flavor: Mapping[str, Any],
) -> None:
    """A resize may grow cores and ram by the difference of the flavors (Nova checks
    only an upsize); 403 TooManyInstances naming what would go over."""
    old_vcpus, old_ram = _flavor_size(old_flavor)
    new_vcpus, new_ram = _flavor_size(new_flavor)
    deltas = {"cores": new_vcpus - old_vcpus, "ram": new_ram - old_ram}
    deltas = {k: v for k, v in deltas.items() if v > 0}
    if not deltas:
        return
    lock(session, project_id)
    scopes = _server_scopes(session, project_id, user_id)
    for quota, used in scopes:
        overs = sorted(k for k in deltas if _over(quota[k], used[k] + deltas[k]))
        if overs:
            raise too_many(overs, deltas, quota, used)


def check_key_pairs(session: Session, project_id: str, user_id: str, adding: int = 1) -> None:
    """403 "Quota exceeded, too many key pairs." (key pairs count per user, against the
    smaller of the user's and the project's limit)."""
    lock(session, project_id)
    allowed = limits(session, project_id, user_id)["key_pairs"]
    project_allowed = limits(session, project_id)["key_pairs"]
    if project_allowed >= 0:
        allowed = project_allowed if allowed < 0 else min(allowed, project_allowed)
    if _over(allowed, key_pair_count(session, user_id) + adding):
        raise errors.forbidden("Quota exceeded, too many key pairs.")


def check_server_groups(session: Session, project_id: str, user_id: str, adding: int = 1) -> None:
    """403 "Quota exceeded, too many server groups." (per project and per user)."""
    lock(session, project_id)
    if _over(
        limits(session, project_id)["server_groups"],
        server_group_count(session, project_id) + adding,
    ) or _over(
        limits(session, project_id, user_id)["server_groups"],
        server_group_count(session, project_id, user_id) + adding,
    ):
        raise errors.forbidden("Quota exceeded, too many server groups.")


def check_server_group_members(
    session: Session, project_id: str, user_id: str, group_id: str, adding: int = 1
) -> None:
    """403 "Quota exceeded, too many servers in group" when ``adding`` more servers
    would pass server_group_members for the group."""
    lock(session, project_id)
    allowed = limits(session, project_id, user_id)["server_group_members"]
    if _over(allowed, group_member_count(session, group_id) + adding):
        raise errors.forbidden("Quota exceeded, too many servers in group")


def check_metadata_items(session: Session, project_id: str, count: int) -> None:
    """403 "Maximum number of metadata items exceeds N" (Nova's MetadataLimitExceeded)
    when a server would have ``count`` metadata items."""
    allowed = limits(session, project_id)["metadata_items"]
    if _over(allowed, count):
        raise errors.forbidden(f"Maximum number of metadata items exceeds {allowed}")


def check_personality(session: Session, project_id: str, files: list[tuple[str, bytes]]) -> None:
    """Injected files (personality, before 2.57): count, path length and content size."""
    if not files:
        return
    quota = limits(session, project_id)
    if _over(quota["injected_files"], len(files)):
        raise errors.forbidden("Personality file limit exceeded")
    for path, content in files:
        if _over(quota["injected_file_path_bytes"], len(path.encode())):
            raise errors.forbidden(
                f"Personality file path exceeds maximum {quota['injected_file_path_bytes']}"
            )
        if _over(quota["injected_file_content_bytes"], len(content)):
            raise errors.forbidden(
                f"Personality file content exceeds maximum {quota['injected_file_content_bytes']}"
            )
