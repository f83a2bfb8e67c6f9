"""The lab's one kind of cache: least recently used, bounded by a number of entries and by bytes.

Every cache of the server (landscapes and parsed expressions, surfaces, runs, the meta answer) is an
:class:`LRUCache` with both limits from :data:`gdlab.core.limits.LIMITS`, so that no sequence of
requests can grow the server's memory without bound: past either limit the entries used least
recently are dropped. Byte strings weigh their length; other values weigh what ``weigh`` estimates.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


def byte_length(value: bytes) -> int:
    """The weight of a byte string: its length."""
    return len(value)


class LRUCache(Generic[V]):
    """A thread-safe LRU cache holding at most ``max_items`` entries weighing at most ``max_bytes``.

    ``weigh(value)`` is the number of bytes an entry is counted for. A value heavier than a quarter of
    ``max_bytes`` is not kept (it would evict most of the others and be evicted soon itself).
    """

    def __init__(self, name: str, *, max_items: int, max_bytes: int, weigh: Callable[[V], int]) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError(f"cache {name!r}: max_items and max_bytes must be ≥ 1, got {max_items}, {max_bytes}")
        self.name = name
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._weigh = weigh
        self._data: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        """The total weight of the entries held."""
        return self._bytes

    def get(self, key: Hashable) -> V | None:
        """The value under ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            self._data.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: V) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used entries past either limit."""
        weight = int(self._weigh(value))
        if weight > self.max_bytes // 4:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, weight)
            self._bytes += weight
            while len(self._data) > self.max_items or self._bytes > self.max_bytes:
                _, (_, dropped) = self._data.popitem(last=False)
                self._bytes -= dropped

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value under ``key``, made by ``make()`` and kept when absent (``make`` runs unlocked:
        two threads asking for the same new key may both make it; the last one is kept)."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()
            self._bytes = 0
