"""Webhooks: Label Studio's model and events, signed deliveries through the job queue.

Importing the package subscribes to domain events and registers the delivery job handler.
"""

from api_server import events
from api_server.webhooks import delivery as _delivery  # noqa: F401  (registers the job handler)
from api_server.webhooks.repository import ACTIVE_FOR_PROJECT
from api_server.webhooks.service import on_event

events.subscribe(on_event, listeners=ACTIVE_FOR_PROJECT)
