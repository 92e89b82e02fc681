"""Subunit on stdin -> JSON list of test results on stdout.

Runs with Tempest's venv Python (it needs python-subunit and testtools), not the runner's.
stestr's repository files hold subunit v1; `tempest run --subunit` writes v2: read both.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import subunit
import testtools

V2_SIGNATURE = b"\xb3"


def main() -> int:
    results: list[dict[str, Any]] = []

    def record(test: dict[str, Any]) -> None:
        details = test.get("details") or {}

        def text(name: str) -> str:
            content = details.get(name)
            return content.as_text() if content is not None else ""

        start, stop = (test.get("timestamps") or (None, None))[:2]
        seconds = (stop - start).total_seconds() if start and stop else 0.0
        logs = {name: text(name) for name in details if name.startswith("pythonlogging")}
        results.append(
            {
                "id": test["id"],
                "status": test["status"],
                "reason": text("reason"),
                "traceback": text("traceback"),
                "logs": logs,
                "seconds": seconds,
            }
        )

    data = io.BytesIO(sys.stdin.buffer.read())
    sink = testtools.StreamToDict(record)
    if data.getvalue()[:1] == V2_SIGNATURE:
        source: Any = subunit.ByteStreamToStreamResult(data, non_subunit_name="stdout")
        target: Any = sink
    else:
        source = subunit.ProtocolTestCase(data)
        target = testtools.ExtendedToStreamDecorator(sink)
    target.startTestRun()
    source.run(target)
    target.stopTestRun()
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
