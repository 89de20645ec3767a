"""Engine settings that make the embedded SQLite default safe for several processes."""
from __future__ import annotations

import logging
import time

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from app.extensions import db

log = logging.getLogger(__name__)

#: Seconds after which a changed archive has its SQLite statistics refreshed.
ANALYZE_EVERY_S = 600.0
#: Seconds between looks at the archive's size (one indexed query, when a connection is returned).
CHECK_EVERY_S = 5.0
_analyzed_at, _analyzed_size, _checked_at = 0.0, 0, -CHECK_EVERY_S

#: Pool connection flag: one SQLite commit on this connection skipped its fsync.
RELAXED_SYNC = "pacs_relaxed_sync"


def init_app(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if uri.startswith("sqlite"):
        # The web app, the DICOM node and the CLI share one file: WAL lets readers
        # run beside the writer; the timeout waits out another process's commit.
        options.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
    else:
        options.setdefault("pool_pre_ping", True)
        options.setdefault("pool_size", 10)
        options.setdefault("max_overflow", 40)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed transaction survives power loss (acknowledged = durable).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # ANALYZE samples this many rows per index, so keeping the
    # planner's statistics current costs milliseconds even on a large archive.
    cursor.execute("PRAGMA analysis_limit=1000")
    cursor.close()



@event.listens_for(Pool, "checkin")
def _on_checkin(dbapi_connection, connection_record) -> None:
    if dbapi_connection is None or connection_record is None \
            or "sqlite" not in type(dbapi_connection).__module__:
        return
    # audit.access relaxes one commit; no later transaction may inherit that.
    if connection_record.info.pop(RELAXED_SYNC, False):
        dbapi_connection.execute("PRAGMA synchronous=FULL")
    _analyze_now_and_then(dbapi_connection)


def _analyze_now_and_then(dbapi_connection) -> None:
    """Keep SQLite's planner statistics current (PostgreSQL's autovacuum does this itself).

    Without statistics SQLite guesses, and at 10,000 studies it guessed a scan
    of every study for a C-FIND by Patient ID (11 ms) instead of the Patient ID
    index (under 1 ms). ``ANALYZE`` (sampling, see ``analysis_limit``) runs
    when the archive has grown past twice its size at the last run, or
    :data:`ANALYZE_EVERY_S` after it if it changed at all; the size is the
    highest study row id, read from its index at most every :data:`CHECK_EVERY_S`.
    """
    global _analyzed_at, _analyzed_size, _checked_at
    now = time.monotonic()
    if now - _checked_at < CHECK_EVERY_S:
        return
    _checked_at = now
    try:
        size = dbapi_connection.execute("SELECT coalesce(max(id), 0) FROM study").fetchone()[0]
    except Exception:  # noqa: BLE001 - no schema yet (before migrations)
        return
    grown = size > 2 * _analyzed_size + 100
    if not grown and (size == _analyzed_size or now - _analyzed_at < ANALYZE_EVERY_S):
        return
    _analyzed_at, _analyzed_size = now, size
    try:
        dbapi_connection.execute("ANALYZE")
        dbapi_connection.commit()
    except Exception as exc:  # noqa: BLE001 - busy or read-only: try again next time
        log.info("ANALYZE skipped: %s", exc)


__all__ = ["db", "init_app"]
