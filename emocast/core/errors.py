"""Exit codes, and the one error base that carries its code from where a fault is found to ``cli.main``.

A fault is raised where it is found, as an ``EmocastError`` subclass that names its ``ExitCode``;
``emocast.cli.main`` turns it into one log line (its message: the file, section and key where it has
them) and the process's exit status. Nothing in between compares integers or maps classes to codes.

The codes are the operators' contract (documented in docs/kiosk.md and docs/hub.md; the systemd
units' ``RestartPreventExitStatus`` lists those a restart cannot fix), so their numbers never change.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    OK = 0  # clean stop: end of a file source, --duration reached, SIGTERM, SIGINT or SIGHUP
    UNEXPECTED = 1  # a bug: an exception nobody anticipated (with a traceback in the log)
    USAGE = 2  # bad command-line arguments, or a request the command cannot do as asked
    CONFIG = 3  # the config file is missing, unreadable, or has an unknown key or a wrong type
    MODEL = 4  # the emotion model or its card is missing, corrupt, or they disagree; or no landmark model
    SOURCE = 5  # the video source cannot be opened (no such file, not a video, no camera)
    BROKER_REFUSED = 6  # the broker refused the login, the client id or the TLS handshake: fix and restart
    OUTBOX = 7  # the durable outbox cannot be opened or written (disk full, permissions)
    CALIBRATION = 8  # `emocast calibrate` saw too few readable faces for a target; nothing was written
    STORE = 9  # the hub's database cannot be opened, migrated or written
    IMPORT = 10  # `emocast hub import`: a file is not `emocast analyze` output; nothing of it was stored

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    ExitCode.OK: "clean stop",
    ExitCode.UNEXPECTED: "unexpected error",
    ExitCode.USAGE: "bad command-line arguments",
    ExitCode.CONFIG: "invalid configuration",
    ExitCode.MODEL: "missing or corrupt model",
    ExitCode.SOURCE: "video source failure",
    ExitCode.BROKER_REFUSED: "broker refused the connection",
    ExitCode.OUTBOX: "outbox storage failure",
    ExitCode.CALIBRATION: "calibration failed",
    ExitCode.STORE: "hub database failure",
    ExitCode.IMPORT: "invalid import file",
}


class EmocastError(Exception):
    """A fault an operator can fix, with the exit code the process ends with because of it."""

    exit_code: ClassVar[ExitCode] = ExitCode.UNEXPECTED


class UsageError(EmocastError):
    """The command was asked for something it cannot do as given (a flag that does not fit, an id
    that does not exist)."""

    exit_code = ExitCode.USAGE
