"""The ML backend client against `kubelabel model-server` running for real over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from topic_corpus import LABEL_CONFIG, generate

from api_server.ml.client import BackendAuth, MLBackendClient
from api_server.ml.errors import MLBackendHTTPError

PROJECT = "1.1700000000"


def ls_project(project_id: int) -> str:
    """Label Studio's `project` field of /setup and /predict: "<id>.<created timestamp>"."""
    return f"{project_id}.1700000000"


def annotation_event(task_id: int, text: str, label: str, project_id: int = 1) -> dict[str, Any]:
    return {
        "project": {"id": project_id, "label_config": LABEL_CONFIG},
        "task": {"id": task_id, "data": {"text": text}},
        "annotation": {
            "id": 1000 + task_id,
            "task": task_id,
            "result": [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [label]}}],
        },
    }


def legacy_annotations(samples: list[Any], start: int = 0) -> list[dict[str, Any]]:
    """Annotations carrying their task, as legacy POST /train bodies send them."""
    return [
        {
            "id": 1000 + i,
            "result": [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [s.label]}}],
            "task": {"id": i, "data": {"text": s.text}},
        }
        for i, s in enumerate(samples, start=start)
    ]


def accuracy(client: MLBackendClient, samples: list[Any], project: str) -> float:
    tasks = [{"id": 10_000 + i, "data": {"text": s.text}} for i, s in enumerate(samples)]
    predictions = client.predict(tasks, label_config=LABEL_CONFIG, project=project)
    right = sum(
        p is not None and p.result[0]["value"]["choices"][0] == s.label
        for p, s in zip(predictions, samples, strict=True)
    )
    return right / len(samples)


def test_health_and_setup(model_server: Any, project_id: int) -> None:
    with MLBackendClient(model_server.url) as client:
        health = client.health()
        assert health.status == "UP"
        assert health.model_class == "TfidfTextClassifier"
        setup = client.setup(project=ls_project(project_id), label_config=LABEL_CONFIG)
        assert setup.model_version == "tfidf-logreg-v0"


def test_setup_refuses_a_config_without_text_choices(model_server: Any, project_id: int) -> None:
    server = model_server
    config = '<View><Image name="img" value="$image"/><RectangleLabels name="b" toName="img"/></View>'
    with MLBackendClient(server.url, retry=None) as client, pytest.raises(MLBackendHTTPError) as err:
        client.setup(project=ls_project(project_id), label_config=config)
    assert err.value.status_code == 400
    # The status is named, the backend's answer (which explains it) is not: its URL is user-given.
    assert "HTTP 400" in err.value.message and "Choices" not in err.value.message


def test_learns_from_webhook_events_and_predicts_with_scores(model_server: Any, project_id: int) -> None:
    samples = generate()
    train, held_out = samples[:60], samples[150:]
    project = ls_project(project_id)
    with MLBackendClient(model_server.url, batch_size=7) as client:
        client.setup(project=project, label_config=LABEL_CONFIG)
        untrained = client.predict(
            [{"id": 1, "data": {"text": held_out[0].text}}], label_config=LABEL_CONFIG, project=project
        )
        assert untrained == [None]  # no guesses before any training

        versions = []
        for i, sample in enumerate(train[:6]):
            event = annotation_event(i, sample.text, sample.label, project_id)
            reply = client.webhook("ANNOTATION_CREATED", event)
            assert reply.status == "ok"
            versions.append(reply.result["model_version"])
        few = accuracy(client, held_out, project)
        # The other 54 in one legacy /train body (54 more events would train 54 more times).
        client.train(project=project, label_config=LABEL_CONFIG, annotations=legacy_annotations(train[6:], start=6))
        reply = client.webhook("START_TRAINING", {"project": {"id": project_id, "label_config": LABEL_CONFIG}})
        assert reply.result == {**reply.result, "trained": True, "examples": 60, "source": "events"}
        many = accuracy(client, held_out, project)

        tasks = [{"id": i, "data": {"text": s.text}} for i, s in enumerate(held_out[:10])]
        predictions = client.predict(tasks, label_config=LABEL_CONFIG, project=project)

    # every training run makes a new model version
    trained_versions = [v for v in versions if v != "tfidf-logreg-v0"]
    assert len(set(trained_versions)) == len(trained_versions) > 0
    assert reply.result["model_version"] != versions[-1]
    assert many > few
    assert many >= 0.9
    for prediction in predictions:
        assert prediction is not None
        assert prediction.model_version == reply.result["model_version"]
        assert 1 / 3 < prediction.score <= 1.0
        (item,) = prediction.result
        assert item["from_name"] == "topic" and item["to_name"] == "text" and item["type"] == "choices"
        assert item["value"]["choices"][0] in {"Sports", "Politics", "Cooking"}


