"""The lab server's admission queue: bounded work in flight, cheap requests first, gone clients dropped.

Every computing request (runs, surfaces, analyses, formula checks, previews) passes through one
:class:`Admission` with its estimated cost (:mod:`gdlab.web.cost`):

- **bounded**: the estimated seconds admitted at once (computing or waiting) never exceed
  ``capacity``; a request past it is refused at once with :class:`ServerBusyError` (HTTP 503 with
  ``Retry-After``) instead of waiting behind minutes of work;
- **fair**: requests wait for one of ``workers`` threads of its own pool (never the threads that serve
  the page, static files and ``/api/meta``), earliest deadline first, the deadline being arrival time
  plus estimated cost (a cheap request overtakes heavy ones queued before it, a heavy one is not
  overtaken forever); with two workers or more, heavy requests (over :data:`HEAVY_SECONDS`) leave one
  worker free for the others;
- **cancellable**: a request whose client disconnects is dropped from the queue before it starts, and
  a running one is asked to stop through the ``cancel`` callback its work receives (the run engine's
  ``run_batch(cancel=...)``), ending with :class:`ClientGoneError`.

All bookkeeping happens on the event loop's thread; only the work runs in the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.types import Receive

from gdlab.engine.run import Cancelled

T = TypeVar("T")

#: Requests estimated dearer than this (seconds) are "heavy": they may not take the last free worker.
HEAVY_SECONDS = 1.0


class ServerBusyError(Exception):
    """Refused: the work admitted is at its bound (or the server is stopping). Retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClientGoneError(Exception):
    """The client disconnected: its request was dropped or stopped."""


@dataclass(order=True)
class _Waiter:
    deadline: float
    seq: int
    heavy: bool = field(compare=False)
    ready: asyncio.Future[None] = field(compare=False)


def default_workers(limit: int) -> int:
    """Threads computing requests: the CPUs available to this process, at most ``limit``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(limit, cpus))


class Admission:
    """Admit, order and run the lab's computing requests (see the module docstring)."""

    def __init__(self, capacity: float, workers: int) -> None:
        if capacity <= 0 or workers < 1:
            raise ValueError(f"capacity must be > 0 and workers ≥ 1, got {capacity}, {workers}")
        self.capacity = capacity
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None  # made when first needed, dropped by close()
        self._admitted = 0.0  # estimated seconds computing or waiting
        self._running = 0
        self._running_heavy = 0
        self._waiting: list[_Waiter] = []
        self._seq = itertools.count()
        self._cancels: set[threading.Event] = set()  # of the requests computing now
        self._slowness = 1.0  # measured / estimated seconds, averaged: estimates are upper bounds

    @property
    def admitted(self) -> float:
        """Estimated seconds of work computing or waiting."""
        return self._admitted

    @property
    def waiting(self) -> int:
        """Requests waiting for a worker."""
        return len(self._waiting)

    async def run(self, receive: Receive, cost: float, work: Callable[[Callable[[], bool]], T]) -> T:
        """``work(cancel)`` in the pool once admitted and scheduled; ``receive`` is the request's ASGI
        receive (to notice its client going away). Raises :class:`ServerBusyError` at once past the bound."""
        if self._admitted > 0 and self._admitted + cost > self.capacity:
            raise ServerBusyError(f"the lab server is busy: {self._admitted:.0f} s of estimated work is in flight "
                                  f"(the bound is {self.capacity:.0f} s); try again later",
                                  retry_after=self.retry_after())
        self._admitted += cost
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            heavy = cost > HEAVY_SECONDS and self.workers > 1
            await self._start(cost, heavy, gone)
            try:
                return await self._compute(work, cost, gone)
            finally:
                self._running -= 1
                self._running_heavy -= heavy
                self._dispatch()
        finally:
            self._admitted -= cost
            _forget(gone)

    def retry_after(self) -> int:
        """Seconds until the work in flight is likely done: estimated, corrected by what runs measured."""
        return max(1, math.ceil(self._admitted * self._slowness / self.workers))

    def close(self) -> None:
        """Stop the work in flight (the server is stopping): fail the waiting requests, ask the computing
        ones to stop, and let the pool's threads end (a later request starts a new pool)."""
        for waiter in self._waiting:
            if not waiter.ready.done():
                waiter.ready.set_exception(ServerBusyError("the lab server is stopping", retry_after=5))
        self._waiting.clear()
        for cancel in list(self._cancels):
            cancel.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- internals ---------------------------------------------------------------------------------
    def _can_start(self, heavy: bool) -> bool:
        if self._running >= self.workers:
            return False
        return not heavy or self._running_heavy < self.workers - 1

    async def _start(self, cost: float, heavy: bool, gone: asyncio.Future[None]) -> None:
        """Wait for a worker; :class:`ClientGoneError` when the client leaves first."""
        waiter = _Waiter(time.monotonic() + cost, next(self._seq), heavy, asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiting, waiter)
        self._dispatch()
        if not waiter.ready.done():
            await asyncio.wait({waiter.ready, gone}, return_when=asyncio.FIRST_COMPLETED)
        if waiter.ready.done():
            waiter.ready.result()  # raises ServerBusyError when the server is stopping
            if gone.done():
                self._running -= 1
                self._running_heavy -= heavy
                self._dispatch()
                raise ClientGoneError("the client closed the connection before its request started")
            return
        self._waiting.remove(waiter)
        heapq.heapify(self._waiting)
        raise ClientGoneError("the client closed the connection while its request waited")

    def _dispatch(self) -> None:
        """Start the waiting requests that can start, earliest deadline first."""
        for waiter in sorted(self._waiting):
            if not self._can_start(waiter.heavy):
                continue
            self._waiting.remove(waiter)
            self._running += 1
            self._running_heavy += waiter.heavy
            waiter.ready.set_result(None)
        heapq.heapify(self._waiting)

    async def _compute(self, work: Callable[[Callable[[], bool]], T], cost: float, gone: asyncio.Future[None]) -> T:
        cancel = threading.Event()
        self._cancels.add(cancel)
        t0 = time.perf_counter()
        try:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="gdlab-lab-work")
            job = asyncio.get_running_loop().run_in_executor(self._pool, work, cancel.is_set)
            try:
                await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # the server stops the request (shutdown): stop its work too
                cancel.set()
                raise
            if not job.done():  # the client left: ask the work to stop, and wait for it to
                cancel.set()
                with contextlib.suppress(Exception):
                    await job
                raise ClientGoneError("the client closed the connection while its request was computed")
            try:
                result = job.result()
            except Cancelled:
                raise ServerBusyError("the lab server is stopping", retry_after=5) from None
            if cost >= HEAVY_SECONDS / 10:  # cheap requests measure mostly overhead
                measured = (time.perf_counter() - t0) / cost
                self._slowness = min(4.0, max(0.01, 0.8 * self._slowness + 0.2 * measured))
            return result
        finally:
            self._cancels.discard(cancel)


def _forget(task: asyncio.Future[None]) -> None:
    """Stop watching a client (and collect what the watch ended with, so that nothing is reported)."""
    task.cancel()
    if task.done() and not task.cancelled():
        task.exception()


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (the body was read already: what comes next is the disconnect)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
