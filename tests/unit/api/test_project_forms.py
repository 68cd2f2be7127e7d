"""The labeling loop keeps each project's webhook payload form ready, made in the background.

A submission on PostgreSQL writes its deliveries itself only with a form made within a second
(webhooks.service); `ProjectForms.keep` has one made again, off the request, when it is missing,
aging or outdated, one at a time per project, and a failure leaves the submissions on the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from api_server.db.base import Base
from api_server.db.models import Project
from api_server.db.session import make_engine, make_session_factory
from api_server.webhooks import service
from api_server.workflow.pg_loop import FORM_REMADE_AT, ProjectForms


def test_a_form_is_made_in_the_background_when_missing_or_aging(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'forms.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        project = Project(title="forms")
        session.add(project)
        session.commit()
        pid = project.id
    forms = ProjectForms(engine, factory)

    def made() -> float:
        return service._projects[engine][pid].made

    def age(seconds: float) -> float:  # (the event loop's clock is time.monotonic too: the form is aged)
        service._projects[engine][pid].made -= seconds
        return made()

    async def keep(used, current: bool = True) -> None:
        forms.keep(pid, used, current)
        assert pid in forms.making or used is not None
        while forms.making:
            await asyncio.sleep(0.01)

    # Whether a form was made again is read from when it was made, not from its age: a loaded
    # machine may take a tenth of a second between the making and the check.
    assert forms.get(pid) is None and forms.get(None) is None
    asyncio.run(keep(None))
    first = forms.get(pid)
    assert first is not None and '"title":"forms"' in first.text
    assert first.fresh_for == service.PROJECT_JSON_SECONDS  # quick to make: a second
    remade_after = FORM_REMADE_AT * first.fresh_for
    before = age(remade_after / 2)  # fresh: kept
    asyncio.run(keep(forms.get(pid)))
    assert made() == before and forms.get(pid).age >= remade_after / 2
    before = age(remade_after / 2)  # aging: made again
    asyncio.run(keep(forms.get(pid)))
    assert made() > before + remade_after
    before = age(0.1)
    asyncio.run(keep(forms.get(pid), current=False))  # the project changed since: made again
    assert made() > before + 0.1
    age(1.0)  # too old to use
    assert forms.get(pid) is None
    engine.dispose()


def test_a_form_that_cannot_be_made_is_logged_and_asked_for_again(caplog: pytest.LogCaptureFixture):
    def broken():
        raise RuntimeError("database down")

    forms = ProjectForms(make_engine("sqlite://"), broken)  # type: ignore[arg-type]

    async def keep() -> None:
        forms.keep(7, None, False)
        forms.keep(7, None, False)  # one at a time per project
        while forms.making:
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.WARNING):
        asyncio.run(keep())
    failures = [r for r in caplog.records if "project 7" in r.getMessage()]
    assert len(failures) == 1 and "database down" in failures[0].getMessage()
    assert forms.making == set() and forms.get(7) is None
