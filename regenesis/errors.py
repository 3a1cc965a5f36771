"""Errors the command line reports as bad input (exit code 2) rather than as a failed run (exit code 1)."""


class BadInput(ValueError):
    """Input the user can fix: a missing file, an unknown task or option value, a malformed row.

    The message names the file, row or option at fault.
    """
