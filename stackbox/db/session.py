"""Units of work on one database.

SQLite allows one writer at a time; a second writer that collides gets
"database is locked" after the busy timeout. Rather than surface that, writes
in this process take one lock, so they queue instead of colliding, and readers
use WAL so they never wait for a writer.

PostgreSQL runs at READ COMMITTED with no process lock: writers of many
processes run at once, and what must stay unique is a constraint (a loser gets
an IntegrityError its caller turns into the next try or a 409) or is guarded by
a row lock (``SELECT ... FOR UPDATE``) or ``advisory_lock``. A transaction the
server aborts as a deadlock or serialization failure is run again from the
start, a bounded number of times with jittered backoff.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

LOG = logging.getLogger(__name__)
T = TypeVar("T")

AFTER_COMMIT = "stackbox.after_commit"


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide when transactions begin.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=8,
                max_overflow=24,
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            # Enough connections for every request worker thread of the API.
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=16,
                max_overflow=48,
                isolation_level="READ COMMITTED",
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock()

    def run(self, fn: Callable[[Session], T], *, write: bool) -> T:
        """Run ``fn`` in one transaction; commit if ``write``, then run after-commit hooks."""
        attempts = 0
        while True:
            attempts += 1
            serialize = write and self.is_sqlite
            lock = self._write_lock if serialize else contextlib.nullcontext()
            hooks: list[Callable[[], None]] = []
            with lock:
                session = self._sessions()
                try:
                    if write:
                        # A writer takes SQLite's write lock at BEGIN so it never has to
                        # upgrade a read lock halfway through (the classic deadlock).
                        session.connection(execution_options={"stackbox_write": True})
                    result = fn(session)
                    if write:
                        session.commit()
                        hooks = session.info.pop(AFTER_COMMIT, [])
                    # A read ends by close() alone: rollback() would expire the objects
                    # it returns; close() detaches them with their loaded state intact.
                except OperationalError as exc:
                    session.rollback()
                    if attempts < MAX_ATTEMPTS and _is_retryable(exc):
                        LOG.info("retrying a transaction after: %s", exc.orig)
                        # Jitter keeps transactions that collided from colliding again.
                        time.sleep(min(1.0, 0.02 * 2**attempts) * random.random())
                        continue
                    raise
                except BaseException:
                    session.rollback()
                    raise
                finally:
                    session.close()
            for hook in hooks:
                hook()
            return result

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_begin(conn: Any) -> None:
    write = conn.get_execution_options().get("stackbox_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# SQLSTATEs of a transaction the server aborted only because of a concurrent one.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
MAX_ATTEMPTS = 10


def _is_retryable(exc: DBAPIError) -> bool:
    if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    message = str(exc.orig).lower()
    return "database is locked" in message or "serialization" in message or "deadlock" in message


def writers_serialized(session: Session) -> bool:
    """True where one writer runs at a time (SQLite: every write transaction begins
    IMMEDIATE, holding the database's write lock), so that what a writer reads stays
    true until it commits: check-then-insert needs no savepoint to settle races."""
    return bool(session.get_bind().dialect.name == "sqlite")


def advisory_lock(session: Session, key: str) -> None:
    """Hold a lock named ``key`` until this transaction ends, where concurrent writers exist.

    For invariants no row can be locked for (at most one default subnet pool per IP
    version, for instance). On SQLite this process's writers already run one at a time.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"),
            {"key": zlib.crc32(key.encode()) - 2**31},
        )


def after_commit(session: Session, hook: Callable[[], None]) -> None:
    """Run ``hook`` once this unit of work has committed (for example, to drop caches)."""
    hooks: list[Callable[[], None]] = session.info.setdefault(AFTER_COMMIT, [])
    if hook not in hooks:
        hooks.append(hook)
