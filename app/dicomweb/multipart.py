"""multipart/related bodies and media-type negotiation for DICOMweb.

PS3.18 §8.6.1.2 carries DICOM instances, frames and bulk data as
``multipart/related`` (RFC 2387) bodies whose delimiter is ``CRLF--boundary``
(RFC 2046 §5.1.1). Part bodies are binary and may contain any byte, including
CR, LF and ``--``: only the full delimiter ends a part.

The parser reads the request in large chunks and holds one part at a time
(plus one chunk), so a STOW of a whole study never sits in memory at once.
The encoder yields the part headers and the caller's body chunks unchanged,
and can tell the exact ``Content-Length`` in advance when every part's size
is known, so stored files stream straight from the archive.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Iterator

from app.services.errors import Invalid

CRLF = b"\r\n"
_CHUNK = 1 << 20
_MAX_PREAMBLE = 64 * 1024
_MAX_HEADERS = 16 * 1024


class MultipartError(Invalid):
    """The body is not a well-formed multipart/related message (HTTP 400)."""


# --------------------------------------------------------------------------- media types


@dataclass(frozen=True)
class MediaType:
    """A media type with lower-cased parameter names, e.g. ``multipart/related; type=...``."""

    type: str
    params: dict[str, str] = field(default_factory=dict)


def _split(value: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes (RFC 9110 §5.6)."""
    items, current, quoted = [], [], False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_media_type(value: str) -> MediaType:
    """Parse a ``Content-Type``-style value; the type is lower-cased, quotes removed."""
    pieces = _split(value or "", ";")
    if not pieces:
        return MediaType("")
    params = {}
    for piece in pieces[1:]:
        name, _, raw = piece.partition("=")
        params[name.strip().lower()] = raw.strip().strip('"')
    return MediaType(pieces[0].lower(), params)


@dataclass(frozen=True)
class AcceptRange:
    """One acceptable representation from an ``Accept`` header (PS3.18 §8.7.3).

    ``part_type`` is the ``type`` parameter of ``multipart/related`` (or the
    media type itself for a single-part range); ``transfer_syntax`` is
    ``None`` when not given, ``"*"`` for any.
    """

    media_type: str
    part_type: str
    transfer_syntax: str | None
    q: float


def parse_accept(header: str) -> list[AcceptRange]:
    """The acceptable ranges of ``header``, most preferred first (``q=0`` dropped)."""
    ranges = []
    for item in _split(header or "", ","):
        media = parse_media_type(item)
        try:
            q = float(media.params.get("q", "1"))
        except ValueError:
            q = 1.0
        if not media.type or q <= 0:
            continue
        part_type = media.params.get("type", "") if media.type.startswith("multipart/") \
            else media.type
        ranges.append(AcceptRange(media.type, part_type.lower(),
                                  media.params.get("transfer-syntax"), q))
    return sorted(ranges, key=lambda r: -r.q)  # sorted() is stable: header order breaks ties


def type_matches(pattern: str, media_type: str) -> bool:
    """Whether an Accept ``pattern`` (``*/*``, ``image/*``, exact) covers ``media_type``."""
    if pattern in ("", "*", "*/*"):
        return True
    if pattern.endswith("/*"):
        return media_type.startswith(pattern[:-1])
    return pattern == media_type


def is_multipart_range(accept: AcceptRange) -> bool:
    """Whether a range allows a ``multipart/related`` answer (or any answer)."""
    return accept.media_type in ("multipart/related", "multipart/*", "*/*")


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class Part:
    """One body part: its ``Content-Type``, its body chunks and (if known) its size."""

    content_type: str
    chunks: Iterable[bytes]
    length: int | None = None


def new_boundary() -> str:
    return uuid.uuid4().hex


def content_type(part_type: str, boundary: str) -> str:
    """The ``Content-Type`` of a multipart/related response (PS3.18 §8.6.1.2)."""
    return f'multipart/related; type="{part_type}"; boundary={boundary}'


def _head(part: Part, boundary: bytes, first: bool) -> bytes:
    return (b"" if first else CRLF) + b"--" + boundary + CRLF + b"Content-Type: " + \
        part.content_type.encode("ascii") + CRLF + CRLF


def _tail(boundary: bytes, empty: bool) -> bytes:
    return (b"" if empty else CRLF) + b"--" + boundary + b"--" + CRLF


