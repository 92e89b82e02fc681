"""The controller's RPC server: answers agents' requests on the ``controller`` topic.

Each request runs in one database transaction in a worker thread (reads for the
desired-state queries, writes for reports and heartbeats), so the event loop that
carries the bus never waits for the database. The contract — which request gets
which answer — is documented in ``bus.messages``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from stackbox.bus import codec, compute_messages, interface, messages
from stackbox.controller import compute_rpc, desired, dhcp_ports, intake
from stackbox.db import session as db_session


def _answer(request: codec.Record) -> tuple[Callable[[Session], Any], bool]:
    """The transaction that answers ``request`` and whether it writes."""
    match request:
        case messages.GetPortsForHost(host=host, port_ids=port_ids):
            return lambda s: messages.PortsForHost(
                host, desired.ports_for_host(s, host, port_ids)
            ), False
        case messages.GetNetwork(network_id=network_id):
            return lambda s: messages.NetworkInfo(
                network_id, desired.network_spec(s, network_id)
            ), False
        case messages.GetDhcpNetworks(host=host):
            return lambda s: messages.DhcpNetworks(host, desired.dhcp_networks(s, host)), False
        case messages.GetRouters(host=host, router_ids=router_ids):
            return lambda s: messages.RoutersForHost(
                host, desired.routers_for_host(s, host, router_ids)
            ), False
        case messages.GetSecurityGroupRulesForPorts(port_ids=port_ids):
            return lambda s: desired.security_group_rules(s, port_ids), False
        case messages.GetL2Population(network_id=network_id):
            return lambda s: desired.l2_population(s, network_id), False
        case messages.ReportPortStatus():
            return lambda s: intake.record_port_status(s, request), True
        case messages.Heartbeat():
            return lambda s: intake.record_heartbeat(s, request), True
        case messages.EnsureDhcpPort(host=host, network_id=network_id):
            return lambda s: dhcp_ports.ensure(s, host, network_id), True
        case messages.ReleaseDhcpPort(host=host, network_id=network_id):
            return lambda s: dhcp_ports.release(s, host, network_id), True
        case (
            compute_messages.GetServersForHost()
            | compute_messages.ReportServerStatus()
            | compute_messages.ComputeHeartbeat()
            | compute_messages.GetSnapshotTarget()
            | compute_messages.GetImageSource()
        ):
            return compute_rpc.answer(request)
    raise ValueError(f"the controller does not answer {type(request).__name__}")


class RpcServer:
    def __init__(self, database: db_session.Database, bus: interface.Bus) -> None:
        self.database = database
        self.bus = bus
        self._service: interface.Service | None = None

    async def handle(self, request: codec.Record) -> codec.Record:
        work, write = _answer(request)
        answer: codec.Record = await asyncio.to_thread(self.database.run, work, write=write)
        return answer

    def start(self) -> None:
        self._service = self.bus.serve(messages.CONTROLLER_TOPIC, self.handle)

    def stop(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None
