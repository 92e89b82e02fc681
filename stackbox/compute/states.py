"""Nova's server state machine as data: the API's status for each (vm_state, task_state),
which states each action may start from, the task it sets, and what a finished task
leaves behind.

The API side (``server_actions``, ``servers``) checks ``ACTIONS`` and sets the task;
the compute agent converges the task and reports; the controller's intake applies
``DONE`` (success) or ``FAILED``. Both sides read this one table.
"""

from __future__ import annotations

import dataclasses

# vm_state values (Nova's nova/compute/vm_states.py).
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

# power_state values (Nova's integers).
NOSTATE = 0
RUNNING = 1
POWER_PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
POWER_SUSPENDED = 7
POWER_NAMES = {
    NOSTATE: "NOSTATE",
    RUNNING: "RUNNING",
    POWER_PAUSED: "PAUSED",
    SHUTDOWN: "SHUTDOWN",
    CRASHED: "CRASHED",
    POWER_SUSPENDED: "SUSPENDED",
}

# task_state values used here (Nova's nova/compute/task_states.py).
SCHEDULING = "scheduling"
NETWORKING = "networking"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
REBOOTING = "rebooting"
REBOOTING_HARD = "rebooting_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
REBUILDING = "rebuilding"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
RESCUING = "rescuing"
UNRESCUING = "unrescuing"
DELETING = "deleting"
SHELVING = "shelving"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"
MIGRATING = "migrating"

# The API's status (Nova's _STATE_MAP): by vm_state, refined by task_state.
_STATUS: dict[str, dict[str | None, str]] = {
    ACTIVE: {
        None: "ACTIVE",
        REBOOTING: "REBOOT",
        REBOOTING_HARD: "HARD_REBOOT",
        "reboot_pending": "REBOOT",
        "reboot_started": "REBOOT",
        "reboot_pending_hard": "HARD_REBOOT",
        "reboot_started_hard": "HARD_REBOOT",
        REBUILDING: "REBUILD",
        "rebuild_block_device_mapping": "REBUILD",
        "rebuild_spawning": "REBUILD",
        MIGRATING: "MIGRATING",
        RESIZE_PREP: "RESIZE",
        RESIZE_MIGRATING: "RESIZE",
        "resize_migrated": "RESIZE",
        RESIZE_FINISH: "RESIZE",
        RESIZE_REVERTING: "REVERT_RESIZE",
    },
    BUILDING: {None: "BUILD"},
    STOPPED: {
        None: "SHUTOFF",
        RESIZE_PREP: "RESIZE",
        RESIZE_MIGRATING: "RESIZE",
        "resize_migrated": "RESIZE",
        RESIZE_FINISH: "RESIZE",
        RESIZE_REVERTING: "REVERT_RESIZE",
        REBUILDING: "REBUILD",
    },
    RESIZED: {None: "VERIFY_RESIZE", RESIZE_REVERTING: "REVERT_RESIZE"},
    PAUSED: {None: "PAUSED", MIGRATING: "MIGRATING"},
    SUSPENDED: {None: "SUSPENDED"},
    RESCUED: {None: "RESCUE"},
    ERROR: {None: "ERROR", REBUILDING: "REBUILD"},
    DELETED: {None: "DELETED"},
    SOFT_DELETED: {None: "SOFT_DELETED"},
    SHELVED: {None: "SHELVED"},
    SHELVED_OFFLOADED: {None: "SHELVED_OFFLOADED"},
}


def status(vm_state: str, task_state: str | None) -> str:
    by_task = _STATUS.get(vm_state, {None: "UNKNOWN"})
    return by_task.get(task_state, by_task.get(None, "UNKNOWN"))


# Which statuses a list filter may name (anything else: 400 from 2.38, empty list before).
STATUSES = sorted({s for table in _STATUS.values() for s in table.values()} | {"UNKNOWN"})


