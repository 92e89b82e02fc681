"""A fresh PostgreSQL database per test, on the server STACKBOX_TEST_POSTGRES names.

STACKBOX_TEST_POSTGRES is the DSN of a maintenance database on a server where that
role may create databases (``scripts/with-postgres``, which `make test` runs under,
starts a private server and sets it). Unset: the PostgreSQL variants are skipped.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

DSN = os.environ.get("STACKBOX_TEST_POSTGRES", "")
SKIP_REASON = (
    "STACKBOX_TEST_POSTGRES is not set: no PostgreSQL server to test against "
    "(`make test` starts one; or run under scripts/with-postgres)"
)


@contextlib.contextmanager
def fresh_database(dsn: str = DSN) -> Iterator[str]:
    """Create an empty database; yield its SQLAlchemy URL; drop it afterwards."""
    name = f"stackbox_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(dsn).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            # FORCE: the cloud's pooled connections may still be open.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
