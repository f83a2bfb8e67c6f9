"""Standard output that reports its own failures: a full disk or a closed stdout is an error.

A command's output is worth nothing when it cannot be written. Python's ``print`` to ``/dev/full``
fails only when the buffer is flushed (often at exit, as an ignored exception and a traceback), and
with stdout closed (``gdlab list >&-``) ``sys.stdout`` is ``None`` and every print silently does
nothing. :class:`CheckedOutput` stands in for ``sys.stdout`` while a command runs: a write or flush
that fails raises :class:`OutputError`, which ``gdlab`` reports in one line with exit status
:data:`EXIT_IO`. A reader that went away (``gdlab list | head``) stays a ``BrokenPipeError``, which
is not an error.
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import Any, TextIO

#: Exit status when the output cannot be written: ``EX_IOERR`` of sysexits.h (an input/output
#: error), distinct from 1 (a failure) and 2 (a usage error), so that scripts can tell them apart.
EXIT_IO = 74


class OutputError(OSError):
    """Standard output cannot be written (full disk, closed stream, I/O error)."""

    def __str__(self) -> str:
        return f"cannot write the output: {self.strerror}"


class CheckedOutput:
    """A stand-in for ``sys.stdout`` (``None`` when it is closed) whose failures raise :class:`OutputError`.

    The first failure is remembered, so a caller that swallows it (argparse ignores ``OSError`` when
    printing help) still sees it at the final :meth:`flush`.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._error: OutputError | None = None

    def write(self, text: str) -> int:
        return self._checked(lambda stream: stream.write(text))

    def flush(self) -> None:
        if self._error is not None:
            raise self._error
        self._checked(lambda stream: stream.flush())

    def _checked(self, call: Any) -> Any:
        if self._stream is None:
            self._error = OutputError(errno.EBADF, "standard output is closed")
            raise self._error
        try:
            return call(self._stream)
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._error = OutputError(exc.errno, exc.strerror or str(exc))
            raise self._error from None

    def silence(self) -> None:
        """Point the stream's file descriptor at ``/dev/null``, so that what is still buffered is
        dropped quietly at exit instead of failing again (a closed pipe, a full disk). A stream
        without a descriptor of its own (a test's capture) is left alone."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            fd = self._stream.fileno()  # type: ignore[union-attr]
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ... of the real stream
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


