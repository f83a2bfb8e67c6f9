"""Writing a file whole or not at all: a temporary file beside the target, then one rename.

:func:`atomic_path` is the one writer of gdlab's output files (saved optimizer states, pictures,
animations). The content goes to a temporary file in the target's folder, which is synced and
renamed onto the target only when it was written completely, so the target never holds a partial
file, and a failure leaves nothing behind.

The target must be a regular file or not exist yet: a symbolic link, a directory, a device node, a
fifo or a socket at that path is refused (renaming onto it would replace the link or the node
itself, not write through it). Every failure, whether the folder is missing, the disk is full or
permission is denied, is a :class:`WriteError` that names the target, never the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

#: Kinds of non-regular files, as named in the error message.
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a fifo"),
    (stat.S_ISSOCK, "a socket"),
)


class WriteError(OSError):
    """A file could not be written (or was refused); the message names the target path."""

    def __init__(self, target: str | os.PathLike[str], reason: str, code: int | None = None) -> None:
        super().__init__(code, reason, os.fspath(target))

    def __str__(self) -> str:
        return f"cannot write {self.filename!r}: {self.strerror}"


def check_target(path: str | os.PathLike[str]) -> None:
    """Refuse ``path`` when something other than a regular file is there (:class:`WriteError`)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc), exc.errno) from None
    for test, kind in _KINDS:
        if test(mode):
            raise WriteError(path, f"it is {kind}, not a regular file; refusing to replace it", errno.EEXIST)
    if not stat.S_ISREG(mode):
        raise WriteError(path, "it is not a regular file; refusing to replace it", errno.EEXIST)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new temporary file beside ``path``; move it onto ``path`` when the block succeeds.

    The temporary file (``.<name>.<random>.tmp<suffix>``, keeping the target's suffix for writers
    that read it) is created empty with the usual permissions (0666 less the umask). An ``OSError``
    in the block (a full disk) becomes a :class:`WriteError` naming ``path``; any other exception
    passes through. Either way the temporary file is removed.
    """
    target = Path(path)
    folder = target.parent
    check_target(target)
    if not folder.is_dir():
        reason = f"folder {os.fspath(folder)!r} does not exist" if not folder.exists() else \
            f"{os.fspath(folder)!r} is not a folder"
        raise WriteError(target, reason, errno.ENOENT)
    tmp = _create_beside(target)
    try:
        try:
            yield tmp
            _sync(tmp)
            check_target(target)  # again: something may have appeared there meanwhile
            os.replace(tmp, target)
        except WriteError:
            raise
        except OSError as exc:
            raise WriteError(target, exc.strerror or str(exc), exc.errno) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _create_beside(target: Path) -> Path:
    """A new, empty file in ``target``'s folder (``O_EXCL``: never one that existed)."""
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise WriteError(target, exc.strerror or str(exc), exc.errno) from None
        os.close(fd)
        return tmp
    raise WriteError(target, "no free temporary name beside it", errno.EEXIST)


def _sync(tmp: Path) -> None:
    """Flush the written content to the disk, so that the rename never publishes a partial file."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
