"""Export on save keeps up with a team: at the end the bucket holds exactly each annotated task, as stored."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from api_server.db.models import Annotation
from tests.conftest import TEXT_CONFIG
from tests.integration.api.test_events_delivery import annotators, label_all
from tests.support.labeling import project_with_tasks


def test_sixteen_annotators_and_the_bucket_equals_the_annotations(api, live_server, moto_s3):
    project, _ = project_with_tasks(api, TEXT_CONFIG, 96, overlap=2)
    pid = project["id"]
    bucket = moto_s3.new_bucket()
    provider = moto_s3.provider(bucket)
    r = api.post(
        "/api/storages/export/s3",
        json={
            "project": pid,
            "prefix": "out",
            "bucket": bucket,
            "s3_endpoint": moto_s3.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": moto_s3.credentials.aws_access_key_id,
            "aws_secret_access_key": moto_s3.credentials.aws_secret_access_key,
        },
    )
    assert r.status_code == 201, r.text
    clients = annotators(api, live_server.url, pid)
    try:
        created = label_all(clients, pid, updates=1)  # each annotation changed once after it was saved
    finally:
        for c in clients:
            c.close()
    with live_server.session_factory() as session:
        stored: dict[int, dict[int, list]] = {}
        for a in session.scalars(select(Annotation).where(Annotation.project_id == pid)):
            stored.setdefault(a.task_id, {})[a.id] = a.result
    assert sorted(i for ids in stored.values() for i in ids) == sorted(created)

    def exported() -> dict[int, dict[int, list]]:
        out = {}
        for obj in provider.iter_objects():
            body = json.loads(provider.read(obj.key))
            out[body["id"]] = {a["id"]: a["result"] for a in body["annotations"]}
        return out

    deadline = time.monotonic() + 60
    while (last := exported()) != stored and time.monotonic() < deadline:
        time.sleep(0.5)
    assert last == stored  # one object per annotated task, with its annotations' final results
