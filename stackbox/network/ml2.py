"""ML2 type drivers: which segments a network may have, and who gets which id.

Types: ``local``, ``flat`` (physical networks from config), ``vlan`` (ranges per
physical network), ``vxlan`` (VNI ranges) and ``gre`` (key ranges). A
segmentation id is taken by inserting its row in ``net_segment_allocation``,
whose primary key makes it unique: two concurrent networks can never share
one, on SQLite or PostgreSQL (the loser retries with the next free id).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.config import NetworkSettings
from stackbox.network import common, errors, models

TYPES = ("local", "flat", "vlan", "vxlan", "gre")
# Types whose ids come from ranges (flat and local have none).
RANGED = ("vlan", "vxlan", "gre")
# VXLAN's 50-byte encapsulation overhead (IPv4), as Neutron computes MTUs.
OVERHEAD = {"vxlan": 50, "gre": 42, "vlan": 0, "flat": 0, "local": 0}
MAX_IDS = {"vlan": 4094, "vxlan": 2**24 - 1, "gre": 2**32 - 1}


@dataclasses.dataclass(frozen=True)
class Ranges:
    vxlan: list[tuple[int, int]]
    gre: list[tuple[int, int]]
    vlan: dict[str, list[tuple[int, int]]]
    flat: list[str]


def _pairs(text: str) -> list[tuple[int, int]]:
    result = []
    for item in text.split(","):
        item = item.strip()
        if item:
            first, _, last = item.partition(":")
            result.append((int(first), int(last or first)))
    return result


def ranges(settings: NetworkSettings) -> Ranges:
    vlan: dict[str, list[tuple[int, int]]] = {}
    for item in settings.network_vlan_ranges.split(","):
        parts = item.strip().split(":")
        if len(parts) == 3:
            vlan.setdefault(parts[0], []).append((int(parts[1]), int(parts[2])))
        elif len(parts) == 1 and parts[0]:
            vlan.setdefault(parts[0], [])
    flat = [p.strip() for p in settings.flat_networks.split(",") if p.strip()]
    return Ranges(_pairs(settings.vni_ranges), _pairs(settings.gre_ranges), vlan, flat)


def tenant_type(settings: NetworkSettings) -> str:
    return next((t.strip() for t in settings.tenant_network_types.split(",") if t.strip()), "local")


def mtu(settings: NetworkSettings, network_type: str) -> int:
    return settings.global_physnet_mtu - OVERHEAD.get(network_type, 0)


def _taken(session: Session, network_type: str, physnet: str) -> set[int]:
    return set(
        session.scalars(
            select(models.SegmentAllocation.segmentation_id).where(
                models.SegmentAllocation.network_type == network_type,
                models.SegmentAllocation.physical_network == physnet,
            )
        )
    )


def _claim(session: Session, network_type: str, physnet: str, seg_id: int, segment_id: str) -> bool:
    """Insert the allocation row in a savepoint; False if someone else holds the id."""
    try:
        with session.begin_nested():
            session.add(
                models.SegmentAllocation(
                    network_type=network_type,
                    physical_network=physnet,
                    segmentation_id=seg_id,
                    segment_id=segment_id,
                )
            )
        return True
    except IntegrityError:
        return False


def _range_list(r: Ranges, network_type: str, physnet: str) -> list[tuple[int, int]]:
    if network_type == "vxlan":
        return r.vxlan
    if network_type == "gre":
        return r.gre
    return r.vlan.get(physnet, [])


def allocate(session: Session, settings: NetworkSettings, segment: models.Segment) -> None:
    """Give ``segment`` a free segmentation id from its type's ranges (409 when none)."""
    r = ranges(settings)
    physnet = segment.physical_network or ""
    taken = _taken(session, segment.network_type, physnet)
    for first, last in _range_list(r, segment.network_type, physnet):
        for candidate in range(first, last + 1):
            if candidate in taken:
                continue
            if _claim(session, segment.network_type, physnet, candidate, segment.id):
                segment.segmentation_id = candidate
                return
    raise rest.Conflict(
        "Unable to create the network. No tenant network is available for allocation.",
        kind="NoNetworkAvailable",
    )


