"""The controller's side of agent scheduling: place what relayed nudges name, and sweep.

Every batch of nudges the relay is about to publish passes here first, so a
network that just got a DHCP subnet or a new router has its agent before the
agents hear of it. A periodic sweep moves networks off long-dead DHCP agents.
Work created while no agent could take it is placed when an agent registers or
comes back (``controller.intake``).
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox.bus import messages
from stackbox.controller import relay
from stackbox.db import session as db_session
from stackbox.network import agent_scheduling

LOG = logging.getLogger(__name__)


def place(session: Session, batch: relay.Batch, *, apply: bool = True) -> bool:
    """Place the networks and routers that changed; True if any needed an agent.

    Only changes count: resource nudges go to every agent (the broadcast topic), port
    nudges name their network. Nudges to one host's topic about a network or router
    are placement news (a binding made or removed, by an admin or by this scheduler)
    and must not undo it: a router an admin just took off an agent stays unhosted
    until it changes or an agent registers, as in Neutron.
    """
    networks: set[str] = set()
    routers: set[str] = set()
    for topic, nudge in batch:
        broadcast = topic == messages.NETWORK_TOPIC
        if nudge.kind == "network" and broadcast:
            networks.add(nudge.id)
        elif nudge.kind in ("port", "subnet") and nudge.network_id:
            networks.add(nudge.network_id)
        elif nudge.kind == "router" and broadcast:
            routers.add(nudge.id)
    placed = False
    for network_id in sorted(networks):
        placed |= bool(agent_scheduling.schedule_network(session, network_id, apply=apply))
    for router_id in sorted(routers):
        placed |= bool(agent_scheduling.schedule_router(session, router_id, apply=apply))
    return placed


def sweep(session: Session) -> None:
    agent_scheduling.remove_networks_from_dead_agents(session)


# How long a network found placed is taken as placed for its ports' nudges. Port
# creates come by the hundred per second on one network; asking each time cost a
# read transaction per port. Network and subnet nudges (including an admin's
# removal from an agent) ask again at once; dead agents are the sweep's business.
SETTLED_SECONDS = 2.0


class Scheduler:
    def __init__(self, database: db_session.Database) -> None:
        self.database = database
        self._settled: dict[str, float] = {}

    def _unsettled(self, batch: relay.Batch) -> relay.Batch:
        """The batch without port nudges of networks recently found placed."""
        now = time.monotonic()
        for _, nudge in batch:
            if nudge.kind == "network":
                self._settled.pop(nudge.id, None)
            elif nudge.kind == "subnet":
                self._settled.pop(nudge.network_id, None)
        return [
            (topic, nudge)
            for topic, nudge in batch
            if nudge.kind != "port" or self._settled.get(nudge.network_id, 0.0) <= now
        ]

    def _settle(self, batch: relay.Batch) -> None:
        now = time.monotonic()
        if len(self._settled) > 4096:
            self._settled = {k: t for k, t in self._settled.items() if t > now}
        for _, nudge in batch:
            if nudge.kind == "port" and nudge.network_id:
                self._settled[nudge.network_id] = now + SETTLED_SECONDS

    async def on_batch(self, batch: relay.Batch) -> None:
        batch = self._unsettled(batch)
        if not any(n.kind in ("network", "port", "subnet", "router") for _, n in batch):
            return
        # Most nudges name a network or router already hosted: ask in a read transaction
        # first, so that they do not queue behind (or hold up) the API's writers.
        needed = await asyncio.to_thread(
            self.database.run, lambda s: place(s, batch, apply=False), write=False
        )
        if not needed:
            self._settle(batch)
            return
        try:
            await asyncio.to_thread(self.database.run, lambda s: place(s, batch), write=True)
        except IntegrityError:
            # Another controller placed the same thing at the same time: it is placed.
            LOG.info("placement raced another controller, which placed it")

    async def sweep(self) -> None:
        await asyncio.to_thread(self.database.run, sweep, write=True)