def test_model_survives_a_restart(start_model_server: Any, tmp_path: Any) -> None:
    samples = generate()
    server = start_model_server(model_dir=tmp_path / "volume", process=True)
    tasks = [{"id": i, "data": {"text": s.text}} for i, s in enumerate(samples[150:170])]
    with MLBackendClient(server.url) as client:
        client.train(project=PROJECT, label_config=LABEL_CONFIG, annotations=legacy_annotations(samples[:30]))
        before = client.predict(tasks, label_config=LABEL_CONFIG, project=PROJECT)
        version = client.setup(project=PROJECT, label_config=LABEL_CONFIG).model_version
    server.stop()
    server.start()
    with MLBackendClient(server.url) as client:
        assert client.setup(project=PROJECT, label_config=LABEL_CONFIG).model_version == version
        after = client.predict(tasks, label_config=LABEL_CONFIG, project=PROJECT)
        # the examples survived too: one more annotation retrains on 31, not 1
        reply = client.webhook("ANNOTATION_CREATED", annotation_event(99, samples[99].text, samples[99].label))
        assert reply.result["examples"] == 31
        assert client.versions(project="1").versions[-2:] == [version, reply.result["model_version"]]
    assert [p.model_dump() for p in after] == [p.model_dump() for p in before]


def test_deleted_annotation_is_forgotten(model_server: Any, project_id: int) -> None:
    samples = generate()
    project = {"id": project_id, "label_config": LABEL_CONFIG}
    with MLBackendClient(model_server.url) as client:
        for i, sample in enumerate(samples[:5]):
            client.webhook("ANNOTATION_CREATED", annotation_event(i, sample.text, sample.label, project_id))
        reply = client.webhook("ANNOTATIONS_DELETED", {"project": project, "annotations": [{"id": 1000}, {"id": 1001}]})
    assert reply.result["examples"] == 3


def test_legacy_train_endpoint(model_server: Any, project_id: int) -> None:
    annotations = legacy_annotations(generate()[:12])
    with MLBackendClient(model_server.url) as client:
        reply = client.train(project=ls_project(project_id), label_config=LABEL_CONFIG, annotations=annotations)
    assert reply.result["trained"] is True
    assert reply.result["examples"] == 12


def test_unknown_event_is_acknowledged_and_ignored(model_server: Any, project_id: int) -> None:
    with MLBackendClient(model_server.url) as client:
        reply = client.webhook("PROJECT_UPDATED", {"project": {"id": project_id}})
    assert reply.ignored is True
    assert reply.status == "Unknown event"


def test_basic_auth(start_model_server: Any) -> None:
    server = start_model_server(BASIC_AUTH_USER="ml", BASIC_AUTH_PASS="s3cret")
    with MLBackendClient(server.url, retry=None) as anonymous:
        assert anonymous.health().status == "UP"  # probes need no credentials
        with pytest.raises(MLBackendHTTPError) as err:
            anonymous.setup(project=PROJECT, label_config=LABEL_CONFIG)
        assert err.value.status_code == 401
    auth = BackendAuth(basic_user="ml", basic_pass="s3cret")
    with MLBackendClient(server.url, auth=auth) as client:
        assert client.setup(project=PROJECT, label_config=LABEL_CONFIG).model_version == "tfidf-logreg-v0"
    with MLBackendClient(f"http://ml:s3cret@127.0.0.1:{server.port}") as client:
        assert client.setup(project=PROJECT, label_config=LABEL_CONFIG).model_version == "tfidf-logreg-v0"
        assert "s3cret" not in client.display_url
