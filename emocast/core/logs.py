"""Logging as every ``emocast`` command sets it up: to stderr, without timestamps under systemd
(journald stamps each line itself), OpenCV's own lines quietened unless debugging."""

from __future__ import annotations

import logging
import os
import sys

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def setup_logging(level: str, opencv: bool = True) -> None:
    # Under systemd, journald stamps time and unit itself; elsewhere a timestamp helps.
    fmt = "%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") else \
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=fmt, stream=sys.stderr)
    if not opencv:
        return
    # OpenCV prints its own "[ WARN:0@...]" lines (a V4L2 probe, a codec): errors only, unless debugging
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING if level.upper() == "DEBUG"
                                  else cv2.utils.logging.LOG_LEVEL_ERROR)
