"""User-facing errors.

Anything a reader can cause by typing something wrong (an unknown chapter, environment, profile or parameter; a
missing, corrupt or mismatched checkpoint) raises :class:`RLCourseError`. The command line turns it into one line on
stderr and exit code 2; notebooks show the same one-line message.
"""

from __future__ import annotations


class RLCourseError(Exception):
    """A problem with the user's input, explained in one line."""

    exit_code = 2

    def __str__(self) -> str:  # keep the message on one line, whatever was passed in
        return " ".join(super().__str__().split())
