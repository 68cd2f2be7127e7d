"""The official label-studio-sdk (pinned in pyproject: 2.1.2) drives the server end to end.

Covered SDK calls (documented in docs/api.md): projects.create, projects.get,
projects.import_tasks, tasks.list (paged), tasks.create, tasks.get, tasks.update,
tasks.delete, annotations.create, predictions.create, projects.exports.download_sync,
tasks.delete_all_tasks.
"""

from __future__ import annotations

import orjson
from label_studio_sdk import LabelStudio

from tests.conftest import TEXT_CONFIG
from tests.support.apiserver import ADMIN_TOKEN

CHOICE = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]


def test_label_studio_sdk_end_to_end(live_server):
    ls = LabelStudio(base_url=live_server.url, api_key=ADMIN_TOKEN)

    project = ls.projects.create(title="SDK project", label_config=TEXT_CONFIG)
    assert project.id and project.title == "SDK project"

    imported = ls.projects.import_tasks(
        id=project.id, request=[{"text": f"text {i}"} for i in range(250)], return_task_ids=True
    )
    assert imported.task_count == 250
    assert imported.data_columns == ["text"]

    # the pager walks pages until an empty one
    tasks = list(ls.tasks.list(project=project.id, page_size=100))
    assert len(tasks) == 250
    assert tasks[0].data == {"text": "text 0"} and tasks[-1].data == {"text": "text 249"}
    task_id = tasks[0].id

    one = ls.tasks.create(project=project.id, data={"text": "made with tasks.create"})
    assert one.id and one.data == {"text": "made with tasks.create"}
    updated = ls.tasks.update(id=str(one.id), data={"text": "changed"})
    assert updated.data == {"text": "changed"}
    ls.tasks.delete(id=str(one.id))

    annotation = ls.annotations.create(id=task_id, result=CHOICE, lead_time=3.0)
    assert annotation.id and annotation.result[0]["value"] == {"choices": ["Positive"]}

    prediction = ls.predictions.create(task=task_id, result=CHOICE, score=0.87, model_version="sdk-model")
    assert prediction.id and prediction.score == 0.87

    task = ls.tasks.get(id=str(task_id))
    assert task.total_annotations == 1 and task.total_predictions == 1 and task.is_labeled is True

    assert ls.projects.get(id=project.id).task_number == 250

    exported = b"".join(ls.projects.exports.download_sync(id=project.id, export_type="JSON"))
    data = orjson.loads(exported)
    assert [t["id"] for t in data] == [task_id]  # annotated tasks only (Label Studio's default)
    assert data[0]["annotations"][0]["result"] == CHOICE
    assert data[0]["predictions"][0]["model_version"] == "sdk-model"

    everything = b"".join(ls.projects.exports.download_sync(id=project.id, export_type="JSON", download_all_tasks=True))
    assert len(orjson.loads(everything)) == 250

    ls.tasks.delete_all_tasks(id=project.id)
    assert list(ls.tasks.list(project=project.id)) == []
