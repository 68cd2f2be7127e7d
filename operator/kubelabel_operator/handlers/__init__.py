"""Kopf handlers (thin: parse, call a reconciler, report). Importing this registers them all."""

from kubelabel_operator.handlers import (
    admission,
    children,
    lifecycle,
    mlbackend,
    periodic,
    project,
    secrets,
    storage,
)

__all__ = ["admission", "children", "lifecycle", "mlbackend", "periodic", "project", "secrets", "storage"]
