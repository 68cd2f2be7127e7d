"""Where ML work runs and what the model server learns from.

- With Redis, the API only queues ML jobs; `kubelabel worker` runs them.
- Told the API's address, the model server trains on the project's annotated tasks, read
  through the export API, not only on what webhook events carried.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select
from test_ml_api import canned, import_tasks
from topic_corpus import LABEL_CONFIG, generate

from api_server.db.models import EventOutbox, Job, Prediction
from api_server.ml.client import MLBackendClient
from tests.support.apiserver import ADMIN_TOKEN
from tests.support.services import REDIS_URL

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="topic" toName="text"><Choice value="A"/><Choice value="B"/></Choices></View>"""


@pytest.mark.redis
def test_with_redis_the_worker_runs_ml_jobs(server_pool: Any, misbehaving_server: Any, redis_prefix: str) -> None:
    prefix = redis_prefix
    # Deterministic: the API process never runs jobs itself (auto would, while Redis looks down).
    server = server_pool.new(
        "sqlite", REDIS_URL=REDIS_URL, KUBELABEL_REDIS_PREFIX=prefix, KUBELABEL_INPROCESS_JOBS="never"
    )
    misbehaving_server.on("/health", body={"status": "UP"})
    misbehaving_server.on("/setup", body={"model_version": "w1"})
    misbehaving_server.on("/predict", body=canned("B", 0.3, 3, "w1"))
    with server.client() as api:
        project = api.post("/api/projects/", json={"title": "w", "label_config": CONFIG}).json()
        api.post("/api/ml/", json={"url": misbehaving_server.url, "project": project["id"]}).raise_for_status()
        ids = import_tasks(api, project["id"], ["a", "b", "c"])

    with server.session_factory() as session:
        # The API process left it to a worker: the import's event waits in the outbox, no job yet.
        assert [e.action for e in session.scalars(select(EventOutbox))] == ["TASKS_CREATED"]
        assert list(session.scalars(select(Job).where(Job.kind == "ml.predict"))) == []
        assert list(session.scalars(select(Prediction))) == []

    env = {**os.environ, "DATABASE_URL": server.database_url, "REDIS_URL": REDIS_URL, "KUBELABEL_REDIS_PREFIX": prefix}
    done = subprocess.run(
        [sys.executable, "-m", "kubelabel_cli", "worker", "--burst"], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    with server.session_factory() as session:
        rows = list(session.scalars(select(Prediction).order_by(Prediction.task_id)))
        assert [(p.task_id, p.model_version, p.score) for p in rows] == [(i, "w1", 0.3) for i in ids]
        jobs = list(session.scalars(select(Job).where(Job.kind == "ml.predict")))
        assert [(j.status, j.payload["task_id_ranges"]) for j in jobs] == [("done", [[ids[0], ids[-1]]])]


def test_model_server_trains_on_the_projects_annotations_from_the_api(
    api: Any, live_server: Any, start_model_server: Any
) -> None:
    samples = generate(40)
    project = api.post("/api/projects/", json={"title": "src", "label_config": LABEL_CONFIG}).json()
    ids = import_tasks(api, project["id"], [s.text for s in samples])
    for task_id, sample in zip(ids[:30], samples, strict=False):
        result = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [sample.label]}}]
        assert api.post(f"/api/tasks/{task_id}/annotations/", json={"result": result}).status_code == 201

    server = start_model_server(KUBELABEL_API_URL=live_server.url, KUBELABEL_API_TOKEN=ADMIN_TOKEN)
    event = {"project": {"id": project["id"], "label_config": LABEL_CONFIG}}
    with MLBackendClient(server.url) as client:
        reply = client.webhook("START_TRAINING", event)
    # No annotation event ever reached it: all 30 examples came from the export API.
    assert reply.result["trained"] is True
    assert (reply.result["source"], reply.result["examples"]) == ("api", 30)


def test_model_server_falls_back_to_event_examples_when_the_api_is_down(
    start_model_server: Any, unused_url: str
) -> None:
    server = start_model_server(KUBELABEL_API_URL=unused_url)
    samples = generate(6)
    with MLBackendClient(server.url) as client:
        for i, sample in enumerate(samples):
            event = {
                "project": {"id": 5, "label_config": LABEL_CONFIG},
                "task": {"id": i, "data": {"text": sample.text}},
                "annotation": {
                    "id": i,
                    "result": [
                        {
                            "from_name": "topic",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": [sample.label]},
                        }
                    ],
                },
            }
            reply = client.webhook("ANNOTATION_CREATED", event)
    assert reply.result["source"] == "events" and reply.result["examples"] == 6
    assert "cannot reach" in reply.result["message"]
