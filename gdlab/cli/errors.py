"""The command line's one kind of user mistake: reported in one line, exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """A user mistake on the command line: reported in one line, exit code 2."""


def usage(message: str) -> UsageError:
    """The exception to raise for a user mistake: ``raise usage("...")``."""
    return UsageError(message)
