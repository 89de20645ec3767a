"""Object storage for original DICOM bytes, behind one small interface.

Keys are content addresses (``tenant/aa/bb/<sha256>``), so a re-sent
instance lands on the same key and stored bytes are never rewritten.
``file://`` is implemented here; an S3-compatible backend plugs in through
the same :class:`Storage` protocol.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse


class Storage(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` durably under ``key``; return only once it is on disk."""

    def open(self, key: str) -> BinaryIO:
        """Open the stored object for reading."""

    def read(self, key: str) -> bytes:
        """Return the stored object's bytes."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""

    def path(self, key: str) -> Path | None:
        """Local path of the object if the backend has one (lets peers stream files)."""


_KEY = re.compile(r"^t[0-9]+/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.dcm$")


def content_key(tenant_id: int, sha256: str) -> str:
    """The storage key of an object of ``tenant_id`` with digest ``sha256``."""
    return f"t{tenant_id}/{sha256[:2]}/{sha256[2:4]}/{sha256}.dcm"


class FileStorage:
    """Filesystem backend: temp file, fsync, rename, fsync of the directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        # Keys are made by content_key(); anything else (``..``, absolute) is refused
        # without touching the filesystem.
        if not _KEY.match(key):
            raise ValueError("not a storage key")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists() and path.stat().st_size == len(data):
            return  # content-addressed: same key, same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def path(self, key: str) -> Path | None:
        return self._path(key)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def from_url(url: str) -> Storage:
    """Build the backend named by ``STORAGE_URL``."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return FileStorage(Path(parsed.path if parsed.scheme else url))
    raise ValueError(f"unsupported STORAGE_URL scheme {parsed.scheme!r}")
