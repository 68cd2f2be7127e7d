"""Ready / Progressing / Degraded conditions with Crossplane-style `Set` semantics.

lastTransitionTime moves only when a condition's status flips; reason and message may change
without a transition. A Verdict is the one-line summary a reconciler decides on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from api_server.common.time import iso, utcnow

State = Literal["ready", "progressing", "degraded", "idle"]
TYPES = ("Ready", "Progressing", "Degraded")


def now_iso() -> str:
    return iso(utcnow().replace(microsecond=0), z=True)


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str
    message: str = ""

    @classmethod
    def ready(cls, reason: str, message: str = "") -> Verdict:
        return cls("ready", reason, message)

    @classmethod
    def progressing(cls, reason: str, message: str = "") -> Verdict:
        return cls("progressing", reason, message)

    @classmethod
    def degraded(cls, reason: str, message: str = "") -> Verdict:
        return cls("degraded", reason, message)

    @classmethod
    def idle(cls, reason: str, message: str = "") -> Verdict:
        return cls("idle", reason, message)

    def statuses(self) -> dict[str, str]:
        return {
            "Ready": "True" if self.state == "ready" else "False",
            "Progressing": "True" if self.state == "progressing" else "False",
            "Degraded": "True" if self.state == "degraded" else "False",
        }


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def set_conditions(
    previous: list[dict[str, Any]] | None, verdict: Verdict, generation: int | None, now: str
) -> list[dict[str, Any]]:
    old = {c.get("type"): c for c in previous or []}
    out: list[dict[str, Any]] = []
    for ctype, status in verdict.statuses().items():
        before = old.get(ctype)
        # The verdict's reason explains the condition that is True; the others say why they are not.
        on = status == "True" or (ctype == "Ready" and verdict.state != "ready")
        reason = verdict.reason if on else {"Ready": "Ready", "Progressing": "Stable", "Degraded": "Healthy"}[ctype]
        message = verdict.message if on else ""
        changed = before is None or before.get("status") != status
        cond: dict[str, Any] = {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now if changed or before is None else before.get("lastTransitionTime", now),
        }
        if generation is not None:
            cond["observedGeneration"] = generation
        out.append(cond)
    # Conditions of other types (a project's BackedUp, Restored) are another reconciler's: kept as they were.
    out += [c for c in previous or [] if c.get("type") not in TYPES]
    return out


def transition_events(previous: list[dict[str, Any]] | None, current: list[dict[str, Any]]) -> list[Event]:
    """One Event per real transition (status flip, or a new reason for a True condition)."""
    old = {c.get("type"): c for c in previous or []}
    events: list[Event] = []
    for cond in current:
        before = old.get(cond["type"])
        flipped = before is None or before.get("status") != cond["status"]
        new_reason = before is not None and before.get("reason") != cond["reason"]
        if cond["status"] != "True" or not (flipped or new_reason):
            continue
        kind: Literal["Normal", "Warning"] = "Warning" if cond["type"] == "Degraded" else "Normal"
        events.append(Event(kind, cond["reason"], cond["message"] or cond["reason"]))
    if not events:
        ready_before = (old.get("Ready") or {}).get("status")
        ready_now = next(c for c in current if c["type"] == "Ready")
        if ready_before == "True" and ready_now["status"] != "True":
            events.append(Event("Warning", ready_now["reason"], ready_now["message"] or "no longer ready"))
    return events


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every field of `desired` is present with the same value in `actual` (lists by position)."""
    if isinstance(desired, dict):
        # None: the key is absent (what a merge patch's null makes of it).
        return isinstance(actual, dict) and all(
            actual.get(k) is None if v is None else k in actual and is_subset(v, actual[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return bool(desired == actual)
