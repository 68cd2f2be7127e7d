"""Active learning end to end: a labeled data set, annotations through the API, training every N
annotations, better held-out predictions, and uncertainty sampling serving the least certain task.

The data set (topic_corpus) has 200 sentences about three topics; 150 form the pool annotators
label, 50 are held out: imported like the rest but never annotated, so the predictions kubelabel
stores for them measure the model.
"""

from __future__ import annotations

from typing import Any

import httpx
from topic_corpus import LABEL_CONFIG, generate

from tests.support.apiserver import LiveServer
from tests.support.waiting import wait_until

EVERY = 10  # min_annotations_to_start_training


def trainings_ok(api: httpx.Client, project_id: int) -> float:
    """kubelabel_ml_trainings_total{outcome="ok"} of the project (the counter is process-wide)."""
    prefix = f'kubelabel_ml_trainings_total{{outcome="ok",project="{project_id}"}} '
    lines = [line for line in api.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0][len(prefix) :]) if lines else 0.0


def annotate(api: httpx.Client, task_id: int, label: str) -> None:
    result = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]
    r = api.post(f"/api/tasks/{task_id}/annotations/", json={"result": result})
    assert r.status_code == 201, r.text


def newest_predictions(api: httpx.Client, project_id: int) -> dict[int, dict[str, Any]]:
    r = api.get("/api/predictions/", params={"project": project_id})
    assert r.status_code == 200, r.text
    newest: dict[int, dict[str, Any]] = {}
    for p in r.json():  # ordered by id: later rows are newer
        newest[p["task"]] = p
    return newest


def settled(api: httpx.Client, project_id: int, backend_id: int, version: str, task_ids: list[int]) -> bool:
    """The backend reports `version` and every task in `task_ids` has a prediction of it."""
    backend = api.get("/api/ml", params={"project": project_id}).json()[0]
    if backend["id"] != backend_id or backend["model_version"] != version:
        return False
    newest = newest_predictions(api, project_id)
    return all(newest.get(t, {}).get("model_version") == version for t in task_ids)


def accuracy(api: httpx.Client, project_id: int, truth: dict[int, str]) -> float:
    newest = newest_predictions(api, project_id)
    right = 0
    for task_id, label in truth.items():
        result = newest.get(task_id, {}).get("result") or []
        right += bool(result) and result[0]["value"]["choices"] == [label]
    return right / len(truth)


def test_training_every_n_annotations_improves_held_out_predictions(
    api: httpx.Client, live_server: LiveServer, start_model_server: Any
) -> None:
    samples = generate(200)
    pool, held_out = samples[:150], samples[150:]
    server = start_model_server(MODEL_SERVER_TRAIN_ON_ANNOTATION="false")
    project = api.post(
        "/api/projects/",
        json={
            "title": "Topics",
            "label_config": LABEL_CONFIG,
            "sampling": "Uncertainty sampling",
            "min_annotations_to_start_training": EVERY,
        },
    ).json()
    pid = project["id"]
    backend = api.post("/api/ml/", json={"url": server.url, "project": pid, "title": "ns/topics"}).json()
    assert (backend["state"], backend["model_version"]) == ("CO", "tfidf-logreg-v0")

    trainings_before = trainings_ok(api, pid)
    r = api.post(
        f"/api/projects/{pid}/import", params={"return_task_ids": "true"}, json=[{"text": s.text} for s in samples]
    )
    assert r.status_code == 201, r.text
    ids = r.json()["task_ids"]
    pool_ids, held_ids = ids[:150], ids[150:]
    truth = {task_id: s.label for task_id, s in zip(held_ids, held_out, strict=True)}
    # Predicted on import, but an untrained model proposes nothing.
    wait_until(lambda: api.get(f"/api/ml/{backend['id']}").json()["state"] == "CO", what="import predictions")
    before = accuracy(api, pid, truth)

    for task_id, sample in zip(pool_ids[:EVERY], pool, strict=False):
        annotate(api, task_id, sample.label)
    wait_until(lambda: settled(api, pid, backend["id"], "tfidf-logreg-v1", held_ids), what="first training")
    few = accuracy(api, pid, truth)

    for task_id, sample in zip(pool_ids[EVERY : 6 * EVERY], pool[EVERY:], strict=False):
        annotate(api, task_id, sample.label)
    wait_until(lambda: settled(api, pid, backend["id"], "tfidf-logreg-v6", held_ids), what="sixth training")
    many = accuracy(api, pid, truth)
    print(f"\nheld-out accuracy: untrained {before:.2f}, {EVERY} annotated {few:.2f}, {6 * EVERY} annotated {many:.2f}")

    assert before == 0.0
    assert many > few > before
    assert many >= 0.9
    # Training happened exactly every N annotations: one model version per training run.
    versions = api.get(f"/api/ml/{backend['id']}/versions").json()["versions"]
    assert versions == [f"tfidf-logreg-v{i}" for i in range(1, 7)]
    assert api.get(f"/api/projects/{pid}/").json()["model_version"] == "tfidf-logreg-v6"
    assert trainings_ok(api, pid) - trainings_before == 6

    # New predictions replaced old ones: one prediction per task, all of the newest model.
    listed = api.get("/api/predictions/", params={"project": pid}).json()
    unlabeled = set(ids) - set(pool_ids[: 6 * EVERY])
    assert {p["task"] for p in listed if p["model_version"] == "tfidf-logreg-v6"} == unlabeled
    assert len(listed) == len({p["task"] for p in listed})

    # Uncertainty sampling: the next task is the least certain unlabeled one, with its prediction.
    scores = {t: p["score"] for t, p in newest_predictions(api, pid).items() if t in unlabeled}
    served = api.get(f"/api/projects/{pid}/next/")
    assert served.status_code == 200, served.text
    task = served.json()
    assert task["id"] in unlabeled
    assert scores[task["id"]] == min(scores.values())
    assert [p["model_version"] for p in task["predictions"]] == ["tfidf-logreg-v6"]
    # Ties are broken by task id, like the queue does.
    assert task["id"] == min(scores, key=lambda t: (scores[t], t))
