"""ASGI middleware of the lab server: what every request goes through before any endpoint.

- :class:`HostGuard` refuses (421) a request whose ``Host`` is not a name the server was started for,
  so that a web page cannot reach the local lab through DNS rebinding;
- :class:`BodyLimit` refuses (413) a body larger than the API needs, from its ``Content-Length``
  before reading anything, and while it streams in (chunked or with a lying length);
- :class:`NeverFail` turns an unexpected exception into a 400 ``internal`` answer: never a 500.

Each answers JSON ``{"detail": message}`` without running anything else.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("gdlab.web")

#: Names that always reach a server listening on this machine's loopback interface.
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


async def send_json(send: Send, status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()) -> None:
    """Answer ``body`` as JSON with ``status`` (and extra ``headers``)."""
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


# ------------------------------------------------------------------------------------------------
# Host
# ------------------------------------------------------------------------------------------------
def host_name(host: str) -> str:
    """How a ``Host`` header names ``host``: lower case, IPv6 addresses in brackets."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        return host
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


@dataclass(frozen=True)
class HostPolicy:
    """The ``Host`` headers a server answers: one of ``names`` (``"*"``: any), with ``port`` when it is
    set (a browser leaves out port 80)."""

    names: frozenset[str]
    port: int | None = None

    @classmethod
    def for_server(cls, host: str | None = None, port: int | None = None, extra: Iterable[str] = ()) -> HostPolicy:
        """The loopback names, ``host`` (unless it is every interface: 0.0.0.0 or ::) and ``extra``."""
        names = set(LOOPBACK)
        if host and host_name(host) not in ("0.0.0.0", "[::]"):
            names.add(host_name(host))
        names.update(host_name(h) for h in extra)
        return cls(frozenset(names), port)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is for this server."""
        if "*" in self.names:
            return True
        parsed = split_host(header or "")
        if parsed is None:
            return False
        name, port = parsed
        if self.port is not None and (80 if port is None else port) != self.port:
            return False
        return host_name(name) in self.names


def split_host(header: str) -> tuple[str, int | None] | None:
    """A ``Host`` header's name and port (``None`` when absent); ``None`` when it is not one."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        if end < 0:
            return None
        name, rest = h[: end + 1], h[end + 1 :]
    else:
        name, colon, port = h.partition(":")
        rest = colon + port
    if not name:
        return None
    if not rest:
        return name, None
    if rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6:
        return name, int(rest[1:])
    return None


class HostGuard:
    """Refuse (421) requests whose ``Host`` the :class:`HostPolicy` does not allow."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host")
            if not self.policy.allows(host):
                shown = repr(host[:100]) if host else "(none)"
                log.warning("refused a request for host %s", shown)
                if scope["type"] == "http":
                    await send_json(send, 421, {"detail": f"this server does not answer for the host {shown}; "
                                                          "start it with --allow-host NAME to allow a name"})
                return
        await self.app(scope, receive, send)


# ------------------------------------------------------------------------------------------------
# body size
# ------------------------------------------------------------------------------------------------
class BodyTooLarge(HTTPException):
    """A request body past the limit (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes, the most this API reads")


class BodyLimit:
    """Refuse (413) request bodies larger than ``limit`` bytes without reading them whole.

    A declared ``Content-Length`` past the limit is answered before any byte is read; otherwise the
    bytes are counted as they arrive and reading stops at the first chunk past the limit (the endpoint
    sees :class:`BodyTooLarge`, answered 413 by the app's handler, or here when it escapes).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.limit:
            await send_json(send, 413, {"detail": BodyTooLarge(self.limit).detail})
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            if not started:
                await send_json(send, 413, {"detail": exc.detail})


# ------------------------------------------------------------------------------------------------
# never a 500
# ------------------------------------------------------------------------------------------------
class NeverFail:
    """An unexpected exception becomes a 400 ``internal`` JSON answer, never a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # the one place that must catch everything
            log.exception("unexpected error on %s", scope.get("path"))
            if not started:
                await send_json(send, 400, {"detail": f"internal error while handling the request "
                                                      f"({type(exc).__name__}); the input was not processed",
                                            "error": "internal"})
