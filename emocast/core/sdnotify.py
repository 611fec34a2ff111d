"""systemd's notify protocol, without a dependency: ``READY=1`` once serving, ``WATCHDOG=1`` while
healthy (the unit's ``WatchdogSec=`` restarts a process that stops sending it), ``STOPPING=1``.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op that returns False.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the service manager; whether it was sent."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # "@": Linux's abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
        return True
    except OSError:
        return False


def watchdog_interval_s() -> float | None:
    """How often to send ``WATCHDOG=1`` (half the unit's ``WatchdogSec``), or None when no watchdog
    is set for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
