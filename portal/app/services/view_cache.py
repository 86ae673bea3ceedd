"""A short-lived cache of what dashboard pages compute (the overview's figures, a billing report, a user's
page data), shared by every request of this process: under load, each is computed once per
``PORTAL_VIEW_CACHE_SECONDS`` (default 30; 0 turns it off) instead of once per request. What a page shows is
then at most that old. Actions (limits, rates, deletes) are never cached, and every successful change
(an authenticated POST/PUT/PATCH/DELETE answered below 400) clears the cache of this process at once (see
``InvalidateOnChangeMiddleware``), so an admin's edit shows on the next page.

The rendered pages themselves are kept in a second ``ViewCache`` (see ``portal.app.pages.cache``); a page
entry never outlives the data entries it was rendered from (``tracking``), so both bounds are the same."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")
MAX_ENTRIES = 2048


class _Tracker:
    """The earliest expiry (monotonic clock) of every cached value used while it is active."""

    __slots__ = ("expires",)

    def __init__(self) -> None:
        self.expires = math.inf


_tracker: ContextVar[_Tracker | None] = ContextVar("view_cache_tracker", default=None)


@contextmanager
def tracking() -> Iterator[_Tracker]:
    """Note the earliest expiry of the cached values read in this block (this thread/task only)."""
    tracker = _Tracker()
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


def _note(expires: float) -> None:
    tracker = _tracker.get()
    if tracker is not None and expires < tracker.expires:
        tracker.expires = expires


class ViewCache:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.ttl, self.clock, self.max_entries = ttl_seconds, clock, max_entries
        self._entries: dict[Hashable, tuple[float, object]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def clear(self) -> None:
        """Forget every entry; a value being computed now (from what may be older data) is not kept."""
        with self._lock:
            self._generation += 1
            self._entries = {}

    def peek(self, key: Hashable) -> object | None:
        """The live value of ``key`` or None, without waiting for any lock (for the event loop)."""
        if self.ttl <= 0:
            return None
        hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > self.clock() else None

    def get(self, key: Hashable, make: Callable[[], T], *, expires: Callable[[], float] | None = None,
            keep: Callable[[T], bool] | None = None) -> T:
        """The cached value of ``key``, or ``make()``'s (one computation at a time per key). ``expires``: when
        a new value must expire at the latest (monotonic clock); ``keep``: whether a new value may be cached."""
        if self.ttl <= 0:
            return make()
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            now = self.clock()
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                _note(hit[0])
                return hit[1]  # type: ignore[return-value]
            generation = self._generation
            value = make()
            until = now + self.ttl
            if expires is not None:
                until = min(until, expires())
            if keep is not None and not keep(value):
                return value
            with self._lock:
                if generation != self._generation:  # cleared while computing: the value may be stale
                    return value
                if len(self._entries) >= self.max_entries:
                    self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                    if len(self._entries) >= self.max_entries:
                        self._entries = {}
                        self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                self._entries[key] = (until, value)
            _note(until)
            return value
