"""Webhooks: Label Studio's model and events, signed deliveries sent by the delivery engine.

Importing the package subscribes to domain events and registers the engine with the job runner.
"""

from api_server import events
from api_server.webhooks import delivery as _delivery  # noqa: F401  (registers the legacy job kind)
from api_server.webhooks import engine as _engine  # noqa: F401  (registers the delivery engine)
from api_server.webhooks.repository import ACTIVE_FOR_PROJECT
from api_server.webhooks.service import on_event

events.subscribe(on_event, listeners=ACTIVE_FOR_PROJECT)
