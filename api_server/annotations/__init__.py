"""Annotations: Label Studio's /api/tasks/{id}/annotations and /api/annotations/{id}."""
