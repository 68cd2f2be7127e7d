"""Project rules: config validation, membership of the creator, counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api_server import events
from api_server.common.errors import BadRequest, NotFound
from api_server.db.models import Project, ProjectMember, Task, User
from api_server.labelconfig.parser import LabelConfigError, LabelInterface, missing_variables, parse
from api_server.projects import repository
from api_server.projects.schemas import IGNORED_FIELDS, ProjectFields, ProjectPublic, UserRef
from api_server.users.roles import Role
from api_server.users.service import acting_role, check_project_role, require_org_role


def parse_config(config: str) -> LabelInterface:
    try:
        return parse(config)
    except LabelConfigError as exc:
        raise BadRequest(f"label_config: {exc}", validation_errors={"label_config": exc.errors}) from None


def parsed_config_dict(interface: LabelInterface) -> dict[str, Any]:
    """Label Studio's `parsed_label_config` shape: controls with their targets, inputs and labels."""
    out: dict[str, Any] = {}
    for control in interface.controls.values():
        inputs = [
            {
                "type": interface.objects[n].tag,
                "value": interface.objects[n].variable or interface.objects[n].value,
            }
            for n in control.to_names
            if n in interface.objects
        ]
        out[control.name] = {
            "type": control.tag,
            "to_name": list(control.to_names),
            "inputs": inputs,
            "labels": list(control.labels),
        }
    return out


def _check_config_against_data(session: Session, project: Project, interface: LabelInterface) -> None:
    for row, data in enumerate(repository.data_key_sample(session, project.id), start=1):
        missing = missing_variables(interface, data if isinstance(data, dict) else {})
        if missing:
            names = ", ".join(f"${m}" for m in missing)
            raise BadRequest(
                f"label_config: the config reads {names}, but imported tasks lack it (task #{row} of this project)",
                validation_errors={"label_config": [f"imported task data has no field(s): {names}"]},
            )


def to_public(session: Session, project: Project) -> ProjectPublic:
    return to_public_many(session, [project])[0]


def to_public_many(session: Session, projects: list[Project]) -> list[ProjectPublic]:
    counters = repository.counts(session, [p.id for p in projects])
    out = []
    for project in projects:
        try:
            interface = parse(project.label_config)
            parsed = parsed_config_dict(interface)
        except LabelConfigError:
            parsed = {}
        creator = session.get(User, project.created_by_id) if project.created_by_id else None
        out.append(
            ProjectPublic(
                **counters[project.id].model_dump(),
                **{
                    k: getattr(project, k)
                    for k in ProjectPublic.model_fields
                    if hasattr(project, k) and k not in {"created_by", "parsed_label_config"}
                },
                parsed_label_config=parsed,
                config_has_control_tags=bool(parsed),
                created_by=UserRef.model_validate(creator, from_attributes=True) if creator else None,
            )
        )
    return out


def project_access(session: Session, user: User, project_id: int, minimum: Role) -> tuple[Project, str]:
    """The one access check of a project-scoped call: the project and the role the caller acts with
    in it (one query); 404 when it does not exist, 403 naming the role needed."""
    project, membership = repository.project_with_role(session, project_id, user.id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist")
    return project, check_project_role(acting_role(user, membership), project_id, minimum)


def get_project(session: Session, user: User, project_id: int, minimum: Role = Role.viewer) -> Project:
    return project_access(session, user, project_id, minimum)[0]


def task_access(session: Session, user: User, task_id: int, minimum: Role) -> tuple[Task, Project, str]:
    """The same check for a task-scoped call: 404 when the task does not exist, then its project's."""
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    project, role = project_access(session, user, task.project_id, minimum)
    return task, project, role


def _apply(project: Project, fields: ProjectFields) -> None:
    for key, value in fields.model_dump(exclude_unset=True).items():
        if key in IGNORED_FIELDS or value is None and key not in {"task_lock_ttl"}:
            continue
        setattr(project, key, value.value if hasattr(value, "value") else value)


def create_project(session: Session, user: User, fields: ProjectFields) -> Project:
    require_org_role(user, Role.manager)
    if fields.label_config is not None:
        parse_config(fields.label_config)
    project = Project(created_by_id=user.id)
    _apply(project, fields)
    session.add(project)
    session.flush()
    session.add(ProjectMember(project_id=project.id, user_id=user.id, role=Role.manager.value))
    events.publish(session, project.id, "PROJECT_CREATED", project=project)
    session.commit()
    return project


def update_project(session: Session, user: User, project_id: int, fields: ProjectFields) -> Project:
    project = get_project(session, user, project_id, Role.manager)
    if fields.label_config is not None and fields.label_config != project.label_config:
        interface = parse_config(fields.label_config)
        _check_config_against_data(session, project, interface)
    _apply(project, fields)
    session.flush()
    events.publish(session, project.id, "PROJECT_UPDATED", project=project)
    session.commit()
    return project


def delete_project(session: Session, user: User, project_id: int) -> None:
    project = get_project(session, user, project_id, Role.manager)
    events.publish(session, project.id, "PROJECT_DELETED", project=project)
    session.delete(project)
    session.commit()


def validate_config_for_project(session: Session, user: User, project_id: int, config: str) -> LabelInterface:
    project = get_project(session, user, project_id, Role.viewer)
    interface = parse_config(config)
    _check_config_against_data(session, project, interface)
    return interface
