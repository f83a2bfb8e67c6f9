"""Entry point of the ``gdlab`` command.

Each subcommand lives in its own module and registers itself through :data:`COMMANDS`; this module
only builds the parser, turns user mistakes (:class:`UsageError`, ``ValueError``/``TypeError`` from
validation) into a one-line message with exit code 2, and never shows a traceback for them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from gdlab._version import __version__
from gdlab.cli import analyze, compare, demo, gallery, listing, schedule, serve, sweep, train
from gdlab.cli import run as run_command
from gdlab.cli.errors import UsageError

#: (name, help, add_arguments, run) of every subcommand.
Command = tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

COMMANDS: list[Command] = [
    demo.COMMAND,
    serve.COMMAND,
    listing.COMMAND,
    run_command.COMMAND,
    compare.COMMAND,
    train.COMMAND,
    schedule.COMMAND,
    analyze.COMMAND,
    sweep.COMMAND,
    gallery.COMMAND,
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"gdlab: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gdlab",
        description="gdlab, the gradient-descent laboratory: run, compare, plot and watch optimizers.",
    )
    parser.add_argument("--version", action="version", version=f"gdlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_text, add_arguments, run in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except (UsageError, ValueError, TypeError) as exc:
        print(f"gdlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
