"""The one error every decoder raises for input it cannot read."""

from __future__ import annotations


class DecodeError(ValueError):
    """A record is not valid in the format it claims or appears to be.

    ``str(e)`` is one sentence saying what is wrong; the caller adds which record it was.
    """
