"""Errors the command line turns into one clear sentence and an exit status."""

from __future__ import annotations

from pathlib import Path


class VaekitError(Exception):
    """Bad input from the user: the message names the problem and the fix. Exit status 2."""

    exit_code = 2


class NumericalError(VaekitError):
    """Training produced NaN or Inf. Exit status 3; the last good checkpoint is kept."""

    exit_code = 3


def check(condition: bool, message: str) -> None:
    """Raise a `VaekitError` with `message` unless `condition` holds."""
    if not condition:
        raise VaekitError(message)


class Finished(VaekitError):
    """A resumed run that has already trained all its epochs: nothing to do (not a failure)."""


class Interrupted(Exception):
    """Ctrl-C: training stopped at the end of a step and saved its position in `run` (None when
    it trained without a folder). The command line exits 130 with the resume command."""

    def __init__(self, run: Path | None):
        super().__init__(f"interrupted; resume with: vaekit train --resume {run}")
        self.run = run
