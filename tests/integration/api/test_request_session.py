"""The request's session dependency: committed when the request succeeds, rolled back when it fails."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from sqlalchemy import select

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
