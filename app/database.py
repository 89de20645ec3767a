"""Engine settings that make the embedded SQLite default safe for several processes."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from app.extensions import db

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
    cursor.close()



@event.listens_for(Pool, "checkin")
def _restore_full_sync(dbapi_connection, connection_record) -> None:
    # audit.access relaxes one commit; no later transaction may inherit that.
    if dbapi_connection is not None and connection_record is not None \
            and connection_record.info.pop(RELAXED_SYNC, False):
        dbapi_connection.execute("PRAGMA synchronous=FULL")


__all__ = ["db", "init_app"]
