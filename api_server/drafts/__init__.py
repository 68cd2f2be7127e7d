"""Drafts: unsubmitted work per user (/api/tasks/{id}/drafts, /api/drafts/{id})."""
