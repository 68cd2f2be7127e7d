"""api_server/wiring.py is the one place that registers subscribers, job handlers, pumps, collectors
and maintenance tasks: importing the code registers none of them, and `wire()` exactly these.

Checked in a fresh interpreter, so that what other tests registered (their own subscribers and
job kinds) cannot hide or fake a registration.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil

    import api_server
    from api_server import events
    from api_server.jobs import registry

    # Every module of the API server, as any process might import them (migrations run alone).
    for info in pkgutil.walk_packages(api_server.__path__, "api_server."):
        if ".migrations" not in info.name:
            importlib.import_module(info.name)

    def name(obj):
        return f"{obj.__module__}.{obj.__qualname__}"

    def snapshot():
        return {
            "subscribers": [
                {
                    "handler": name(s.handler),
                    "actions": sorted(s.actions) if s.actions is not None else None,
                    "listeners": str(s.listeners) if s.listeners is not None else None,
                }
                for s in events._subscriptions  # no public listing: events.py keeps them private
            ],
            "handlers": {k: [name(registry.get(k).fn), registry.get(k).lease_seconds] for k in registry.kinds()},
            "pumps": [name(p) for p in registry.pumps()],
            "collectors": [name(c) for c in registry.collectors()],
            "maintenance": [name(m) for m in registry.maintenance_tasks()],
        }

    before = snapshot()
    from api_server.wiring import wire

    wire()
    once = snapshot()
    wire()
    print(json.dumps({"before": before, "once": once, "twice": snapshot()}))
    """
)


def _probe() -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_registers_nothing_and_wire_registers_exactly_the_expected():
    from api_server.ml.repository import BACKENDS_OF_PROJECT
    from api_server.storages.repository import EXPORT_STORAGES_OF_PROJECT
    from api_server.webhooks.repository import LISTENING

    found = _probe()
    assert found["before"] == {"subscribers": [], "handlers": {}, "pumps": [], "collectors": [], "maintenance": []}

    wired = found["once"]
    assert wired["subscribers"] == [
        {"handler": "api_server.webhooks.service.on_event", "actions": None, "listeners": str(LISTENING)},
        {
            "handler": "api_server.ml.triggers.on_event",
            "actions": sorted(
                {
                    "ANNOTATION_CREATED",
                    "ANNOTATION_UPDATED",
                    "ANNOTATIONS_DELETED",
                    "ANNOTATION_DELETED",
                    "TASKS_CREATED",
                    "ANNOTATIONS_CREATED",
                    "PROJECT_UPDATED",
                }
            ),
            "listeners": str(BACKENDS_OF_PROJECT),
        },
        {
            "handler": "api_server.storages.export_on_save.on_event",
            "actions": sorted(
                {
                    "ANNOTATION_CREATED",
                    "ANNOTATIONS_CREATED",
                    "ANNOTATION_UPDATED",
                    "ANNOTATION_DELETED",
                    "ANNOTATIONS_DELETED",
                }
            ),
            "listeners": str(EXPORT_STORAGES_OF_PROJECT),
        },
    ]
    assert wired["handlers"] == {
        "ml.predict": ["api_server.ml.jobs.run_predict", 3600],
        "ml.train": ["api_server.ml.jobs.run_train", 3600],
        "ml.setup": ["api_server.ml.jobs.run_setup", None],
        "ml.event": ["api_server.ml.jobs.run_event", None],
        "storage.sync": ["api_server.storages.jobs.run_sync_job", 600],
        "storage.export_tasks": ["api_server.storages.jobs.export_tasks_job", None],
        "webhook.deliver": ["api_server.webhooks.delivery.legacy_deliver", None],
    }
    assert wired["pumps"] == ["api_server.webhooks.engine.DeliveryEngine"]
    assert wired["collectors"] == ["api_server.webhooks.engine.BacklogMetrics"]
    assert wired["maintenance"] == ["api_server.webhooks.delivery.purge_history"]
    # Each app the tests build wires again: nothing is registered twice.
    assert found["twice"] == wired
