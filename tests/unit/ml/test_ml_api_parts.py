"""Pure parts of the API's ML domain: training cadence, id ranges, request validation, auth choice."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api_server.db.models import Project
from api_server.ml import settings as ml_settings
from api_server.ml.enqueue import ids_of, ranges_of
from api_server.ml.remote import BackendRef
from api_server.ml.schemas import MLBackendCreate, MLBackendUpdate
from api_server.ml.triggers import imported_task_ranges, training_due


def project(every: int = 0, on_update: bool = False) -> Project:
    return Project(min_annotations_to_start_training=every, start_training_on_annotation_update=on_update)


@pytest.mark.parametrize(
    ("every", "total", "added", "due"),
    [
        (10, 9, 1, False),
        (10, 10, 1, True),
        (10, 11, 1, False),
        (10, 20, 1, True),
        (10, 25, 7, True),  # a bulk import crossed 20
        (10, 29, 4, False),
        (0, 10, 1, False),  # 0: never on a count
        (10, 10, 0, False),  # nothing was added (an update or a deletion)
    ],
)
def test_training_every_n_annotations(every: int, total: int, added: int, due: bool) -> None:
    assert training_due(project(every), "ANNOTATION_CREATED", total, added) is due


def test_training_on_every_submit_or_update() -> None:
    assert training_due(project(on_update=True), "ANNOTATION_UPDATED", 3, 0)
    assert training_due(project(on_update=True), "ANNOTATION_CREATED", 3, 1)
    assert not training_due(project(on_update=True), "ANNOTATIONS_DELETED", 3, 0)


def test_id_ranges_round_trip() -> None:
    ids = [9, 1, 2, 3, 7, 8, 3]
    assert ranges_of(ids) == [[1, 3], [7, 9]]
    assert ids_of(ranges_of(ids)) == [1, 2, 3, 7, 8, 9]
    assert imported_task_ranges({"task_id_ranges": [(4, 6)]}) == [[4, 6]]
    assert imported_task_ranges({"tasks": [{"id": 2}, {"id": 3}, {"no": "id"}]}) == [[2, 3]]


def test_create_requires_url_and_project_and_refuses_unknown_fields() -> None:
    assert MLBackendCreate(url="http://ml:9090/", project=1).url == "http://ml:9090"
    for body in (
        {"project": 1},
        {"url": "http://ml"},
        {"url": "ml:9090", "project": 1},
        {"url": "http://x", "project": 1, "x": 1},
    ):
        with pytest.raises(ValidationError):
            MLBackendCreate.model_validate(body)
    assert MLBackendUpdate(timeout=5).model_dump(exclude_unset=True) == {"timeout": 5}


def backend(**kw: object) -> BackendRef:
    values: dict[str, object] = {
        "id": 1,
        "project_id": 1,
        "url": "http://ml:9090",
        "timeout": 20.0,
        "auth_method": "NONE",
        "basic_auth_user": None,
        "basic_auth_pass": None,
        "extra_params": {},
        "auto_update": True,
        "model_version": "",
    }
    values.update(kw)
    return BackendRef(**values)  # type: ignore[arg-type]


def test_client_auth_and_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBELABEL_ML_AUTH_HEADER", "Bearer from-secret")
    monkeypatch.setenv("KUBELABEL_ML_RETRIES", "4")
    ml_settings.get_ml_settings.cache_clear()
    try:
        with backend().client() as client:
            assert client._http.headers["Authorization"] == "Bearer from-secret"
            assert (client.timeout, client.retry.attempts) == (20.0, 4)
        with backend(auth_method="BASIC_AUTH", basic_auth_user="u", basic_auth_pass="p").client(
            timeout=5, interactive=True
        ) as client:
            assert client._http.headers["Authorization"].startswith("Basic ")
            assert (client.timeout, client.retry.attempts) == (5, 1)
    finally:
        ml_settings.get_ml_settings.cache_clear()
