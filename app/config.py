"""Settings read from the environment, with embedded defaults.

With nothing set, the system runs on one machine: SQLite and a filesystem
archive under ``PACS_DATA_DIR`` and in-process rendering.  ``DATABASE_URL``,
``STORAGE_URL`` and ``REDIS_URL`` move it onto real engines without code changes.
"""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path


def _data_dir() -> Path:
    return Path(os.environ.get("PACS_DATA_DIR", "instance")).resolve()


def _secret_key(data_dir: Path) -> str:
    """Return ``SECRET_KEY`` or a key kept in the data dir, so sessions survive restarts."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_hex(32))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    return path.read_text().strip()


def database_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (SQLAlchemy's default is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def from_environment() -> dict:
    """Build the Flask config mapping from environment variables."""
    data_dir = _data_dir()
    return {
        "PACS_DATA_DIR": str(data_dir),
        "SECRET_KEY": _secret_key(data_dir),
        "SQLALCHEMY_DATABASE_URI": database_url(
            os.environ.get("DATABASE_URL", f"sqlite:///{data_dir / 'pacs.sqlite3'}")
        ),
        "STORAGE_URL": os.environ.get("STORAGE_URL", f"file://{data_dir / 'archive'}"),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "PACS_HTTP_PORT": int(os.environ.get("PACS_HTTP_PORT", "8000")),
        "PACS_DICOM_PORT": int(os.environ.get("PACS_DICOM_PORT", "11112")),
        "PACS_DICOM_HOST": os.environ.get("PACS_DICOM_HOST", "0.0.0.0"),
        "PACS_MAX_ASSOCIATIONS": int(os.environ.get("PACS_MAX_ASSOCIATIONS", "64")),
        # Node processes sharing the DICOM port (SO_REUSEPORT), one per core by default
        # under `make run`; a child started by the supervisor has REUSE_PORT set.
        "PACS_DICOM_PROCESSES": int(os.environ.get("PACS_DICOM_PROCESSES", "1")),
        "PACS_DICOM_REUSE_PORT": os.environ.get("PACS_DICOM_REUSE_PORT", "") == "1",
        "PACS_MAX_UPLOAD_BYTES": int(os.environ.get("PACS_MAX_UPLOAD_BYTES", str(2 << 30))),
        "MAX_CONTENT_LENGTH": int(os.environ.get("PACS_MAX_UPLOAD_BYTES", str(2 << 30))),
        "PERMANENT_SESSION_LIFETIME": timedelta(
            minutes=int(os.environ.get("PACS_SESSION_MINUTES", "30"))
        ),
        "SESSION_REFRESH_EACH_REQUEST": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PACS_LOCKOUT_FAILURES": 5,
        "PACS_LOCKOUT_MINUTES": 15,
        "BABEL_DEFAULT_LOCALE": "zh",
        "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).parent / "translations"),
        "WTF_CSRF_TIME_LIMIT": None,
        # DICOMweb: browser origins allowed to call it (e.g. an OHIF host), result cap,
        # and the public base URL used in RetrieveURL/BulkDataURI when behind a proxy.
        "PACS_CORS_ORIGINS": os.environ.get("PACS_CORS_ORIGINS", ""),
        "PACS_QIDO_MAX_RESULTS": int(os.environ.get("PACS_QIDO_MAX_RESULTS", "1000")),
        "PACS_DICOMWEB_URL": os.environ.get("PACS_DICOMWEB_URL", ""),
    }
