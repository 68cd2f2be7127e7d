"""The request's session: committed when the request succeeds, rolled back when it fails.

Both where it happens for sync endpoints (`one_thread_trip`, in the endpoint's own trip to
the thread pool) and in the dependency that ends every request (`get_session`).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from api_server.common.routing import one_thread_trip
from api_server.db.models import User
from api_server.deps import get_session


def _request(live_server):
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(session_factory=live_server.session_factory)))


async def _request_that_adds(live_server, username: str, *, fails: bool) -> None:
    dependency = get_session(_request(live_server))
    session = await dependency.__anext__()
    session.add(User(username=username))
    session.flush()  # written, left uncommitted: what a service that forgot to commit would leave
    if fails:
        with pytest.raises(RuntimeError):
            await dependency.athrow(RuntimeError("the endpoint failed"))
    else:
        with pytest.raises(StopAsyncIteration):
            await dependency.__anext__()
    assert not session.in_transaction()


def _exists(live_server, username: str) -> bool:
    with live_server.session_factory() as session:
        return session.scalar(select(User.id).where(User.username == username)) is not None


def test_a_failed_request_leaves_nothing_and_a_good_one_keeps_its_work(live_server):
    asyncio.run(_request_that_adds(live_server, "rolled-back", fails=True))
    asyncio.run(_request_that_adds(live_server, "committed", fails=False))
    assert not _exists(live_server, "rolled-back")
    assert _exists(live_server, "committed")


def test_a_sync_endpoint_and_the_end_of_its_transaction_share_one_thread(live_server):
    seen: dict[str, object] = {}

    def endpoint(username: str, session) -> str:
        seen["endpoint thread"] = threading.get_ident()
        session.add(User(username=username))
        session.flush()  # left open: the wrapper commits it, in this same thread, before returning
        return username

    def failing(username: str, session) -> str:
        session.add(User(username=username))
        session.flush()
        raise RuntimeError("the endpoint failed")

    wrapped = one_thread_trip(endpoint)
    assert inspect.iscoroutinefunction(wrapped)
    assert inspect.signature(wrapped) == inspect.signature(endpoint)  # what FastAPI reads
    with live_server.session_factory() as session:
        assert asyncio.run(wrapped(username="one-trip", session=session)) == "one-trip"
        assert not session.in_transaction()
        assert seen["endpoint thread"] != threading.get_ident()
    with live_server.session_factory() as session:
        with pytest.raises(RuntimeError):
            asyncio.run(one_thread_trip(failing)(username="one-trip-failed", session=session))
        assert not session.in_transaction()  # rolled back in the endpoint's trip, not at close
    assert _exists(live_server, "one-trip")
    assert not _exists(live_server, "one-trip-failed")


def test_async_endpoints_are_left_as_they_are():
    async def endpoint() -> None:
        return None

    assert one_thread_trip(endpoint) is endpoint
