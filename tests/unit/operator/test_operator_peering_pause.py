"""The periodic loop follows Kopf's peering pause, which Kopf announces only in its peering log."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from kubelabel_operator.handlers import periodic

KOPF_PEERING = logging.getLogger("kopf._core.engines.peering")
KEY = ("LabelingProject", "ns", "p")


def test_pause_and_resume_follow_kopfs_peering_log() -> None:
    periodic.PEERING.paused = False
    KOPF_PEERING.info("Pausing operations in favour of [<Peer a: priority=100>].")
    assert periodic.PEERING.paused
    KOPF_PEERING.info("Resuming operations after the pause. Conflicting operators with the same priority are gone.")
    assert not periodic.PEERING.paused
    KOPF_PEERING.warning("Pausing all operators, including self: [...]")
    assert periodic.PEERING.paused
    periodic.PEERING.paused = False


def test_a_paused_operator_resyncs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[float] = []

    async def run(rt: Any, key: periodic.Key, work: periodic.Work, limit: asyncio.Semaphore) -> None:
        done.append(asyncio.get_running_loop().time())

    monkeypatch.setattr(periodic, "_run", run)
    monkeypatch.setattr(periodic.SCHEDULE, "known", {KEY})

    async def scenario() -> int:
        loop = asyncio.create_task(periodic.run_forever(None, [("LabelingProject", "w", 0.01, run)], tick=0.01))  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        KOPF_PEERING.info("Pausing operations in favour of [<Peer a: priority=100>].")
        await asyncio.sleep(0.03)  # a resync started before the pause may still finish; none may start
        before = len(done)
        await asyncio.sleep(0.1)
        paused = len(done) - before
        KOPF_PEERING.info("Resuming operations after the pause.")
        await asyncio.sleep(0.1)
        loop.cancel()
        return paused

    paused = asyncio.run(scenario())
    assert done and paused == 0
    assert not periodic.PEERING.paused
