"""One access check for project- and task-scoped calls (projects.service.project_access / task_access):
the project and the caller's role in one query, 404 before 403, the 403 naming the role needed; the
workflow, get_project and the webhooks' project check are that check, not copies of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from api_server.common.errors import Forbidden, NotFound
from api_server.db.migrate import upgrade
from api_server.db.models import Project, ProjectMember, Task, User
from api_server.db.session import make_engine, make_session_factory
from api_server.projects import service as projects
from api_server.users.roles import Role
from api_server.webhooks import service as webhooks
from api_server.workflow import access as workflow_access
from api_server.workflow import public as workflow_public
from tests.conftest import BACKENDS
from tests.support.databases import create_postgres_database, drop_postgres_database, sqlite_url
from tests.support.services import require_port


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "postgres":
        require_port("PostgreSQL", "127.0.0.1", 5432)
        url = create_postgres_database("kl_access")
    else:
        url = sqlite_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()
    if request.param == "postgres":
        drop_postgres_database(url)


@pytest.fixture
def world(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        admin, member, outsider = User(username="boss", role="admin"), User(username="ann"), User(username="out")
        project = Project(title="p")
        s.add_all([admin, member, outsider, project])
        s.flush()
        s.add(ProjectMember(project_id=project.id, user_id=member.id, role=Role.annotator.value))
        task = Task(project_id=project.id, data={"text": "x"})
        s.add(task)
        s.commit()
        return {"admin": admin.id, "member": member.id, "outsider": outsider.id, "project": project.id, "task": task.id}


def _statements(session: Session) -> list[str]:
    seen: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_the_workflow_and_webhooks_use_the_one_check() -> None:
    assert workflow_access.project_access is projects.project_access
    assert workflow_access.task_access is projects.task_access
    assert workflow_public.project_access is projects.project_access
    assert "get_project" in webhooks._require_manage.__code__.co_names


def test_member_gets_project_and_role_in_one_query(factory: sessionmaker[Session], world: dict[str, int]) -> None:
    with factory() as s:
        member = s.get(User, world["member"])
        assert member is not None
        seen = _statements(s)
        project, role = projects.project_access(s, member, world["project"], Role.annotator)
        assert (project.id, role) == (world["project"], "annotator")
        assert len(seen) == 1, seen
        seen.clear()
        assert projects.get_project(s, member, world["project"], Role.annotator).id == world["project"]
        assert len(seen) == 1, seen


def test_admin_acts_as_admin_everywhere(factory: sessionmaker[Session], world: dict[str, int]) -> None:
    with factory() as s:
        admin = s.get(User, world["admin"])
        assert admin is not None
        assert projects.project_access(s, admin, world["project"], Role.manager)[1] == "admin"


def test_not_found_comes_before_forbidden(factory: sessionmaker[Session], world: dict[str, int]) -> None:
    with factory() as s:
        outsider = s.get(User, world["outsider"])
        member = s.get(User, world["member"])
        assert outsider is not None and member is not None
        with pytest.raises(NotFound, match=r"project 999999 does not exist"):
            projects.project_access(s, outsider, 999999, Role.viewer)
        with pytest.raises(NotFound, match=r"task 999999 does not exist"):
            projects.task_access(s, outsider, 999999, Role.viewer)
        with pytest.raises(Forbidden, match=r"needs the viewer role .* you have no role"):
            projects.task_access(s, outsider, world["task"], Role.viewer)
        with pytest.raises(Forbidden, match=r"needs the manager role .* you have annotator"):
            projects.get_project(s, member, world["project"], Role.manager)
        with pytest.raises(Forbidden, match=r"needs the manager role .* you have annotator"):
            webhooks._require_manage(s, member, world["project"])
