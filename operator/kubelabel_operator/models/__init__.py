"""Pydantic models of the custom resources: the single source of truth for the CRD schemas."""

from kubelabel_operator.models.common import (
    Condition,
    ConditionStatus,
    ConditionType,
    ObjectRef,
    SecretKeyRef,
)
from kubelabel_operator.models.labeling_project import LabelingProjectSpec, LabelingProjectStatus
from kubelabel_operator.models.ml_backend import MLBackendSpec, MLBackendStatus
from kubelabel_operator.models.storage_connection import (
    StorageConnectionSpec,
    StorageConnectionStatus,
    SyncState,
)

__all__ = [
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "LabelingProjectSpec",
    "LabelingProjectStatus",
    "MLBackendSpec",
    "MLBackendStatus",
    "ObjectRef",
    "SecretKeyRef",
    "StorageConnectionSpec",
    "StorageConnectionStatus",
    "SyncState",
]
