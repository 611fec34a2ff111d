"""What native libraries print on their own, routed through logging.

The TFLite runtime writes ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` straight to file
descriptor 2 each time an interpreter is made, which journald files as a bare line without a level.
``native_stderr_to_log`` catches the descriptor while an interpreter is built and gives each line to
``logging``: the known banner at DEBUG, anything else at WARNING, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

QUIET_PREFIXES = ("INFO: Created TensorFlow Lite XNNPACK delegate", "INFO: Initialized TensorFlow Lite runtime")


@contextlib.contextmanager
def native_stderr_to_log(log: logging.Logger) -> Iterator[None]:
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # pytest's capture, an embedded interpreter: leave it
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                if line.strip():
                    log.log(logging.DEBUG if line.startswith(QUIET_PREFIXES) else logging.WARNING, "%s", line)
