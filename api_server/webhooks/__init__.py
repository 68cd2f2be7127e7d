"""Webhooks: Label Studio's model and events, signed deliveries sent by the delivery engine.

The subscriber (service.on_event), the engine and its metrics are registered in api_server/wiring.py.
"""
