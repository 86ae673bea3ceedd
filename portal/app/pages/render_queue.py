"""Where cached pages that are not in the cache yet are rendered: at most ``RENDER_SLOTS`` at a time, and
one render per page key (a second request for a page being rendered waits for it, then reads the cache).

Why few at a time: building a page is mostly Python (SQLAlchemy, Jinja), so threads rendering at once only
take turns at the interpreter lock, and the event loop, which answers every cached page, gets a smaller
turn the more there are. With 50 users' first pages asked for at once, 40 render threads made every cached
answer wait behind them; two keep cached pages answered in a few milliseconds while the new pages are built
one after another (the database works for one while Python renders the other).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")
RENDER_SLOTS = 2


class RenderQueue:
    def __init__(self, slots: int = RENDER_SLOTS) -> None:
        self.slots = slots
        self._loop: asyncio.AbstractEventLoop | None = None  # the serving loop; a new one (tests) starts afresh
        self._semaphore = asyncio.Semaphore(slots)
        self._rendering: dict[Hashable, asyncio.Event] = {}

    def _on_this_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._semaphore, self._rendering = loop, asyncio.Semaphore(self.slots), {}

    async def wait_for(self, key: Hashable) -> bool:
        """Wait while ``key`` is being rendered by another request; True if it was."""
        self._on_this_loop()
        event = self._rendering.get(key)
        if event is None:
            return False
        await event.wait()
        return True

    async def render(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` (which renders ``key``) in a free slot; requests for ``key`` meanwhile wait for it."""
        self._on_this_loop()
        event = self._rendering.setdefault(key, asyncio.Event())
        try:
            async with self._semaphore:
                return await work()
        finally:
            if self._rendering.get(key) is event:
                del self._rendering[key]
            event.set()
