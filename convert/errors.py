"""The converter's errors. A refusal: a request it cannot do as asked (flags that do not fit a model,
members that do not fit together, a run folder with another recipe), a ``ValueError`` where Python code
calls the converter and exit 2 from the command line (``emocast.core.errors.UsageError``). A model it
cannot read or will not pass on: exit 4, as for any bad model."""

from __future__ import annotations

from emocast.core.errors import EmocastError, ExitCode, UsageError


class Refusal(UsageError, ValueError):
    """What was asked cannot be done as given; the message names the file or flag and says why."""


class ModelSourceError(EmocastError):
    """The file is not a model we can read; the message names it and says why."""

    exit_code = ExitCode.MODEL


class MissingModelFile(ModelSourceError, FileNotFoundError):
    """A model file named on the command line does not exist."""
