"""Entry point of the ``gdlab`` command.

Each subcommand lives in its own module and registers itself through :data:`COMMANDS`; this module
only builds the parser, turns user mistakes (:class:`UsageError`, ``ValueError``/``TypeError`` from
validation) into a one-line message with exit code 2, and never shows a traceback for them. Output
that cannot be written (a full disk, a closed stdout) is one line on stderr and exit status
:data:`~gdlab.cli.streams.EXIT_IO` (74); a reader that stops early (``gdlab list | head``) is not an
error (exit 0).

Start-up stays short: the subcommand modules import only what their arguments need, and a command
imports its engine, SymPy, SciPy or matplotlib inside its ``run`` (``gdlab list``, ``--help`` and
usage errors load none of them; ``bench/bench_startup.py`` times them).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar

from gdlab._version import __version__
from gdlab.cli import analyze, compare, demo, diff, gallery, listing, schedule, serve, sweep, train
from gdlab.cli import run as run_command
from gdlab.cli.errors import UsageError
from gdlab.cli.streams import EXIT_IO, CheckedOutput, OutputError

#: (name, help, add_arguments, run) of every subcommand.
Command = tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

COMMANDS: list[Command] = [
    demo.COMMAND,
    serve.COMMAND,
    listing.COMMAND,
    run_command.COMMAND,
    compare.COMMAND,
    diff.COMMAND,
    train.COMMAND,
    schedule.COMMAND,
    analyze.COMMAND,
    sweep.COMMAND,
    gallery.COMMAND,
]

#: The command line being parsed (for the hints of argparse's own errors).
_TOKENS: ContextVar[tuple[str, ...]] = ContextVar("tokens", default=())
_MISSING_VALUE = re.compile(r"argument (-[\w-]+)(?:/[\w-]+)*: expected one argument")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"gdlab: error: {message}{dash_hint(message, _TOKENS.get())}\n")


def dash_hint(message: str, tokens: Sequence[str]) -> str:
    """For "expected one argument" after an option whose value starts with ``-`` (``--lr-range
    -1:1:10``, ``--expr --x``): how to write it (argparse took the value for an option)."""
    match = _MISSING_VALUE.search(message)
    if match is None:
        return ""
    option = match[1]
    for i, token in enumerate(tokens[:-1]):
        # argparse accepts unambiguous prefixes of long options (--lr-r for --lr-range)
        if token == option or (token.startswith("--") and len(token) > 2 and option.startswith(token)):
            value = tokens[i + 1]
            if value.startswith("-"):
                return f" (a value starting with '-' must be written {option}={value})"
    return ""


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
    tokens = tuple(sys.argv[1:] if argv is None else argv)
    original = sys.stdout
    output = CheckedOutput(original)
    sys.stdout = output  # type: ignore[assignment]
    reset = _TOKENS.set(tokens)
    command = "gdlab"
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(tokens)
        except SystemExit as exc:  # --help, --version and argparse's usage errors (printed already)
            status = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
        else:
            command = f"gdlab {args.command}" if args.command else "gdlab"
            status = _dispatch(parser, args, command)
        output.flush()
        return status
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        output.silence()
        return 0
    except OSError as exc:  # stdout, or a file a command reads or writes: one line, not a traceback
        print(f"{command}: error: {_describe(exc)}", file=sys.stderr)
        output.silence()
        return EXIT_IO
    finally:
        sys.stdout = original
        _TOKENS.reset(reset)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    """Run the chosen subcommand; a user mistake is one line on stderr and exit code 2."""
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except (UsageError, ValueError, TypeError) as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _describe(exc: OSError) -> str:
    if isinstance(exc, OutputError):
        return str(exc)
    where = f": {exc.filename!r}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


if __name__ == "__main__":
    sys.exit(main())
