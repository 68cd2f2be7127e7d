"""What a reconcile returns to its handler, and the error that blocks one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelabel_operator.reconcilers.conditions import Event, Verdict, is_subset, set_conditions, transition_events


class Blocked(Exception):
    """Something outside the operator's control is missing or wrong; the user must act."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Outcome:
    verdict: Verdict
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    changed: bool = True
    children: dict[str, str] = field(default_factory=dict)  # "Kind/name" -> created|updated|unchanged|deleted


def finish(
    body: dict[str, Any],
    verdict: Verdict,
    extra_status: dict[str, Any],
    now: str,
    children: dict[str, str] | None = None,
) -> Outcome:
    """Build the status (conditions moved only on real transitions) and the Events for the change."""
    previous = body.get("status") or {}
    generation = body.get("metadata", {}).get("generation")
    conditions = set_conditions(previous.get("conditions"), verdict, generation, now)
    status = {**extra_status, "conditions": conditions}
    if generation is not None:
        status["observedGeneration"] = generation
    events = transition_events(previous.get("conditions"), conditions)
    return Outcome(
        verdict=verdict,
        status=status,
        events=events,
        changed=not is_subset(status, previous),
        children=children or {},
    )
