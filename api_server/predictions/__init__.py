"""Predictions: Label Studio's /api/predictions."""
