"""The converter's refusal: a request it cannot do as asked (flags that do not fit a model, members that
do not fit together, a run folder with another recipe). It is a ``ValueError`` where Python code calls
the converter, and exit 2 from the command line (``emocast.core.errors.UsageError``)."""

from __future__ import annotations

from emocast.core.errors import UsageError


class Refusal(UsageError, ValueError):
    """What was asked cannot be done as given; the message names the file or flag and says why."""
