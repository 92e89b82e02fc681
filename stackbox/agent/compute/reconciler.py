"""The compute reconciler: one server id at a time, level-based (DESIGN §4-5).

``reconcile(server_id)`` fetches the server's spec, compares it with what the
driver has, and acts:

- no spec (deleted, moved, never here): destroy whatever the driver has of it;
- a generation not yet carried out: carry out its task once (spawn while
  building, reboot, delete...), then report ``ServerStatus`` for that generation;
- a generation already carried out (the controller's ``observed_generation``, or
  this agent's memory of what it reported): keep the guest as the spec says it
  is — a guest the host lost (a restarted fake, a rebooted host) is made again
  and put back in its power state — and report a power state that changed on
  its own.

The memory of reported generations only stops a task running twice when the
controller ignored a report; after a restart the agent trusts the spec's
``observed_generation``. A task whose report did not get through is not run
again: its outcome is kept and only the report is retried.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from stackbox.agent.compute import driver, uploads
from stackbox.bus import codec, compute_messages, compute_specs, interface

LOG = logging.getLogger(__name__)

Call = Callable[[codec.Record], Awaitable[Any]]
Upload = Callable[[compute_messages.SnapshotTarget, Path], Awaitable[None]]

# vm_state and task_state values (stackbox.compute.states is their authority).
BUILDING = "building"
ACTIVE = "active"
STOPPED = "stopped"
PAUSED = "paused"
SUSPENDED = "suspended"
RESCUED = "rescued"
RESIZED = "resized"
SHELVED = "shelved"
SOFT_DELETED = "soft-delete"
DELETING = "deleting"

# Tasks a server may carry while it is still being built.
BUILD_TASKS = frozenset({None, "scheduling", "networking", "block_device_mapping", "spawning"})

# The power state of a server's guest in each vm_state where one exists.
GUEST_POWER = {
    ACTIVE: compute_specs.RUNNING,
    STOPPED: compute_specs.SHUTDOWN,
    PAUSED: compute_specs.PAUSED,
    SUSPENDED: compute_specs.SUSPENDED,
    RESCUED: compute_specs.RUNNING,
    RESIZED: compute_specs.RUNNING,
    SHELVED: compute_specs.SHUTDOWN,
    SOFT_DELETED: compute_specs.SHUTDOWN,
}

FAULT_DETAILS_MAX = 4000


class Reconciler:
    def __init__(
        self,
        host: str,
        compute: driver.Driver,
        call: Call,
        *,
        work_dir: Path,
        upload: Upload = uploads.upload,
    ) -> None:
        self.host = host
        self.driver = compute
        self.call = call
        self.work_dir = work_dir
        self.upload = upload
        # Server id -> the last generation this agent reported as carried out.
        self.converged: dict[str, int] = {}
        # Server id -> (generation, status) carried out but not yet acknowledged.
        self._unreported: dict[str, tuple[int, compute_specs.ServerStatus]] = {}
        self._tasks: dict[str | None, Callable[[compute_specs.ServerSpec], Awaitable[None]]] = {
            None: self._observe,
            DELETING: self._destroy,
            "powering-on": self._power_on,
            "powering-off": self._power_off,
            "rebooting": self._soft_reboot,
            "rebooting_hard": self._hard_reboot,
            "pausing": self._with_guest(self.driver.pause),
            "unpausing": self._with_guest(self.driver.unpause),
            "suspending": self._with_guest(self.driver.suspend),
            "resuming": self._with_guest(self.driver.resume),
            "rebuilding": self._rebuild,
            "resize_prep": self._resize,
            "resize_migrating": self._resize,
            "resize_finish": self._resize,
            "resize_reverting": self._revert_resize,
            "image_snapshot": self._snapshot,
            "image_pending_upload": self._snapshot,
            "image_uploading": self._snapshot,
            "rescuing": self._rescue,
            "unrescuing": self._unrescue,
            "shelving": self._shelve,
            "shelving_offloading": self._destroy,
            "unshelving": self._unshelve,
        }

    @property
    def handled_tasks(self) -> frozenset[str | None]:
        return frozenset(self._tasks) | BUILD_TASKS

    # --- the loop body ----------------------------------------------------------------------

    async def reconcile(self, server_id: str) -> None:
        answer = await self.call(compute_messages.GetServersForHost(self.host, (server_id,)))
        spec = next((s for s in answer.servers if s.id == server_id), None)
        if spec is None:
            await self._remove(server_id)
            return
        if max(spec.observed_generation, self.converged.get(server_id, 0)) >= spec.generation:
            await self._keep(spec)
            return
        pending = self._unreported.get(server_id)
        if pending is not None and pending[0] == spec.generation:
            status = pending[1]
        else:
            status = await self._carry_out(spec)
            self._unreported[server_id] = (spec.generation, status)
        await self._report(status)

    async def wanted_and_held(self) -> set[str]:
        """Every server this host should have or has: what a full resync queues."""
        answer = await self.call(compute_messages.GetServersForHost(self.host))
        keys = {s.id for s in answer.servers} | set(await self.driver.list_instances())
        for server_id in set(self.converged) - keys:
            del self.converged[server_id]  # gone while no nudge came for it
        return keys

    async def _report(self, status: compute_specs.ServerStatus) -> None:
        ack = await self.call(compute_messages.ReportServerStatus(self.host, (status,)))
        self._unreported.pop(status.id, None)
        self.converged[status.id] = status.observed_generation
        if status.id in ack.unknown or (status.ok and status.task == DELETING):
            await self._remove(status.id)

    async def _remove(self, server_id: str) -> None:
        """Not wanted here: destroy what the driver has of it, forget it."""
        if await self.driver.get_info(server_id) is not None:
            LOG.info("destroying server %s: it is not wanted on %s", server_id, self.host)
            await self.driver.destroy(server_id)
        self.converged.pop(server_id, None)
        self._unreported.pop(server_id, None)

    # --- a generation already carried out ---------------------------------------------------

    async def _keep(self, spec: compute_specs.ServerSpec) -> None:
        if spec.task_state is not None:
            return  # a task the controller did not take our report for: wait for a new one
        info = await self.driver.get_info(spec.id)
        if info is None and spec.vm_state in GUEST_POWER:
            LOG.info(
                "server %s is %s but %s has no guest: making it again",
                spec.id,
                spec.vm_state,
                self.host,
            )
            try:
                await self._restore(spec)
            except driver.DriverError as exc:
                LOG.warning("server %s could not be made again: %s", spec.id, exc)
            info = await self.driver.get_info(spec.id)
        power = info.power_state if info is not None else compute_specs.NOSTATE
        if power != spec.power_state:
            await self._report(
                compute_specs.ServerStatus(spec.id, spec.generation, ok=True, power_state=power)
            )

    async def _restore(self, spec: compute_specs.ServerSpec) -> None:
        """Make a lost guest again and put it in the power state its vm_state implies."""
        await self.driver.spawn(spec)
        want = GUEST_POWER.get(spec.vm_state, compute_specs.RUNNING)
        if want == compute_specs.SHUTDOWN:
            await self.driver.power_off(spec.id)
        elif want == compute_specs.PAUSED:
            await self.driver.pause(spec.id)
        elif want == compute_specs.SUSPENDED:
            await self.driver.suspend(spec.id)

    # --- a new generation: its task, once ---------------------------------------------------

    async def _carry_out(self, spec: compute_specs.ServerSpec) -> compute_specs.ServerStatus:
        started = time.time()
        task = spec.task_state
        try:
            if task != DELETING and spec.vm_state == BUILDING and task in BUILD_TASKS:
                await self._spawn(spec)
            else:
                action = self._tasks.get(task)
                if action is None:
                    raise driver.NotSupported(f"The compute agent cannot carry out task {task}.")
                await action(spec)
        except driver.DriverError as exc:
            return await self._failed(spec, exc, started)
        except (interface.CallTimeout, interface.Closed):
            raise  # the controller is out of reach (mid-snapshot): the whole task is retried
        except Exception as exc:  # a driver bug must still end the task, with a fault
            LOG.exception("task %s of server %s failed", task, spec.id)
            return await self._failed(spec, exc, started)
        return compute_specs.ServerStatus(
            spec.id,
            spec.generation,
            ok=True,
            task=task,
            power_state=await self._power(spec.id),
            started_at=started,
        )

    async def _failed(
        self, spec: compute_specs.ServerSpec, exc: Exception, started: float
    ) -> compute_specs.ServerStatus:
        reason = str(exc) or type(exc).__name__
        if spec.vm_state == BUILDING and spec.task_state in BUILD_TASKS:
            message = f"Build of instance {spec.id} aborted: {reason}"
        else:
            message = reason
        details = "".join(traceback.format_exception(exc))[-FAULT_DETAILS_MAX:]
        LOG.info("task %s of server %s failed: %s", spec.task_state, spec.id, message)
        return compute_specs.ServerStatus(
            spec.id,
            spec.generation,
            ok=False,
            task=spec.task_state,
            power_state=await self._power(spec.id),
            fault_message=message,
            fault_details=details,
            started_at=started,
        )

    async def _power(self, server_id: str) -> int:
        info = await self.driver.get_info(server_id)
        return info.power_state if info is not None else compute_specs.NOSTATE

    async def _ensure_guest(self, spec: compute_specs.ServerSpec) -> None:
        """Tasks act on a guest: one the host lost is made again first."""
        if await self.driver.get_info(spec.id) is None:
            LOG.info("server %s has no guest on %s: making it again", spec.id, self.host)
            await self.driver.spawn(spec)

    def _with_guest(
        self, operation: Callable[[str], Awaitable[None]]
    ) -> Callable[[compute_specs.ServerSpec], Awaitable[None]]:
        async def run(spec: compute_specs.ServerSpec) -> None:
            await self._ensure_guest(spec)
            await operation(spec.id)

        return run

    async def _observe(self, spec: compute_specs.ServerSpec) -> None:
        """No task: the generation changed for something the host need not act on."""

    async def _spawn(self, spec: compute_specs.ServerSpec) -> None:
        if await self.driver.get_info(spec.id) is not None:
            # A guest from a build that never reported (the agent restarted midway):
            # the build is not known to be whole, so it is done again.
            await self.driver.destroy(spec.id)
        await self.driver.spawn(spec)

    async def _destroy(self, spec: compute_specs.ServerSpec) -> None:
        await self.driver.destroy(spec.id)

    async def _power_on(self, spec: compute_specs.ServerSpec) -> None:
        await self._ensure_guest(spec)
        await self.driver.power_on(spec.id)

    async def _power_off(self, spec: compute_specs.ServerSpec) -> None:
        if await self.driver.get_info(spec.id) is not None:
            await self.driver.power_off(spec.id)

    async def _soft_reboot(self, spec: compute_specs.ServerSpec) -> None:
        await self._ensure_guest(spec)
        await self.driver.reboot(spec, hard=False)

    async def _hard_reboot(self, spec: compute_specs.ServerSpec) -> None:
        await self._ensure_guest(spec)
        await self.driver.reboot(spec, hard=True)

    async def _rebuild(self, spec: compute_specs.ServerSpec) -> None:
        await self.driver.rebuild(spec)
        if spec.vm_state == STOPPED:
            # Nova rebuilds a stopped server and leaves it stopped.
            await self.driver.power_off(spec.id)

    async def _resize(self, spec: compute_specs.ServerSpec) -> None:
        flavor = spec.new_flavor or spec.flavor
        if flavor is None:
            raise driver.DriverError(f"Server {spec.id} has no flavor to resize to.")
        await self._ensure_guest(spec)
        await self.driver.resize(spec, flavor)

    async def _revert_resize(self, spec: compute_specs.ServerSpec) -> None:
        flavor = spec.old_flavor or spec.flavor
        if flavor is None:
            raise driver.DriverError(f"Server {spec.id} has no flavor to go back to.")
        await self._ensure_guest(spec)
        await self.driver.resize(spec, flavor)

    async def _rescue(self, spec: compute_specs.ServerSpec) -> None:
        await self._ensure_guest(spec)
        await self.driver.rescue(spec)

    async def _unrescue(self, spec: compute_specs.ServerSpec) -> None:
        await self._ensure_guest(spec)
        await self.driver.unrescue(spec.id)

    async def _shelve(self, spec: compute_specs.ServerSpec) -> None:
        await self._snapshot(spec)
        await self._power_off(spec)

    async def _unshelve(self, spec: compute_specs.ServerSpec) -> None:
        if await self.driver.get_info(spec.id) is None:
            await self.driver.spawn(spec)
        else:
            await self.driver.power_on(spec.id)

    async def _snapshot(self, spec: compute_specs.ServerSpec) -> None:
        """Each waiting snapshot image: the driver writes a file, the agent uploads it."""
        if not spec.snapshots:
            return
        await self._ensure_guest(spec)
        for snapshot in spec.snapshots:
            path = self.work_dir / f"snapshot-{spec.id}-{snapshot.image_id}"
            try:
                written = await self.driver.snapshot(spec.id, snapshot, path)
                target = await self.call(
                    compute_messages.GetSnapshotTarget(
                        spec.id, snapshot.image_id, written, snapshot.container_format or "bare"
                    )
                )
                if target.gone:
                    LOG.info("snapshot image %s of %s is gone; skipped", snapshot.image_id, spec.id)
                    continue
                if target.error or not target.url:
                    raise driver.DriverError(target.error or "No upload target for the snapshot.")
                try:
                    await self.upload(target, path)
                except uploads.UploadFailed as exc:
                    raise driver.DriverError(
                        f"Snapshot {snapshot.image_id} of instance {spec.id} failed: {exc}"
                    ) from None
            finally:
                path.unlink(missing_ok=True)
