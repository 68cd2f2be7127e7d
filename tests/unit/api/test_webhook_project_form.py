"""The project in webhook payloads: made once a second at most (less often when it takes long to
make), and at once after the project changed.

Making it counts every task of the project (its counters) and parses its label config; once per
fan-out batch, that grew with the project.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from api_server.db.base import Base
from api_server.db.models import Project, Task
from api_server.db.session import make_engine, make_session_factory
from api_server.webhooks import service


def test_the_project_form_is_kept_a_second_unless_the_project_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'form.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    clock = [1000.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])

    def form() -> dict:
        with factory() as session:
            return service._project_json(session, project_id)

    def add_task(session: Session) -> None:
        session.add(Task(project_id=project_id, data={"text": "x"}))
        session.commit()

    with factory() as session:
        project = Project(title="first")
        session.add(project)
        session.commit()
        project_id = project.id
        add_task(session)
        assert form()["task_number"] == 1
        add_task(session)
        assert form()["task_number"] == 1  # within the second: the form made before
        clock[0] += service.PROJECT_JSON_SECONDS
        assert form()["task_number"] == 2  # a second later: made again
        project.title = "renamed"
        session.commit()
        assert form()["title"] == "renamed"  # changed: made again at once
    engine.dispose()


def test_a_project_form_slow_to_make_is_kept_longer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A form that took 0.2 s to make (a project of a million tasks took about half that) is kept
    COST_FACTOR times as long: counting the project's tasks never takes more than a small share of
    the machine, however large the project."""
    engine = make_engine(f"sqlite:///{tmp_path / 'slow.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    clock = [1000.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])
    made = service.payloads.project_dict

    def slow(session: Session, project: Project) -> dict:
        clock[0] += 0.2
        return made(session, project)

    monkeypatch.setattr(service.payloads, "project_dict", slow)
    with factory() as session:
        project = Project(title="large")
        session.add(project)
        session.commit()
        project_id = project.id

    def tasks() -> int:
        with factory() as session:
            return service._project_json(session, project_id)["task_number"]

    assert tasks() == 0
    kept = service.kept_project_form(engine, project_id)
    assert kept is not None and kept.fresh_for == pytest.approx(service.COST_FACTOR * 0.2)
    with factory() as session:
        session.add(Task(project_id=project_id, data={"text": "x"}))
        session.commit()
    clock[0] += service.PROJECT_JSON_SECONDS
    assert tasks() == 0  # a second later: kept still
    assert service.kept_project_form(engine, project_id) is not None
    clock[0] += kept.fresh_for
    assert service.kept_project_form(engine, project_id) is None  # past its freshness: not used
    assert tasks() == 1  # made again
    engine.dispose()
