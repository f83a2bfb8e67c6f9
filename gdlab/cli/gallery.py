"""``gdlab gallery``: regenerate the gallery of pictures and the page describing them.

``gdlab gallery [--out DIR] [--page FILE] [--no-animation]``

Computes every example with the engine (:func:`gdlab.plots.gallery.build_gallery`) and writes the
PNG images (and ``rolling.gif`` unless ``--no-animation``) into ``DIR`` (default ``docs/gallery``)
and the Markdown page into ``FILE`` (default: ``gallery.md`` beside ``DIR``, i.e.
``docs/gallery.md``). Prints one line per written file.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gdlab.cli import options as o

DEFAULT_OUT = "docs/gallery"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help=f"folder of the images, created if missing (default {DEFAULT_OUT})")
    p.add_argument("--page", metavar="FILE", help="the Markdown page (default: gallery.md beside DIR)")
    p.add_argument("--no-animation", action="store_true", help="skip the rolling-ball GIF (faster)")


def run(args: argparse.Namespace) -> int:
    from gdlab.plots.gallery import build_gallery

    out = Path(args.out)
    page = Path(args.page) if args.page else out.parent / "gallery.md"
    if out.exists() and not out.is_dir():
        raise o.usage(f"--out {args.out!r} is a file, not a folder")
    if page.is_dir():
        raise o.usage(f"--page {os.fspath(page)!r} is a folder")
    if page.suffix.lower() != ".md":
        raise o.usage(f"--page {os.fspath(page)!r}: expected a .md file")
    if not page.parent.is_dir() and page.parent != out.parent:
        raise o.usage(f"--page {os.fspath(page)!r}: folder {os.fspath(page.parent)!r} does not exist")
    try:
        written = build_gallery(out, page, animation=not args.no_animation)
    except OSError as exc:
        raise o.usage(f"cannot write the gallery: {exc.strerror or exc}"
                      + (f" ({exc.filename})" if getattr(exc, "filename", None) else "")) from None
    for path in written:
        print(f"wrote {os.fspath(path)} ({path.stat().st_size / 1024:.0f} kB)")
    print(f"wrote {os.fspath(page)} ({len(written)} pictures)")
    return 0


COMMAND = ("gallery", "regenerate the gallery of pictures (docs/gallery) and its page (docs/gallery.md)",
           add_arguments, run)
