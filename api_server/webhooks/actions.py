"""The event catalogue (Label Studio's webhook actions) served by /api/webhooks/info/."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    key: str  # the payload key holding the object(s)
    many: bool
    organization_only: bool = False


ACTIONS: dict[str, Action] = {
    "PROJECT_CREATED": Action("Project created", "A project was created", "project", False, True),
    "PROJECT_UPDATED": Action("Project updated", "A project's settings or label config changed", "project", False),
    "PROJECT_DELETED": Action("Project deleted", "A project was deleted (payload: its id)", "project", False, True),
    "TASKS_CREATED": Action("Task created", "Tasks were created (import, API, storage sync)", "tasks", True),
    "TASKS_DELETED": Action("Task deleted", "Tasks were deleted (payload: their ids)", "tasks", True),
    "ANNOTATION_CREATED": Action("Annotation created", "An annotation was submitted", "annotation", False),
    "ANNOTATIONS_CREATED": Action("Annotations created", "Annotations were created in bulk", "annotation", True),
    "ANNOTATION_UPDATED": Action("Annotation updated", "An annotation was changed", "annotation", False),
    "ANNOTATIONS_DELETED": Action("Annotation deleted", "Annotations were deleted (payload: ids)", "annotations", True),
    "LABEL_LINK_CREATED": Action("Label link created", "Not emitted by kubelabel", "label_link", False),
    "LABEL_LINK_UPDATED": Action("Label link updated", "Not emitted by kubelabel", "label_link", False),
    "LABEL_LINK_DELETED": Action("Label link deleted", "Not emitted by kubelabel", "label_link", False),
    "TASK_COMPLETED": Action(
        "Task completed",
        "A task got the annotations it needs (its overlap) through labeling or review; again after a redo",
        "task",
        False,
    ),
    "REVIEW_CREATED": Action("Review created", "An annotation was accepted or rejected", "review", False),
    "REVIEW_UPDATED": Action("Review updated", "A review was changed", "review", False),
    "REVIEWS_DELETED": Action("Review deleted", "Reviews were deleted (payload: ids)", "review", True),
}


def catalogue(organization_only: bool | None = None) -> dict[str, dict[str, object]]:
    return {
        key: {
            "name": a.name,
            "description": a.description,
            "key": a.key,
            "organization-only": a.organization_only,
        }
        for key, a in ACTIONS.items()
        if organization_only is None or a.organization_only == organization_only
    }