def encode(parts: Iterable[Part], boundary: str) -> Iterator[bytes]:
    """Yield the multipart body: each part's header, then its chunks as given."""
    marker = boundary.encode("ascii")
    first = True
    for part in parts:
        yield _head(part, marker, first)
        first = False
        yield from part.chunks
    yield _tail(marker, first)


def encoded_length(parts: list[Part], boundary: str) -> int | None:
    """The exact size :func:`encode` will produce, or ``None`` if a part size is unknown."""
    if any(part.length is None for part in parts):
        return None
    marker = boundary.encode("ascii")
    total = sum(len(_head(part, marker, i == 0)) + part.length  # type: ignore[operator]
                for i, part in enumerate(parts))
    return total + len(_tail(marker, not parts))


# --------------------------------------------------------------------------- parsing


class _Buffer:
    """Bytes read ahead from a stream, consumed from the front."""

    def __init__(self, stream: BinaryIO, chunk: int) -> None:
        self.stream, self.chunk, self.data = stream, chunk, bytearray()

    def fill(self) -> bool:
        block = self.stream.read(self.chunk)
        if not block:
            return False
        self.data += block
        return True

    def ensure(self, size: int) -> bool:
        while len(self.data) < size:
            if not self.fill():
                return False
        return True

    def find(self, needle: bytes, limit: int | None = None) -> int:
        """Index of ``needle``, reading on as needed; -1 at end of stream or past ``limit``."""
        start = 0
        while True:
            index = self.data.find(needle, start)
            if index >= 0:
                return index
            # A needle may straddle two reads: rescan only the last len(needle)-1 bytes.
            start = max(0, len(self.data) - len(needle) + 1)
            if limit is not None and len(self.data) > limit:
                return -1
            if not self.fill():
                return -1

    def take(self, size: int) -> bytes:
        out = bytes(self.data[:size])
        del self.data[:size]  # CPython moves the start pointer: no copy of the rest
        return out


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    name = ""
    for line in block.decode("latin-1").split("\r\n"):
        if line[:1] in (" ", "\t") and name:  # obsolete line folding
            headers[name] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise MultipartError("malformed part header")
        name = name.strip().lower()
        headers[name] = value.strip()
    return headers


def iter_parts(stream: BinaryIO, boundary: str,
               chunk: int = _CHUNK) -> Iterator[tuple[dict[str, str], bytes]]:
    """Yield ``(headers, body)`` for each part of a multipart body read from ``stream``.

    Header names are lower-cased. Raises :class:`MultipartError` where the
    body stops being well formed (no opening delimiter, a part without its
    closing delimiter, oversized headers) — after yielding the parts before.
    """
    if not boundary or len(boundary) > 70:
        raise MultipartError("missing or invalid multipart boundary")
    buffer = _Buffer(stream, chunk)
    dash = b"--" + boundary.encode("latin-1")
    opening = buffer.find(dash, _MAX_PREAMBLE)
    if opening < 0:
        raise MultipartError("the body does not start with the multipart boundary")
    buffer.take(opening + len(dash))
    delimiter = CRLF + dash
    while True:
        if not buffer.ensure(2):
            raise MultipartError("the body ends without the closing boundary")
        if buffer.data[:2] == b"--":
            return  # close delimiter; anything after it is epilogue
        end_of_line = buffer.find(CRLF, 1024)
        if end_of_line < 0 or buffer.take(end_of_line).strip(b" \t"):
            raise MultipartError("unexpected data after a boundary")
        buffer.take(2)
        yield _read_part(buffer, delimiter)


def _read_part(buffer: _Buffer, delimiter: bytes) -> tuple[dict[str, str], bytes]:
    if not buffer.ensure(2):
        raise MultipartError("truncated part")
    if buffer.data[:2] == CRLF:  # a part without headers
        buffer.take(2)
        headers: dict[str, str] = {}
    else:
        end = buffer.find(CRLF + CRLF, _MAX_HEADERS)
        if end < 0:
            raise MultipartError("part headers missing or too long")
        headers = _headers(buffer.take(end))
        buffer.take(4)
    end = buffer.find(delimiter)
    if end < 0:
        raise MultipartError("a part is not closed by the boundary (truncated body?)")
    body = buffer.take(end)
    buffer.take(len(delimiter))
    return headers, body