def reserve(session: Session, settings: NetworkSettings, segment: models.Segment) -> None:
    """Take the id an admin asked for (409 if in use); ids outside the ranges are allowed."""
    physnet = segment.physical_network or ""
    assert segment.segmentation_id is not None
    if not _claim(session, segment.network_type, physnet, segment.segmentation_id, segment.id):
        what = {"vlan": "VLAN", "vxlan": "VXLAN", "gre": "GRE"}[segment.network_type]
        raise rest.Conflict(
            f"Unable to create the network. The {what} {segment.segmentation_id} on physical "
            f"network {physnet or 'None'} is in use.",
            kind="VlanIdInUse" if what == "VLAN" else "TunnelIdInUse",
        )


def validate_provider(settings: NetworkSettings, spec: dict[str, Any]) -> dict[str, Any]:
    """Check admin-given provider attributes against the type drivers' config."""
    network_type = spec.get("provider:network_type")
    physnet = spec.get("provider:physical_network")
    seg_id = spec.get("provider:segmentation_id")
    r = ranges(settings)
    if network_type not in TYPES:
        raise errors.invalid_input(f"network_type value '{network_type}' not supported")
    if network_type in ("local", "vxlan", "gre") and physnet:
        raise errors.invalid_input(
            f"provider:physical_network specified for {network_type} network"
        )
    if network_type in ("local", "flat") and seg_id is not None:
        raise errors.invalid_input(f"segmentation_id specified for {network_type} network")
    if network_type == "flat":
        if not physnet:
            raise errors.invalid_input("physical_network required for flat provider network")
        if "*" not in r.flat and physnet not in r.flat:
            raise errors.invalid_input(
                f"physical_network '{physnet}' unknown for flat provider network"
            )
    if network_type == "vlan":
        if not physnet:
            raise errors.invalid_input("physical_network required for VLAN provider network")
        if physnet not in r.vlan:
            raise errors.invalid_input(
                f"physical_network '{physnet}' unknown for VLAN provider network"
            )
    if network_type in RANGED and seg_id is not None:
        top = MAX_IDS[network_type]
        if not 1 <= int(seg_id) <= top:
            raise errors.invalid_input(f"segmentation_id out of range (1 through {top})")
    return {"network_type": network_type, "physical_network": physnet, "segmentation_id": seg_id}


def add_segment(
    session: Session,
    settings: NetworkSettings,
    network: models.Network,
    network_type: str,
    physnet: str | None,
    seg_id: int | None,
    index: int = 0,
) -> models.Segment:
    segment = models.Segment(
        id=common.new_id(),
        network_id=network.id,
        network_type=network_type,
        physical_network=physnet,
        segmentation_id=seg_id,
        segment_index=index,
        created_at=common.now(),
        updated_at=common.now(),
        revision_number=0,
    )
    session.add(segment)
    session.flush()
    if network_type in RANGED:
        if seg_id is None:
            allocate(session, settings, segment)
        else:
            reserve(session, settings, segment)
    elif network_type == "flat" and not _claim(session, "flat", physnet or "", 0, segment.id):
        # One flat network per physical network, as ML2's flat driver allows.
        raise rest.Conflict(
            f"Unable to create the flat network. Physical network {physnet} is in use.",
            kind="FlatNetworkInUse",
        )
    return segment


def segments_of(session: Session, network_ids: list[str]) -> dict[str, list[models.Segment]]:
    found: dict[str, list[models.Segment]] = {n: [] for n in network_ids}
    for start in range(0, len(network_ids), 500):
        for segment in session.scalars(
            select(models.Segment)
            .where(models.Segment.network_id.in_(network_ids[start : start + 500]))
            .order_by(models.Segment.segment_index)
        ):
            found[segment.network_id].append(segment)
    return found
