"""Reads by key, batched: keys asked for while a read is under way are read together by the next one.

``BatchedReads(read_many).get(key)`` waits for ``read_many(keys)`` (run in the thread pool, one at a time)
to return a dict; a key it does not hold gives None. A failed read fails every request of its batch with
its error, and the next batch is read afresh. State belongs to the event loop that uses it (a new loop,
as in tests, starts empty).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # a waiter that went away must not leave "exception never retrieved" behind


class BatchedReads(Generic[K, V]):
    def __init__(self, read_many: Callable[[list[K]], dict[K, V]]) -> None:
        self.read_many = read_many
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[K, asyncio.Future] = {}
        self._reading = False
        self._task: asyncio.Task | None = None  # held: the loop keeps only a weak reference to tasks

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._pending, self._reading = loop, {}, False
        future = self._pending.get(key)
        if future is None:
            future = self._pending[key] = loop.create_future()
            future.add_done_callback(_retrieved)
            if not self._reading:
                self._reading = True
                self._task = loop.create_task(self._read())
        return await asyncio.shield(future)  # one request going away does not cancel the others' read

    async def _read(self) -> None:
        batch: dict[K, asyncio.Future] = {}
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                try:
                    found = await run_in_threadpool(self.read_many, list(batch))
                except Exception as exc:
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(found.get(key))
        finally:
            self._reading = False
            for future in [*batch.values(), *self._pending.values()]:  # cancelled itself: nobody waits forever
                if not future.done():
                    future.cancel()
            if self._pending:
                self._pending = {}
