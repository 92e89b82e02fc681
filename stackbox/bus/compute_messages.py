"""The compute agents' messages: nudges, RPC to the controller, RPC to an agent.

Topics:
- ``compute`` (every compute agent) and ``compute.<host>`` (the agent of one host):
  ``messages.Nudge(kind="server", id=<server id>)``, published by the controller's
  outbox relay (``compute.notify`` writes them). The receiver asks for the spec.
- ``controller``: the requests below, answered by the controller (``controller.
  compute_rpc``), each in one database transaction.
- ``compute-rpc.<host>``: requests the API makes of the agent of one host (served
  by the agent, never touching the database).

Agent -> controller (answered from the database at the time of the request, so
asking twice is the same as asking once):

==================================  ==================================================
``GetServersForHost(host, ids)``     ``ServersForHost``: the spec of every server whose
                                     ``host`` is ``host`` and that is not deleted
                                     (optionally only those ids). A server that is not
                                     in the answer is not wanted on the host: the agent
                                     destroys what it has of it and reports nothing.
``ReportServerStatus(host, ...)``    ``ServerStatusAck``: which reports were applied,
                                     which were ignored (another generation: stale), and
                                     which servers are unknown or not on ``host`` any
                                     more (the agent destroys those).
``ComputeHeartbeat(host, ...)``      ``ComputeHeartbeatAck``: registers the host's
                                     nova-compute service and its compute node (the
                                     hypervisor) on first report; says whether the
                                     controller saw it as new, alive or revived (the
                                     agent resyncs when revived), and whether the
                                     service is disabled or forced down.
``GetSnapshotTarget(server, image)`` ``SnapshotTarget``: where to upload a snapshot's
                                     data (``<base>/image/v2/images/<id>/file``) and a
                                     short-lived token to do it with; ``gone`` when
                                     the image was deleted or is no longer queued
                                     (skip it), ``error`` when no upload may happen.
``GetImageSource(server, image)``    ``ImageSource``: where to download an image's data
                                     (``<base>/image/v2/images/<id>/file``) with a
                                     short-lived token of the server's user, the image's
                                     checksum, and ``error`` when it may not be read.
==================================  ==================================================

API -> agent of a host (on ``compute-rpc.<host>``):

==================================  ==================================================
``GetConsoleOutput(server, length)`` ``ConsoleOutput``: the last ``length`` lines of
                                     the guest's console (all when None). Fails with
                                     ``InstanceNotFound`` when the host has no such
                                     guest, ``NotSupported`` when its driver has none.
==================================  ==================================================

How a task flows: every API action bumps ``server.generation`` and sets a
``task_state``; the agent fetches the spec, carries the task out once per
generation, and reports ``ServerStatus(observed_generation=generation, task=...,
ok=...)``; the controller applies it only if the generation is still current, then
clears the task (``compute.states.DONE`` on success, a fault on failure).

A failed request raises ``RemoteError`` at the caller (see ``memory.Bus.call``).
"""

from __future__ import annotations

import dataclasses

from stackbox.bus import codec, compute_specs

COMPUTE_TOPIC = "compute"
NUDGE_KIND = "server"
BINARY = "nova-compute"
SERVICE_TOPIC = "compute"


def host_topic(host: str) -> str:
    """Nudges for the compute agent of one host."""
    return f"{COMPUTE_TOPIC}.{host}"


def rpc_topic(host: str) -> str:
    """Requests served by the compute agent of one host."""
    return f"compute-rpc.{host}"


# --- agent -> controller --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GetServersForHost(codec.Record):
    host: str
    server_ids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ServersForHost(codec.Record):
    host: str
    servers: tuple[compute_specs.ServerSpec, ...] = ()


@dataclasses.dataclass(frozen=True)
class ReportServerStatus(codec.Record):
    host: str
    servers: tuple[compute_specs.ServerStatus, ...] = ()


@dataclasses.dataclass(frozen=True)
class ServerStatusAck(codec.Record):
    updated: tuple[str, ...] = ()
    # Reports for another generation (or task) than the server's current one.
    ignored: tuple[str, ...] = ()
    # Servers that are gone or not on the reporting host: destroy them there.
    unknown: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ComputeHeartbeat(codec.Record):
    """A compute host's periodic report (Nova's service report plus resource update)."""

    host: str
    binary: str = BINARY
    topic: str = SERVICE_TOPIC
    report_interval: float = 10.0
    hypervisor: compute_specs.HypervisorReport | None = None
    # True on the first report after the agent started.
    start_flag: bool = False


@dataclasses.dataclass(frozen=True)
class ComputeHeartbeatAck(codec.Record):
    service_id: str
    # messages.AGENT_NEW / AGENT_ALIVE / AGENT_REVIVED
    status: str
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False


@dataclasses.dataclass(frozen=True)
class GetSnapshotTarget(codec.Record):
    server_id: str
    image_id: str
    # What the driver wrote, for an image that does not declare its formats yet.
    disk_format: str = ""
    container_format: str = ""


@dataclasses.dataclass(frozen=True)
class SnapshotTarget(codec.Record):
    image_id: str
    url: str = ""
    token: str = ""
    disk_format: str = ""
    container_format: str = ""
    # The image was deleted (or already got its data): nothing to upload, not a failure.
    gone: bool = False
    # Why no upload may happen (the snapshot task fails with this).
    error: str = ""


@dataclasses.dataclass(frozen=True)
class GetImageSource(codec.Record):
    server_id: str
    image_id: str


@dataclasses.dataclass(frozen=True)
class ImageSource(codec.Record):
    image_id: str
    url: str = ""
    token: str = ""
    # The image's md5 (Glance's checksum) and size, to check and to key a cache by.
    checksum: str = ""
    size: int | None = None
    error: str = ""


# --- API -> agent ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GetConsoleOutput(codec.Record):
    server_id: str
    length: int | None = None


@dataclasses.dataclass(frozen=True)
class ConsoleOutput(codec.Record):
    server_id: str
    output: str = ""
