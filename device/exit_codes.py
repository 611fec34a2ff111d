"""Process exit codes, by name, for the device's code and tests (``emocast.core.errors.ExitCode``
holds them; see there for what each means and why the numbers never change)."""

from emocast.core.errors import ExitCode

OK = ExitCode.OK
UNEXPECTED = ExitCode.UNEXPECTED
USAGE = ExitCode.USAGE
CONFIG = ExitCode.CONFIG
MODEL = ExitCode.MODEL
SOURCE = ExitCode.SOURCE
BROKER_REFUSED = ExitCode.BROKER_REFUSED
OUTBOX = ExitCode.OUTBOX
CALIBRATION = ExitCode.CALIBRATION
STORE = ExitCode.STORE
IMPORT = ExitCode.IMPORT

DESCRIPTIONS = {code: code.description for code in ExitCode}
