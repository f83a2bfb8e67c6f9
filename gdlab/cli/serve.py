"""``gdlab serve``: the browser lab on a local web server."""

from __future__ import annotations

import argparse
import os
import sys

#: Seconds a stopping server gives the requests in flight before it cancels them.
GRACE_SECONDS = 0.5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--optimizer", action="append", default=[], metavar="NAME", dest="optimizers",
                   help="offer a foreign optimizer (torch:pkg.Class, optax:factory, module:RuleClass); repeatable")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests whose Host header is NAME (repeatable; by default only localhost, "
                        "127.0.0.1, [::1] and --host are answered, against DNS rebinding); '*' answers any host")


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {args.port}")
    import socket

    import uvicorn

    from gdlab.web import create_app
    from gdlab.web.middleware import HostPolicy, host_name, split_host

    if args.optimizers:  # resolve before listening: a failure refuses to start (exit 2)
        from gdlab.cli.errors import usage
        from gdlab.foreign import ForeignError, resolve_class

        for name in args.optimizers:
            if ":" not in name:
                raise usage(f"--optimizer {name!r}: expected torch:pkg.Class, optax:factory or module:RuleClass")
            try:
                resolve_class(name)
            except ForeignError as exc:
                raise usage(f"--optimizer: {exc}") from None
    for name in args.allow_host:
        parsed = split_host(host_name(name)) if name != "*" else ("*", None)
        if parsed is None or parsed[1] is not None:
            raise ValueError(f"--allow-host takes a host name (without port), got {name!r}")
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    sock.listen(2048)  # connections made as soon as the URL is printed wait in the queue, never refused
    port = sock.getsockname()[1]
    hosts = HostPolicy.for_server(args.host, port, args.allow_host)
    # before the URL is printed: a visit right after it finds the app ready
    app = create_app(hosts=hosts, optimizers=args.optimizers)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"gdlab lab at http://{shown}:{port}/  (Ctrl+C to stop)", flush=True)
    if host_name(args.host) in ("0.0.0.0", "[::]") and not args.allow_host:
        print("  listening on every interface: add --allow-host NAME for each name this machine is reached by",
              flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                           timeout_graceful_shutdown=GRACE_SECONDS))
    code = 0
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # the server has stopped: uvicorn passes the Ctrl-C on once it has
        code = 130
    # Nothing is left to save (the compiled-code cache writes whole files), but Python's own teardown of
    # numba, LLVM and SymPy takes about a second, and waits for any compilation in progress: end now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


COMMAND = ("serve", "start the browser lab (a local web server) and print its URL", add_arguments, run)
