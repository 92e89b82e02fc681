"""Whether a compute service is up: it reported within ``service_down_time`` and is
not forced down (Nova's DB servicegroup driver)."""

from __future__ import annotations

import datetime

from stackbox.compute import models


def is_up(service: models.Service, now: datetime.datetime, down_time: int) -> bool:
    if service.forced_down or service.last_seen_up is None:
        return False
    return (now - service.last_seen_up).total_seconds() <= down_time
