"""Project I/O in Label Studio's field names."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Sampling(StrEnum):
    sequential = "Sequential sampling"
    uniform = "Uniform sampling"
    uncertainty = "Uncertainty sampling"


class SkipQueue(StrEnum):
    requeue_for_me = "REQUEUE_FOR_ME"
    requeue_for_others = "REQUEUE_FOR_OTHERS"
    ignore_skipped = "IGNORE_SKIPPED"


class ProjectFields(BaseModel):
    """Writable project fields; every one optional so the same model serves PATCH."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=200)
    description: str | None = None
    label_config: str | None = None
    expert_instruction: str | None = None
    show_instruction: bool | None = None
    show_skip_button: bool | None = None
    enable_empty_annotation: bool | None = None
    show_annotation_history: bool | None = None
    maximum_annotations: int | None = Field(default=None, ge=1, le=1000)
    overlap_cohort_percentage: int | None = Field(default=None, ge=0, le=100)
    show_overlap_first: bool | None = None
    sampling: Sampling | None = None
    skip_queue: SkipQueue | None = None
    review_required: bool | None = None
    task_lock_ttl: int | None = Field(default=None, ge=10)
    model_version: str | None = None
    min_annotations_to_start_training: int | None = Field(default=None, ge=0)
    start_training_on_annotation_update: bool | None = None
    evaluate_predictions_automatically: bool | None = None
    color: str | None = Field(default=None, max_length=16)
    is_published: bool | None = None
    is_draft: bool | None = None
    control_weights: dict[str, Any] | None = None
    # Accepted for Label Studio client compatibility; kubelabel has no use for them.
    organization: int | None = None
    created_by: Any = None
    pinned_at: datetime | None = None
    annotator_evaluation_enabled: bool | None = None
    reveal_preannotations_interactively: bool | None = None
    show_collab_predictions: bool | None = None
    show_ground_truth_first: bool | None = None
    task_data_login: str | None = None
    task_data_password: str | None = None


# Fields accepted but not stored (see above).
IGNORED_FIELDS = frozenset(
    {
        "organization",
        "created_by",
        "pinned_at",
        "annotator_evaluation_enabled",
        "reveal_preannotations_interactively",
        "show_collab_predictions",
        "show_ground_truth_first",
        "task_data_login",
        "task_data_password",
    }
)


class ProjectCounts(BaseModel):
    task_number: int = 0
    num_tasks_with_annotations: int = 0
    finished_task_number: int = 0
    total_annotations_number: int = 0
    skipped_annotations_number: int = 0
    total_predictions_number: int = 0
    ground_truth_number: int = 0
    useful_annotation_number: int = 0
    queue_total: int = 0
    queue_done: int = 0


class UserRef(BaseModel):
    id: int
    username: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""


class ProjectPublic(ProjectCounts):
    id: int
    title: str
    description: str
    label_config: str
    parsed_label_config: dict[str, Any]
    expert_instruction: str
    show_instruction: bool
    show_skip_button: bool
    enable_empty_annotation: bool
    show_annotation_history: bool
    maximum_annotations: int
    overlap_cohort_percentage: int
    show_overlap_first: bool
    sampling: str
    skip_queue: str
    review_required: bool
    task_lock_ttl: int | None
    model_version: str
    min_annotations_to_start_training: int
    start_training_on_annotation_update: bool
    evaluate_predictions_automatically: bool
    color: str
    is_published: bool
    is_draft: bool
    control_weights: dict[str, Any]
    config_has_control_tags: bool
    created_by: UserRef | None
    created_at: datetime
    updated_at: datetime


class ValidateConfigRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label_config: str


class ValidateConfigResponse(BaseModel):
    label_config: str
    parsed_label_config: dict[str, Any]
    data_variables: list[str]
    warnings: list[str] = Field(
        default_factory=list, description="tags the web app's editor cannot render (the config is still valid)"
    )