@dataclasses.dataclass(frozen=True)
class Action:
    """An API action: where it may start and the task it leaves for the agent."""

    name: str  # as Nova's InstanceInvalidState message names it
    vm_states: tuple[str, ...]
    task: str | None  # None: the API finishes it alone (lock, metadata, reset...)
    # task_states it may start from (() = only with no task running).
    task_states: tuple[str | None, ...] = (None,)


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("start", (STOPPED,), POWERING_ON),
        Action("stop", (ACTIVE, ERROR), POWERING_OFF),
        # Nova: a soft reboot only from active and idle; a hard one from more states and
        # over a running soft reboot or pause/suspend/resume (task_states.ALLOW_REBOOT).
        Action("reboot", (ACTIVE,), REBOOTING),
        Action(
            "reboot_hard",
            (ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR),
            REBOOTING_HARD,
            (
                None,
                REBOOTING,
                "reboot_pending",
                "reboot_started",
                RESUMING,
                REBOOTING_HARD,
                UNPAUSING,
                PAUSING,
                SUSPENDING,
            ),
        ),
        Action("pause", (ACTIVE,), PAUSING),
        Action("unpause", (PAUSED,), UNPAUSING),
        Action("suspend", (ACTIVE,), SUSPENDING),
        Action("resume", (SUSPENDED,), RESUMING),
        Action("rebuild", (ACTIVE, STOPPED, ERROR), REBUILDING),
        Action("resize", (ACTIVE, STOPPED), RESIZE_PREP),
        Action("confirmResize", (RESIZED,), None),
        Action("revertResize", (RESIZED,), RESIZE_REVERTING),
        Action("createImage", (ACTIVE, STOPPED, PAUSED, SUSPENDED), IMAGE_SNAPSHOT),
        Action("rescue", (ACTIVE, STOPPED, ERROR), RESCUING),
        Action("unrescue", (RESCUED,), UNRESCUING),
        Action("shelve", (ACTIVE, STOPPED, PAUSED, SUSPENDED), SHELVING),
        Action("shelveOffload", (SHELVED,), SHELVING_OFFLOADING),
        Action("unshelve", (SHELVED, SHELVED_OFFLOADED), UNSHELVING),
        Action("trigger_crash_dump", (ACTIVE, PAUSED, RESCUED, RESIZED, ERROR), None),
        Action(
            "delete",
            (
                ACTIVE,
                BUILDING,
                STOPPED,
                PAUSED,
                SUSPENDED,
                RESCUED,
                RESIZED,
                ERROR,
                SHELVED,
                SHELVED_OFFLOADED,
                SOFT_DELETED,
            ),
            DELETING,
            # Nova deletes whatever the task (a stuck build, a reboot).
            (
                None,
                SCHEDULING,
                NETWORKING,
                SPAWNING,
                REBOOTING,
                REBOOTING_HARD,
                PAUSING,
                UNPAUSING,
                SUSPENDING,
                RESUMING,
                POWERING_OFF,
                POWERING_ON,
                REBUILDING,
                RESIZE_PREP,
                RESIZE_MIGRATING,
                RESIZE_FINISH,
                RESIZE_REVERTING,
                IMAGE_SNAPSHOT,
                IMAGE_PENDING_UPLOAD,
                IMAGE_UPLOADING,
                DELETING,
                SHELVING,
                SHELVING_OFFLOADING,
                UNSHELVING,
                RESCUING,
                UNRESCUING,
                MIGRATING,
            ),
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class Outcome:
    vm_state: str | None  # None: keep the vm_state the task started from
    power_state: int


# What a task that finished leaves: the agent reports success for the generation that
# carried the task, and the intake applies this and clears task_state.
DONE: dict[str | None, Outcome] = {
    SPAWNING: Outcome(ACTIVE, RUNNING),
    None: Outcome(None, RUNNING),
    POWERING_ON: Outcome(ACTIVE, RUNNING),
    POWERING_OFF: Outcome(STOPPED, SHUTDOWN),
    REBOOTING: Outcome(ACTIVE, RUNNING),
    REBOOTING_HARD: Outcome(ACTIVE, RUNNING),
    PAUSING: Outcome(PAUSED, POWER_PAUSED),
    UNPAUSING: Outcome(ACTIVE, RUNNING),
    SUSPENDING: Outcome(SUSPENDED, POWER_SUSPENDED),
    RESUMING: Outcome(ACTIVE, RUNNING),
    # A rebuild keeps the state it ran from (a stopped server stays stopped; the API
    # moves an errored one to active when the rebuild starts).
    REBUILDING: Outcome(None, RUNNING),
    RESIZE_PREP: Outcome(RESIZED, RUNNING),
    RESIZE_MIGRATING: Outcome(RESIZED, RUNNING),
    RESIZE_FINISH: Outcome(RESIZED, RUNNING),
    # The API puts back the vm_state the resize left (active or stopped) as the revert
    # starts.
    RESIZE_REVERTING: Outcome(None, RUNNING),
    IMAGE_SNAPSHOT: Outcome(None, RUNNING),
    IMAGE_PENDING_UPLOAD: Outcome(None, RUNNING),
    IMAGE_UPLOADING: Outcome(None, RUNNING),
    RESCUING: Outcome(RESCUED, RUNNING),
    UNRESCUING: Outcome(ACTIVE, RUNNING),
    SHELVING: Outcome(SHELVED, SHUTDOWN),
    SHELVING_OFFLOADING: Outcome(SHELVED_OFFLOADED, SHUTDOWN),
    UNSHELVING: Outcome(ACTIVE, RUNNING),
}

# A failed task: a failed build or rebuild is ERROR; most others go back to where they
# started with the task cleared (and an instance fault recorded), as Nova's
# reverts_task_state does.
FAILED_TO_ERROR = frozenset({SPAWNING, SCHEDULING, NETWORKING, REBUILDING, UNSHELVING})


def can_start(action: str, vm_state: str, task_state: str | None) -> bool:
    rule = ACTIONS[action]
    return vm_state in rule.vm_states and task_state in rule.task_states
