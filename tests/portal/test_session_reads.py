"""Browser sessions not in the session cache are read in batches: many browsers arriving at once are
signed in with a few statements, each gets their own user, an unknown or signed-out cookie none, and a
failed read fails the requests of its batch only (real PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from portal.app.auth.batched import BatchedReads

pytest_plugins = ["conftest_api"]


def test_fifty_sessions_arriving_at_once_are_read_in_a_few_statements(portal):
    store = portal.ctx.sessions
    cookies = {f"user{i:02d}": store.create(name=f"user{i:02d}", admin=i % 2 == 0) for i in range(50)}
    gone = store.create(name="gone", admin=True)
    store.revoke(gone)
    reads = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "FROM portal_sessions" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(portal.engine, "after_cursor_execute", count)
    try:
        async def everyone():
            return await asyncio.gather(*(store.principal(c) for c in [*cookies.values(), gone, "forged"]))

        principals = asyncio.run(everyone())
    finally:
        event.remove(portal.engine, "after_cursor_execute", count)
    assert [(p.name, p.admin) for p in principals[:50]] == [(name, int(name[4:]) % 2 == 0) for name in cookies]
    assert principals[50:] == [None, None]
    assert 1 <= len(reads) <= 3  # not 51


def test_a_failed_read_fails_its_batch_and_the_next_batch_reads_afresh():
    calls = []

    def read_many(keys):
        calls.append(sorted(keys))
        if len(calls) == 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("the database is down"))
        return {key: key.upper() for key in keys if key != "missing"}

    reads = BatchedReads(read_many)

    async def main():
        first = await asyncio.gather(reads.get("a"), reads.get("b"), return_exceptions=True)
        second = await asyncio.gather(reads.get("a"), reads.get("missing"))
        return first, second

    first, second = asyncio.run(main())
    assert all(isinstance(r, sa.exc.OperationalError) for r in first)
    assert second == ["A", None] and calls == [["a", "b"], ["a", "missing"]]


def test_a_request_that_goes_away_does_not_cancel_the_others_read():
    async def main():
        reads = BatchedReads(lambda keys: {key: key for key in keys})
        leaving = asyncio.create_task(reads.get("k"))
        staying = asyncio.create_task(reads.get("k"))
        await asyncio.sleep(0)
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return await staying

    assert asyncio.run(main()) == "k"
