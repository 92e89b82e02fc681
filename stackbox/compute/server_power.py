"""Power and guest-state actions: start, stop, reboot, pause/unpause, suspend/resume,
rescue/unrescue, trigger_crash_dump, and lock/unlock (which the API finishes alone)."""

from __future__ import annotations

import secrets
import string

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common
from stackbox.compute import server_action_base as base
from stackbox.db import session as db_session

SERVERS = "os_compute_api:servers:"

REBOOT_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}
    },
    "required": ["type"],
    "additionalProperties": False,
}
LOCK_SCHEMA_V273 = {
    "type": ["object", "null"],
    "properties": {"locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}},
    "additionalProperties": False,
}
ADMIN_PASSWORD = {"type": "string"}
IMAGE_ID = {"type": "string", "format": "uuid"}
RESCUE_SCHEMA = {
    "type": ["object", "null"],
    "properties": {"adminPass": ADMIN_PASSWORD, "rescue_image_ref": IMAGE_ID},
    "additionalProperties": False,
}


def generate_password(length: int = 12) -> str:
    """A random admin password, as Nova's generate_password (letters and digits)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def start(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    return base.run_state_action(
        request,
        db,
        server_id,
        key="os-start",
        rule="start",
        policy=SERVERS + "start",
        api_name="start",
        action="start",
        needs_host=True,
    )


def stop(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    return base.run_state_action(
        request,
        db,
        server_id,
        key="os-stop",
        rule="stop",
        policy=SERVERS + "stop",
        api_name="stop",
        action="stop",
        needs_host=True,
    )


def reboot(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = base.member(request, "reboot", REBOOT_SCHEMA)
    hard = str(body["type"]).upper() == "HARD"

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, SERVERS + "reboot", with_user=False)
        base.check_lock(request, server)
        row = base.check_action(server, "reboot_hard" if hard else "reboot", "reboot")
        base.start_task(session, request, server, row.task, "reboot")
        return base.accepted()

    return db.run(apply, write=True)


def _simple(key: str, rule: str, policy: str, *, with_user: bool = True) -> base.Handler:
    def handler(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
        return base.run_state_action(
            request,
            db,
            server_id,
            key=key,
            rule=rule,
            policy=policy,
            api_name=key,
            action=key,
            with_user=with_user,
        )

    return handler


pause = _simple("pause", "pause", "os_compute_api:os-pause-server:pause")
unpause = _simple("unpause", "unpause", "os_compute_api:os-pause-server:unpause", with_user=False)
suspend = _simple("suspend", "suspend", "os_compute_api:os-suspend-server:suspend")
resume = _simple("resume", "resume", "os_compute_api:os-suspend-server:resume", with_user=False)
unrescue = _simple("unrescue", "unrescue", "os_compute_api:os-unrescue", with_user=False)


def trigger_crash_dump(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    base.member(request, "trigger_crash_dump", base.NULL)

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, SERVERS + "trigger_crash_dump")
        base.check_lock(request, server)
        base.check_host(server)
        base.check_action(server, "trigger_crash_dump", "trigger_crash_dump")
        # The fake guest has nothing to dump: the NMI is recorded and done.
        base.finish_now(session, request, server, "trigger_crash_dump")
        return base.accepted()

    return db.run(apply, write=True)


def rescue(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    body = base.member(request, "rescue", RESCUE_SCHEMA) or {}
    password = body.get("adminPass") or generate_password()
    rescue_image = body.get("rescue_image_ref")

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, "os_compute_api:os-rescue")
        base.check_lock(request, server)
        if rescue_image is not None:
            _check_rescue_image(session, request, rescue_image)
        row = base.check_action(server, "rescue", "rescue")
        server.admin_password = password
        base.start_task(session, request, server, row.task, "rescue")
        return rest.ApiResponse(200, {"adminPass": password})

    return db.run(apply, write=True)


def _check_rescue_image(session: Session, request: rest.ApiRequest, image_id: str) -> None:
    from stackbox.image import access

    try:
        access.get_visible(session, request.context, image_id)
    except rest.NotFound:
        raise rest.BadRequest(f"Requested rescue image '{image_id}' is not supported") from None


# --- lock / unlock: the API's own -----------------------------------------------------------


def lock(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    with_reason = base.at_least(request, "2.73")
    body = base.member(request, "lock", LOCK_SCHEMA_V273 if with_reason else base.ANY)
    reason = body.get("locked_reason") if with_reason and isinstance(body, dict) else None

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, "os_compute_api:os-lock-server:lock")
        owner = server.project_id == request.context.project_id
        # The owner locking again changes nothing (Nova); an admin re-locks as admin.
        if server.locked and owner:
            return base.accepted()
        server.locked = True
        server.locked_by = "owner" if owner else "admin"
        server.locked_reason = reason
        base.finish_now(session, request, server, "lock")
        return base.accepted()

    return db.run(apply, write=True)


def unlock(request: rest.ApiRequest, db: db_session.Database, server_id: str) -> base.Result:
    base.member(request, "unlock", base.ANY)

    def apply(session: Session) -> base.Result:
        server = base.load(
            session, request, server_id, "os_compute_api:os-lock-server:unlock", with_user=False
        )
        owner = server.project_id == request.context.project_id
        expected = "owner" if owner else "admin"
        if server.locked_by and server.locked_by != expected:
            # An owner may not lift an admin's lock unless policy says so.
            common.enforce(
                request,
                "os_compute_api:os-lock-server:unlock:unlock_override",
                {"project_id": server.project_id},
            )
        server.locked = False
        server.locked_by = None
        server.locked_reason = None
        base.finish_now(session, request, server, "unlock")
        return base.accepted()

    return db.run(apply, write=True)


ACTIONS: list[base.Action] = [
    base.Action("os-start", start),
    base.Action("os-stop", stop),
    base.Action("reboot", reboot),
    base.Action("pause", pause),
    base.Action("unpause", unpause),
    base.Action("suspend", suspend),
    base.Action("resume", resume),
    base.Action("rescue", rescue),
    base.Action("unrescue", unrescue),
    base.Action("trigger_crash_dump", trigger_crash_dump, since="2.17"),
    base.Action("lock", lock),
    base.Action("unlock", unlock),
]
