"""``os-instance_usage_audit_log``: the instance usage audit of the last completed
period (Nova's default ``instance_usage_audit_period``: a calendar month), overall and
per compute host.

Nova's compute hosts write a task log when they run the periodic audit (counting the
instances active on them during the period, for billing notifications). stackbox keeps
no task log: the audit of a completed period is computed from the servers' rows when
asked, and is the same count. A compute host that was registered after the period
ended never audited it and is listed as not run. ``GET .../{before}`` audits the last
period completed before that time (``%Y-%m-%d %H:%M:%S[.%f]``, 400 otherwise).
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, models, services

POLICY = "os_compute_api:os-instance-usage-audit-log:"


def last_completed_period(
    before: datetime.datetime | None = None,
) -> tuple[datetime.datetime, datetime.datetime]:
    """The month that ended last before ``before`` (default: now), as (begin, end)."""
    moment = before or common.now()
    end = datetime.datetime(moment.year, moment.month, 1)
    if end >= moment:
        end = _month_before(end)
    return _month_before(end), end


def _month_before(first: datetime.datetime) -> datetime.datetime:
    if first.month == 1:
        return first.replace(year=first.year - 1, month=12)
    return first.replace(month=first.month - 1)


def _active_count(
    session: Session, host: str, begin: datetime.datetime, end: datetime.datetime
) -> int:
    """Servers on ``host`` that ran at some time in [begin, end) (deleted ones included)."""
    S = models.Server
    return int(
        session.scalar(
            select(func.count()).where(
                S.host == host,
                S.launched_at.is_not(None),
                S.launched_at < end,
                or_(S.terminated_at.is_(None), S.terminated_at > begin),
            )
        )
        or 0
    )


def audit(session: Session, before: datetime.datetime | None = None) -> dict[str, Any]:
    begin, end = last_completed_period(before)
    hosts: dict[str, models.Service] = {}
    for service in session.scalars(
        select(models.Service)
        .where(models.Service.binary == services.COMPUTE)
        .order_by(models.Service.host)
    ):
        hosts.setdefault(service.host, service)
    log: dict[str, dict[str, Any]] = {}
    for host, service in hosts.items():
        if service.created_at is None or service.created_at >= end:
            continue
        count = _active_count(session, host, begin, end)
        log[host] = {
            "state": "DONE",
            "instances": count,
            "errors": 0,
            "message": f"Instance usage audit of host {host}: {count} instances active "
            "in the period.",
        }
    not_run = [host for host in hosts if host not in log]
    done = len(log)
    total_errors = sum(entry["errors"] for entry in log.values())
    which = "ALL" if done == len(hosts) else f"{done} of {len(hosts)}"
    return {
        "period_beginning": str(begin),
        "period_ending": str(end),
        "num_hosts": len(hosts),
        "num_hosts_done": done,
        "num_hosts_running": 0,
        "num_hosts_not_run": len(not_run),
        "hosts_not_run": not_run,
        "total_instances": sum(entry["instances"] for entry in log.values()),
        "total_errors": total_errors,
        "overall_status": f"{which} hosts done. {total_errors} errors.",
        "log": log,
    }


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, POLICY + "list")
    return {"instance_usage_audit_logs": audit(session)}


def _before(text: str) -> datetime.datetime:
    pattern = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    try:
        return datetime.datetime.strptime(text, pattern)
    except ValueError:
        raise errors.bad_request(f"Invalid timestamp for date {text}") from None


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, POLICY + "show")
    before = _before(request.path_params["before"])
    return {"instance_usage_audit_log": audit(session, before)}


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-instance_usage_audit_log", index),
    rest.Route("GET", "/v2.1/os-instance_usage_audit_log/{before}", show),
]
