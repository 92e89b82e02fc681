"""Requests the API makes of the compute agent of a host (``compute-rpc.<host>``).

API handlers run in worker threads; the bus lives on the process's event loop
(``runtime.attach_bus``). A call is run on that loop and waited for here, with a
timeout, and the agent's answers become Nova's errors: no host or no answer in
time is 409 (InstanceNotReady: try again later), no guest on the host is 404
(ConsoleNotAvailable), a driver without the feature is 501.

A handler should call these outside a write transaction (a ``manual_tx`` route):
the agent may take up to the timeout to answer, and a write transaction held
that long would queue every other writer of a SQLite cloud behind it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re

from stackbox import rest
from stackbox.bus import codec, compute_messages, interface
from stackbox.compute import errors, runtime

DEFAULT_TIMEOUT = 10.0
# Nova strips what is not valid in XML from console output (kept for compatibility).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


class AgentUnreachable(Exception):
    """The agent of the host did not answer (or this process has no bus)."""


def call(host: str, request: codec.Record, timeout: float = DEFAULT_TIMEOUT) -> codec.Record:
    """Send ``request`` to the agent of ``host`` and wait for its answer.

    Raises ``AgentUnreachable`` or the bus's ``RemoteError`` (the agent failed).
    """
    rt = runtime.get()
    loop = rt.loop
    if rt.bus is None or loop is None or loop.is_closed():
        raise AgentUnreachable("this process has no bus to reach compute agents")
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("agent_calls must not be used from the bus's own event loop")
    future = asyncio.run_coroutine_threadsafe(
        rt.bus.call(compute_messages.rpc_topic(host), request, timeout), loop
    )
    try:
        answer: codec.Record = future.result(timeout + 5)
    except (interface.CallTimeout, interface.Closed, concurrent.futures.TimeoutError) as exc:
        future.cancel()
        raise AgentUnreachable(str(exc) or "no answer") from None
    return answer


def console_output(
    host: str | None, server_id: str, length: int | None = None, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """The last ``length`` lines of the server's console (all when None)."""
    not_ready = errors.conflict(f"Instance {server_id} is not ready")
    if not host:
        raise not_ready
    try:
        answer = call(host, compute_messages.GetConsoleOutput(server_id, length), timeout)
    except AgentUnreachable:
        raise not_ready from None
    except interface.RemoteError as exc:
        if exc.error_type == "InstanceNotFound":
            raise errors.not_found("Guest does not have a console available.") from None
        if exc.error_type == "NotSupported":
            raise rest.NotImplementedYet("The requested functionality is not supported.") from None
        raise not_ready from None
    assert isinstance(answer, compute_messages.ConsoleOutput)
    return _CONTROL.sub("", answer.output)
