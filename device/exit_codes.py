"""Process exit codes, documented in the README and used by the systemd unit.

``RestartPreventExitStatus`` in the unit lists the codes a restart cannot fix (a bad config, a
missing model, a refused login), so systemd stops retrying and the operator sees the cause.
"""

OK = 0  # clean stop: end of a file source, --duration reached, SIGTERM or SIGINT
UNEXPECTED = 1  # a bug: an exception nobody anticipated (with a traceback in the log)
USAGE = 2  # bad command-line arguments (argparse's own code)
CONFIG = 3  # the config file is missing, unreadable, or has an unknown key or a wrong type
MODEL = 4  # the emotion model or its card is missing, corrupt, or they disagree; or no landmark model
SOURCE = 5  # the video source cannot be opened (no such file, not a video, no camera)
BROKER_REFUSED = 6  # the broker refused the login, the client id or the TLS handshake: fix and restart
OUTBOX = 7  # the durable outbox cannot be opened or written (disk full, permissions)
CALIBRATION = 8  # `emocast calibrate` saw too few readable faces for a target; nothing was written
STORE = 9  # the hub's database cannot be opened, migrated or written
IMPORT = 10  # `emocast hub import`: a file is not `emocast analyze` output; nothing of it was stored

DESCRIPTIONS = {
    OK: "clean stop",
    UNEXPECTED: "unexpected error",
    USAGE: "bad command-line arguments",
    CONFIG: "invalid configuration",
    MODEL: "missing or corrupt model",
    SOURCE: "video source failure",
    BROKER_REFUSED: "broker refused the connection",
    OUTBOX: "outbox storage failure",
    CALIBRATION: "calibration failed",
    STORE: "hub database failure",
    IMPORT: "invalid import file",
}
