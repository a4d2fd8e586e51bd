"""PEM framing (RFC 7468) read in one pass over the input.

A regular expression with a back-reference (``BEGIN (label) ... END \\1``) starts a fresh scan to the end of the
input at every BEGIN line that has no END: a file of repeated BEGIN lines then costs time quadratic in its size
(minutes at a few hundred kilobytes). Here every marker is found once, in order, and paired with the block that
is open, so the cost is linear in the input whatever it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 7468 labels are printable ASCII; the ones privca reads are upper-case words. A bound keeps a marker short.
_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9 ]{1,64})-----")


@dataclass(frozen=True)
class PemBlock:
    """One complete ``-----BEGIN label----- ... -----END label-----`` block; ``body`` is its base64 text."""

    label: str
    body: bytes


@dataclass(frozen=True)
class PemScan:
    """The complete blocks in file order, and how many BEGIN lines never found their END."""

    blocks: list[PemBlock]
    unterminated: int


def scan(data: bytes) -> PemScan:
    """Every complete PEM block in ``data``; text between blocks (explanations, bag attributes) is ignored.

    A BEGIN line must end its line (as RFC 7468 and OpenSSL require); a BEGIN inside an open block abandons the
    open one, and an END that matches no open block is ignored.
    """
    blocks: list[PemBlock] = []
    unterminated = 0
    open_label: bytes | None = None
    body_start = 0
    for marker in _MARKER.finditer(data):
        kind, label = marker.group(1), marker.group(2)
        if kind == b"BEGIN":
            end = marker.end()
            if data[end:end + 1] == b"\r":
                end += 1
            if data[end:end + 1] != b"\n":
                continue  # not a BEGIN line: a label quoted inside other text
            if open_label is not None:
                unterminated += 1
            open_label, body_start = label, end + 1
        elif open_label is not None and label == open_label:
            blocks.append(PemBlock(label.decode("ascii"), data[body_start:marker.start()]))
            open_label = None
    if open_label is not None:
        unterminated += 1
    return PemScan(blocks, unterminated)


def has_markers(data: bytes) -> bool:
    """Does ``data`` look like PEM at all (any BEGIN marker)?"""
    return b"-----BEGIN" in data
