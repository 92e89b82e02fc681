"""Units of work on one database.

SQLite allows one writer at a time; a second writer that collides gets
"database is locked" after the busy timeout. Rather than surface that, writes
in this process take one lock, so they queue instead of colliding, and readers
use WAL so they never wait for a writer. Server databases (PostgreSQL, MariaDB)
skip the lock and rely on row locks; a serialization failure there is retried.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
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
            self.engine = create_engine(url, pool_pre_ping=True)
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
                    if attempts < 5 and _is_retryable(exc):
                        LOG.warning("retrying a transaction after: %s", exc.orig)
                        time.sleep(0.05 * attempts)
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


def _is_retryable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "serialization" in text or "deadlock" in text


def after_commit(session: Session, hook: Callable[[], None]) -> None:
    """Run ``hook`` once this unit of work has committed (for example, to drop caches)."""
    hooks: list[Callable[[], None]] = session.info.setdefault(AFTER_COMMIT, [])
    if hook not in hooks:
        hooks.append(hook)
