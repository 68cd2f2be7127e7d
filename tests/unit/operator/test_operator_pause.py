"""kubelabel.io/paused: the status is marked once, and only a pause or a resume triggers a reconcile."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kubelabel_operator.handlers import pause
from kubelabel_operator.k8s.resources import PROJECTS


class StatusRecorder:
    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    async def patch_status(self, res: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.writes.append(status)


def body(annotation: str | None, marked: bool) -> dict[str, Any]:
    annotations = {} if annotation is None else {"kubelabel.io/paused": annotation}
    return {
        "metadata": {"name": "p", "namespace": "ns", "annotations": annotations},
        "status": {"paused": True} if marked else {},
    }


async def test_held_marks_once_and_clears_on_resume() -> None:
    k8s = StatusRecorder()
    rt: Any = SimpleNamespace(k8s=k8s)
    assert await pause.held(rt, PROJECTS, body("true", marked=False))
    assert await pause.held(rt, PROJECTS, body("true", marked=True))  # already said: no write
    assert not await pause.held(rt, PROJECTS, body(None, marked=True))
    assert not await pause.held(rt, PROJECTS, body("false", marked=False))
    assert k8s.writes == [{"paused": True}, {"paused": None}]


async def test_only_a_transition_reconciles() -> None:
    calls: list[dict[str, Any]] = []

    async def reconcile(rt: Any, b: dict[str, Any], logger: Any = None) -> None:
        calls.append(b)

    rt: Any = SimpleNamespace(k8s=StatusRecorder())
    await pause.on_event(rt, "MODIFIED", body("true", marked=True), reconcile)
    await pause.on_event(rt, "MODIFIED", body(None, marked=False), reconcile)
    await pause.on_event(rt, "DELETED", body("true", marked=False), reconcile)
    assert calls == []
    await pause.on_event(rt, "MODIFIED", body("true", marked=False), reconcile)
    await pause.on_event(rt, "MODIFIED", body(None, marked=True), reconcile)
    assert len(calls) == 2
