"""multipart/related encoding and parsing, and Accept parsing (no database)."""
from __future__ import annotations

import io
import os

import pytest

from app.dicomweb.multipart import (MultipartError, Part, encode, encoded_length, iter_parts,
                                    parse_accept, parse_media_type)
from tests.dicomweb import decode_multipart

# Bodies full of what a naive parser trips on: CRLFs, dashes, near-boundaries. (A body
# may not contain CRLF--bnd itself: RFC 2046 §5.1.1 makes the sender avoid that.)
TRICKY = [os.urandom(70_000) + b"\r\n-bnd\r\n--bn", b"", b"\r\n", b"x--bnd\r\n\r\n",
          os.urandom(3) + b"\r\n--BND"]


class Dribble(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read (a slow client)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def read(self, size: int = -1) -> bytes:
        block = self.data[self.pos:self.pos + min(self.step, size if size > 0 else self.step)]
        self.pos += len(block)
        return block


def _encoded(parts: list[bytes], boundary: str = "bnd") -> bytes:
    return b"".join(encode([Part("application/dicom", [p]) for p in parts], boundary))


def test_encoder_output_is_read_back_by_the_stdlib_parser():
    body = _encoded(TRICKY)
    decoded = decode_multipart('multipart/related; type="application/dicom"; boundary=bnd', body)
    assert [b for _, b in decoded] == TRICKY
    assert all(ct == "application/dicom" for ct, _ in decoded)


def test_encoded_length_is_exact():
    parts = [Part("application/dicom; transfer-syntax=1.2.840.10008.1.2.1", [p], len(p))
             for p in TRICKY]
    assert encoded_length(parts, "bnd") == len(b"".join(encode(parts, "bnd")))
    assert encoded_length([Part("x/y", [b"1"])], "bnd") is None


@pytest.mark.parametrize("step", [1, 2, 7, 4096, 1 << 20])
def test_parser_handles_delimiters_straddling_reads(step):
    body = _encoded(TRICKY)
    got = [data for _, data in iter_parts(Dribble(body, step), "bnd", chunk=step)]
    assert got == TRICKY


def test_parser_reads_preamble_headers_and_epilogue():
    body = (b"preamble text\r\n--bnd\r\nContent-Type: application/dicom\r\n"
            b"Content-Location: x\r\n\r\nABC\r\n--bnd\r\n\r\nno headers\r\n--bnd--\r\nepilogue")
    parts = list(iter_parts(io.BytesIO(body), "bnd"))
    assert parts == [({"content-type": "application/dicom", "content-location": "x"}, b"ABC"),
                     ({}, b"no headers")]


def test_dicomweb_client_style_body_with_leading_crlf():
    body = b"\r\n--bnd\r\nContent-Type: application/dicom\r\n\r\nX\r\n--bnd--"
    assert [d for _, d in iter_parts(io.BytesIO(body), "bnd")] == [b"X"]


@pytest.mark.parametrize("body", [
    b"no boundary at all",
    b"--bnd\r\nContent-Type: application/dicom\r\n\r\ntruncated without closing delimiter",
    b"--bnd\r\nContent-Type application/dicom\r\n\r\nX\r\n--bnd--",
    b"--bnd",
])
def test_malformed_bodies_raise(body):
    with pytest.raises(MultipartError):
        list(iter_parts(io.BytesIO(body), "bnd"))


def test_parts_before_a_malformation_are_yielded_first():
    body = b"--bnd\r\n\r\nfirst\r\n--bnd\r\n\r\nsecond, never closed"
    parts = iter_parts(io.BytesIO(body), "bnd")
    assert next(parts) == ({}, b"first")
    with pytest.raises(MultipartError):
        next(parts)


def test_media_type_and_accept_parsing():
    media = parse_media_type('Multipart/Related; type="application/dicom"; boundary="a;b"')
    assert media.type == "multipart/related"
    assert media.params == {"type": "application/dicom", "boundary": "a;b"}
    ranges = parse_accept('multipart/related; type="application/octet-stream"; '
                          'transfer-syntax=*;q=0.5, multipart/related; type="image/jpeg", '
                          'application/json;q=0')
    assert [(r.part_type, r.transfer_syntax, r.q) for r in ranges] == [
        ("image/jpeg", None, 1.0), ("application/octet-stream", "*", 0.5)]
