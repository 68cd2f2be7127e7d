"""The labeling workflow's one public face: what the annotations, drafts and predictions services
use of it. They write inside its transactions, lock and release tasks through it, let it settle a
task's state after a change, and check access with it; its parts (service, repository, txn,
access, ...) are its own (the `workflow-public-face` contract in .importlinter).

A module, not the package's `__init__`: the migrations load `api_server.workflow.sql`, and an
`__init__` that imported the services would load the whole API server with them.
"""

from __future__ import annotations

from api_server.workflow.access import is_at_least, project_access, sees_everyones_work, task_access
from api_server.workflow.metrics import ANNOTATIONS_SKIPPED, ANNOTATIONS_SUBMITTED
from api_server.workflow.repository import lock_task, release_lock
from api_server.workflow.service import settle
from api_server.workflow.txn import writing

__all__ = [
    "ANNOTATIONS_SKIPPED",
    "ANNOTATIONS_SUBMITTED",
    "is_at_least",
    "lock_task",
    "project_access",
    "release_lock",
    "sees_everyones_work",
    "settle",
    "task_access",
    "writing",
]
