"""Compatibility: a backend written with Label Studio's own ML SDK (`label-studio-ml` from PyPI).

label-studio-ml 1.0.9 (the newest on PyPI) pins Flask==1.1.2 and werkzeug==2.0.2, which
conflict with the dev extra (moto's server needs Flask 3), so it cannot share our virtualenv.
The backend therefore runs in its own interpreter, named by KUBELABEL_LSML_PYTHON:

    python -m venv /tmp/lsml-venv
    /tmp/lsml-venv/bin/pip install label-studio-ml redis rq   # its model.py imports redis and rq
    KUBELABEL_LSML_PYTHON=/tmp/lsml-venv/bin/python pytest tests/integration/ml -k lsml

`make test-deps` builds such a venv at .cache/lsml-venv (scripts/install-test-tools.d/lsml.sh),
which is used when KUBELABEL_LSML_PYTHON is not set. Without either the tests skip, locally and
in CI: an optional compatibility check that must not fail a build when PyPI cannot provide it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api_server.ml.client import MLBackendClient
from tests.support.net import free_port, wait_for_port
from tests.support.processes import stop_process
from tests.support.waiting import wait_until

HERE = Path(__file__).resolve().parent
CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="topic" toName="text"><Choice value="Sports"/><Choice value="Politics"/></Choices></View>"""


# Where scripts/install-test-tools.d/lsml.sh (run by `make test-deps`) puts it.
DEFAULT_LSML_PYTHON = HERE.parents[2] / ".cache" / "lsml-venv" / "bin" / "python"


def _lsml_python() -> str:
    python = os.environ.get("KUBELABEL_LSML_PYTHON") or str(DEFAULT_LSML_PYTHON)
    if not Path(python).exists():
        pytest.skip(
            "label-studio-ml is not installable next to the dev extra (it pins Flask==1.1.2); "
            "run `make test-deps` or set KUBELABEL_LSML_PYTHON to a Python that has it (see this module's docstring)"
        )
    probe = subprocess.run([python, "-c", "import label_studio_ml.api"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"{python} cannot import label_studio_ml: {probe.stderr.decode()[-300:]}")
    return python


@pytest.fixture(scope="module")
def lsml_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    python = _lsml_python()
    port = free_port()
    model_dir = tmp_path_factory.mktemp("lsml")
    proc = subprocess.Popen(
        [python, str(HERE / "lsml_keyword_backend.py"), str(port), str(model_dir)],
        cwd=model_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def test_lsml_backend_health_setup_predict(lsml_backend: str) -> None:
    tasks = [{"id": 1, "data": {"text": "a ball game"}}, {"id": 2, "data": {"text": "the senate votes"}}]
    with MLBackendClient(lsml_backend) as client:
        assert client.health().status == "UP"
        version = client.setup(project="1.1700000000", label_config=CONFIG).model_version
        predictions = client.predict(tasks, label_config=CONFIG, project="1.1700000000")
    assert version
    assert [p.result[0]["value"]["choices"] for p in predictions] == [["Sports"], ["Politics"]]
    assert [p.score for p in predictions] == [0.9, 0.6]
    assert {p.model_version for p in predictions} == {version}
    assert predictions[0].result[0]["from_name"] == "topic"


def test_lsml_backend_accepts_training_events(lsml_backend: str) -> None:
    event = {
        "project": {"id": 1, "label_config": CONFIG},
        "task": {"id": 1, "data": {"text": "ball"}},
        "annotation": {"id": 5, "result": []},
    }
    with MLBackendClient(lsml_backend) as client:
        reply = client.webhook("ANNOTATION_CREATED", event)
    assert reply.ignored is False


def test_kubelabel_uses_an_lsml_backend_for_predictions(api: Any, lsml_backend: str) -> None:
    """Registered through /api/ml, the SDK-written backend pre-annotates imported tasks."""
    project = api.post("/api/projects/", json={"title": "compat", "label_config": CONFIG}).json()
    backend = api.post("/api/ml/", json={"url": lsml_backend, "project": project["id"], "title": "lsml"}).json()
    assert backend["state"] == "CO", backend
    r = api.post(
        f"/api/projects/{project['id']}/import",
        params={"return_task_ids": "true"},
        json=[{"text": "ball game tonight"}, {"text": "the senate votes"}],
    )
    ids = r.json()["task_ids"]

    def stored() -> list[Any]:
        listed = api.get("/api/predictions/", params={"project": project["id"]}).json()
        return listed if len(listed) == 2 else []

    listed = wait_until(stored, what="predictions from the label-studio-ml backend")
    by_task = {p["task"]: p for p in listed}
    assert by_task[ids[0]]["result"][0]["value"]["choices"] == ["Sports"]
    assert by_task[ids[1]]["result"][0]["value"]["choices"] == ["Politics"]
    assert [by_task[i]["score"] for i in ids] == [0.9, 0.6]
    assert by_task[ids[0]]["model_version"] == backend["model_version"]
    # Training events reach it too (its fit() runs in a forked job and answers 201).
    result = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["Sports"]}}]
    assert api.post(f"/api/tasks/{ids[0]}/annotations/", json={"result": result}).status_code == 201
    r = api.post(f"/api/ml/{backend['id']}/train")
    assert r.status_code == 200, r.text
