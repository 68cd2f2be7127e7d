"""The task state machine: states, the legal transitions between them, nothing else.

Pure on purpose: the services decide *where* a task should go after an event (a lock
handed out, a submission, a skip, a review) and ask `check()` whether it may; the table
below is the single place that says which moves exist.

    new ──► in_progress ──► completed ──► accepted
     │          │  ▲            │  ▲          │
     │          ▼  │            ▼  │          ▼
     └────► skipped ◄──     rejected ◄────────┘

Skipped and rejected tasks return to work (in_progress, or new when nobody holds them).
`completed` means the task has the annotations it wants (its overlap); with a review it
moves on to accepted or rejected.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    new = "new"
    in_progress = "in_progress"
    completed = "completed"
    accepted = "accepted"
    rejected = "rejected"
    skipped = "skipped"


S = TaskState

TRANSITIONS: dict[TaskState, tuple[TaskState, ...]] = {
    # Annotated in one go (an API client posting without /next) goes straight to completed.
    S.new: (S.in_progress, S.completed, S.skipped),
    # Back to new when the work in progress disappears (annotations deleted).
    S.in_progress: (S.completed, S.skipped, S.new),
    S.skipped: (S.in_progress, S.completed, S.new),
    # Back to in_progress/new when annotations are deleted or the overlap is raised.
    S.completed: (S.accepted, S.rejected, S.in_progress, S.new),
    # A reviewer may change their mind; new unreviewed work reopens the review (completed).
    S.accepted: (S.rejected, S.completed, S.in_progress, S.new),
    # Rejected work returns to the queue; a fixed or re-reviewed annotation completes it again.
    S.rejected: (S.in_progress, S.new, S.completed, S.accepted),
}

# States in which the task still wants annotations (what the next-task queue may hand out).
OPEN_STATES = frozenset({S.new, S.in_progress, S.skipped, S.rejected})
# States a review may start from.
REVIEWABLE_STATES = frozenset({S.completed, S.accepted, S.rejected})


class IllegalTransition(ValueError):
    def __init__(self, current: str, target: str, allowed: tuple[TaskState, ...]) -> None:
        self.current = current
        self.target = target
        self.allowed = [a.value for a in allowed]
        names = ", ".join(self.allowed) or "none"
        super().__init__(f"a task in state '{current}' cannot move to '{target}'; allowed from '{current}': {names}")


def allowed(current: str) -> tuple[TaskState, ...]:
    return TRANSITIONS.get(TaskState(current), ())


def can(current: str, target: str) -> bool:
    return TaskState(target) in allowed(current)


def check(current: str, target: str) -> None:
    """Raise IllegalTransition unless current -> target is in the table (a move to itself is no move)."""
    if current == target:
        return
    if not can(current, target):
        raise IllegalTransition(current, target, allowed(current))
