"""The ``emocast`` command: ``run`` on the device, ``convert`` for model engineers, ``hub`` for the
classroom, and helpers. Each part adds its own subcommands (``device/commands.py``,
``convert/arguments.py``, ``hub/commands.py``); this module only routes to them and turns a fault
into its exit code.

TensorFlow is imported only inside the ``convert`` subcommands, so the device's install never needs it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .core.logs import LOG_LEVELS, setup_logging

DESCRIPTION = ("On-device attention and emotion sensing: the kiosk's service (run, analyze, calibrate), the "
               "model converter (convert; TensorFlow only there) and the classroom hub (hub).")
# commands that run OpenCV (the converter too: augmentation, crops): only they import it; the hub never does
OPENCV_COMMANDS = ("run", "analyze", "calibrate", "demo-clip", "convert")


def build_parser() -> argparse.ArgumentParser:
    from emocast.convert.arguments import add_parser as add_convert_parser
    from emocast.device.commands import add_parsers as add_device_parsers
    from emocast.hub.commands import add_parser as add_hub_parser

    p = argparse.ArgumentParser(prog="emocast", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"emocast {__version__}")
    p.add_argument("--log-level", default=None, type=str.upper, choices=LOG_LEVELS,
                   help="DEBUG, INFO, WARNING or ERROR (default: the config's); also after the subcommand")
    # the same option after a subcommand; SUPPRESS keeps one given before it when none comes after
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, type=str.upper, choices=LOG_LEVELS,
                        help="DEBUG, INFO, WARNING or ERROR (default: the config's)")
    sub = p.add_subparsers(dest="command", required=True)
    add_device_parsers(sub, common)
    add_convert_parser(sub, common)
    add_hub_parser(sub, common)
    return p


def _handler(command: str):
    if command == "convert":
        from emocast.convert.commands import run_convert

        return run_convert
    if command == "hub":
        from emocast.hub.commands import run_hub

        return run_hub
    from emocast.device.commands import HANDLERS

    return HANDLERS[command]


def main(argv: list[str] | None = None) -> int:
    """Run one command; a fault it raises (``EmocastError``) becomes one log line and its exit code,
    here and nowhere else."""
    from emocast.core.errors import EmocastError, ExitCode

    args = build_parser().parse_args(argv)
    if args.command != "run":
        setup_logging(args.log_level or "INFO", opencv=args.command in OPENCV_COMMANDS)
    try:
        code = ExitCode(_handler(args.command)(args))
    except EmocastError as exc:
        if not logging.getLogger().handlers:  # a fault before the command set logging up
            setup_logging(args.log_level or "INFO")
        logging.getLogger("emocast").error("%s", exc)
        code = exc.exit_code
    if args.command == "run" and code != ExitCode.OK:  # one line that says why, for `journalctl -u emocast`
        logging.getLogger("emocast").error("exiting with code %d (%s)", code, code.description)
    return int(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
