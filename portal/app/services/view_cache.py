"""A short-lived cache of what dashboard pages compute (the overview's figures, a billing report, a user's
page data), shared by every request of this process: under load, each is computed once per
``PORTAL_VIEW_CACHE_SECONDS`` (default 30; 0 turns it off) instead of once per request. What a page shows is
then at most that old; actions (limits, rates, deletes) are never cached."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")
MAX_ENTRIES = 2048


class ViewCache:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl_seconds, clock
        self._entries: dict[Hashable, tuple[float, object]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The cached value of ``key``, or ``make()``'s (one computation at a time per key)."""
        if self.ttl <= 0:
            return make()
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            now = self.clock()
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]  # type: ignore[return-value]
            value = make()
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                    if len(self._entries) >= MAX_ENTRIES:
                        self._entries.clear()
                self._entries[key] = (now + self.ttl, value)
            return value
