"""View rules: each view belongs to its author; project members read and use it, its author and managers change it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api_server.common.errors import BadRequest, Forbidden, NotFound
from api_server.common.inputs import INT32_MAX, INT32_MIN
from api_server.db.base import utcnow
from api_server.db.models import User, View
from api_server.projects import service as projects
from api_server.users.roles import Role, at_least
from api_server.users.service import project_role
from api_server.views.filters import Prepared, compile_query
from api_server.views.schemas import ViewCreate, ViewOrder, ViewUpdate


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _check(session: Session, data: dict[str, Any]) -> None:
    """A view's data must compile, so a saved view always works as a filter."""
    compile_query(data, "data", _dialect(session))
    _check_patterns(session, data, "data")


def _check_patterns(session: Session, data: Any, where: str) -> None:
    """Regular expressions PostgreSQL refuses (Python's syntax passed the compiler) are a 400, not a failed query."""
    if _dialect(session) != "postgresql" or not isinstance(data, dict) or not isinstance(data.get("filters"), dict):
        return
    items = data["filters"].get("items")
    for n, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or item.get("operator") != "regex":
            continue
        try:
            with session.begin_nested():
                session.execute(text("SELECT '' ~ :pattern"), {"pattern": str(item.get("value"))})
        except DBAPIError as exc:
            field = f"{where}.filters.items[{n}].value"
            message = f"PostgreSQL refuses this regular expression: {str(exc.orig).splitlines()[0]}"
            raise BadRequest(f"{field}: {message}", validation_errors={field: [message]}) from None


def list_views(session: Session, user: User, project_id: int | None) -> list[View]:
    """The caller's views, of one project or all, in tab order."""
    stmt = select(View).where(View.user_id == user.id)
    if project_id is not None:
        projects.get_project(session, user, project_id, Role.viewer)
        stmt = stmt.where(View.project_id == project_id)
    return list(session.scalars(stmt.order_by(View.order.is_(None), View.order, View.id)))


def create_view(session: Session, user: User, body: ViewCreate) -> View:
    projects.get_project(session, user, body.project, Role.viewer)
    _check(session, body.data)
    view = View(project_id=body.project, user_id=user.id, data=body.data, order=body.order)
    session.add(view)
    session.commit()
    return view


def get_view(session: Session, user: User, view_id: int) -> View:
    """A view the caller may read and use: any member of its project."""
    view = session.get(View, view_id) if INT32_MIN <= view_id <= INT32_MAX else None
    if view is None:
        raise NotFound(f"view {view_id} does not exist")
    projects.get_project(session, user, view.project_id, Role.viewer)
    return view


def _writable(session: Session, user: User, view_id: int) -> View:
    view = get_view(session, user, view_id)
    role = project_role(session, user, view.project_id)
    if view.user_id != user.id and not (role and at_least(role, Role.manager)):
        raise Forbidden(f"view {view_id} belongs to another user; only they or a project manager may change it")
    return view


def update_view(session: Session, user: User, view_id: int, body: ViewUpdate) -> View:
    view = _writable(session, user, view_id)
    if body.project is not None and body.project != view.project_id:
        raise BadRequest(
            "project: a view cannot move to another project", validation_errors={"project": ["cannot be changed"]}
        )
    if body.data is not None:
        _check(session, body.data)
        view.data = body.data
    if body.order is not None:
        view.order = body.order
    view.updated_at = utcnow()
    session.commit()
    return view


def delete_view(session: Session, user: User, view_id: int) -> None:
    session.delete(_writable(session, user, view_id))
    session.commit()


def reset(session: Session, user: User, project_id: int) -> None:
    """Delete the caller's views of the project (Label Studio's `DELETE /api/dm/views/reset/`)."""
    projects.get_project(session, user, project_id, Role.viewer)
    session.execute(delete(View).where(View.project_id == project_id, View.user_id == user.id))
    session.commit()


def reorder(session: Session, user: User, body: ViewOrder) -> None:
    views = {v.id: v for v in list_views(session, user, body.project)}
    for position, view_id in enumerate(body.ids):
        if view_id not in views:
            raise BadRequest(
                f"ids: view {view_id} is not one of your views of project {body.project}",
                validation_errors={"ids": [f"unknown view {view_id}"]},
            )
        views[view_id].order = position
    session.commit()


def prepared(session: Session, user: User, *, view_id: int | None, query: Any, project_id: int | None) -> Prepared:
    """The compiled filters of a view (`?view=`), else of a `query` (Label Studio: the view wins).

    Returns the query with the view's project in `project_id` checks: a view of another
    project than the one asked for is refused.
    """
    if view_id is not None:
        view = get_view(session, user, view_id)
        if project_id is not None and view.project_id != project_id:
            raise BadRequest(
                f"view: view {view_id} belongs to project {view.project_id}, not {project_id}",
                validation_errors={"view": ["belongs to another project"]},
            )
        return compile_query(view.data, f"view {view_id} data", _dialect(session))
    prepared = compile_query(query, "query", _dialect(session))
    _check_patterns(session, query, "query")
    return prepared


def project_of(session: Session, user: User, view_id: int) -> int:
    return get_view(session, user, view_id).project_id
