"""When a video was recorded, as its container says, so an imported lecture can carry its real date.

Phones and most cameras write MP4 or QuickTime files (ISO base media format), whose movie header
box (``moov/mvhd``) holds a creation time in seconds since 1904-01-01 UTC. Only that header is read:
a few box headers are walked with seeks, the frames are never touched, so a 2 GB recording costs a
handful of small reads. OpenCV does not expose container metadata, and a media library (PyAV,
pymediainfo) would add tens of MB and a native dependency to every board for one number.

Other containers (WebM, Matroska, AVI) and files whose header holds zero (a screen recorder, a file
re-encoded without metadata) give None: the hub then says when the lecture was imported instead.
Some cameras write local time where the format asks for UTC; nothing in the file tells which.
"""

from __future__ import annotations

import logging
import struct
import time
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

MP4_SUFFIXES = {".mp4", ".m4v", ".mov", ".3gp", ".3g2"}
EPOCH_1904 = 2_082_844_800  # seconds from 1904-01-01 to 1970-01-01
EARLIEST = 946_684_800.0  # 2000-01-01: an earlier date is a camera whose clock was never set
MAX_BOXES = 10_000  # a damaged file cannot make the walk run for ever


def _boxes(fh: BinaryIO, start: int, end: int):
    """(type, payload offset, payload end) of each box between ``start`` and ``end``."""
    at = start
    for _ in range(MAX_BOXES):
        if at + 8 > end:
            return
        fh.seek(at)
        head = fh.read(8)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head)
        payload = at + 8
        if size == 1:  # a 64-bit size follows the type
            big = fh.read(8)
            if len(big) < 8:
                return
            size = struct.unpack(">Q", big)[0]
            payload += 8
        elif size == 0:  # the box runs to the end of the file
            size = end - at
        if size < payload - at or at + size > end:
            return
        yield kind, payload, at + size
        at += size


def _mvhd_time(fh: BinaryIO, payload: int) -> int | None:
    fh.seek(payload)
    head = fh.read(4)
    if len(head) < 4:
        return None
    if head[0] == 1:  # version 1: 64-bit times
        raw = fh.read(8)
        return struct.unpack(">Q", raw)[0] if len(raw) == 8 else None
    raw = fh.read(4)
    return struct.unpack(">I", raw)[0] if len(raw) == 4 else None


def recorded_at(path: Path) -> float | None:
    """The recording's start, epoch seconds (UTC), from an MP4/QuickTime movie header; None where the
    file is another format, carries no date (zero), or a date before 2000 or more than a day ahead."""
    if path.suffix.lower() not in MP4_SUFFIXES:
        return None
    try:
        with path.open("rb") as fh:
            end = fh.seek(0, 2)
            for kind, payload, box_end in _boxes(fh, 0, end):
                if kind != b"moov":
                    continue
                for inner, inner_payload, _ in _boxes(fh, payload, box_end):
                    if inner == b"mvhd":
                        raw = _mvhd_time(fh, inner_payload)
                        if not raw:
                            return None
                        ts = float(raw - EPOCH_1904)
                        if EARLIEST <= ts <= time.time() + 86400:
                            return ts
                        log.debug("%s: movie header date %.0f is out of range: not used", path, ts)
                        return None
                return None
    except OSError as exc:
        log.debug("%s: no recording date (%s)", path, exc)
    return None
