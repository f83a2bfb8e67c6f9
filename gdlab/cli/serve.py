"""``gdlab serve``: the browser lab on a local web server."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {args.port}")
    import socket

    import uvicorn

    from gdlab.web import create_app

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"gdlab lab at http://{shown}:{port}/  (Ctrl+C to stop)", flush=True)
    config = uvicorn.Config(create_app(), log_level="warning")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0


COMMAND = ("serve", "start the browser lab (a local web server) and print its URL", add_arguments, run)
